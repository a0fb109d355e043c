"""Azure Functions entry point: triggers wired to the code in `shared/`, and nothing else."""

import azure.functions as func

from shared import host, lookup

host.validate()  # a bad setting or rules file stops the start here, naming it
app = func.FunctionApp()


@app.retry(
    strategy="exponential_backoff", max_retry_count="5", minimum_interval="00:00:05", maximum_interval="00:05:00"
)
@app.event_hub_message_trigger(
    arg_name="events",
    event_hub_name="%SIGNIN_EVENTHUB_NAME%",
    connection="EventHubConnection",
    consumer_group="%SIGNIN_EVENTHUB_CONSUMER_GROUP%",
    cardinality=func.Cardinality.MANY,
    data_type=func.DataType.BINARY,
)
def ingest_signins(events: list[func.EventHubEvent], context: func.Context = None) -> None:  # type: ignore[assignment]
    """Judge each sign-in as its records arrive; a store failure is retried, then dead-lettered.

    `context` must be annotated exactly `func.Context` (the worker refuses a union); None for direct calls in tests.
    """
    host.handle_events(events, context)


@app.timer_trigger(arg_name="timer", schedule="0 */1 * * * *", run_on_startup=False, use_monitor=True)
def settle_signins(timer: func.TimerRequest) -> None:
    """Close the settle window of sign-ins whose requests stopped coming."""
    host.handle_timer()


@app.timer_trigger(arg_name="timer", schedule="0 17 3 * * *", run_on_startup=False, use_monitor=True)
def expire_signins(timer: func.TimerRequest) -> None:
    """Delete sign-ins older than RETENTION_DAYS (daily, off the hour)."""
    host.handle_retention()


@app.route(route="signins/{correlation_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def signin_lookup(req: func.HttpRequest) -> func.HttpResponse:
    """On-call: the verdict and every request of one sign-in."""
    return lookup.http_lookup(req, host.details)


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """The store answers; the latest event time processed."""
    return lookup.http_health(req, host.details)
