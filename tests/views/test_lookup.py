"""The on-call lookup: the HTTP functions called directly with func.HttpRequest, the id validator, links, the memory
store."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import azure.functions as func
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.correlation import valid_correlation_id
from shared.core.links import lookup_links, lookup_url
from shared.core.message import Message, Origin
from shared.core.timestamp import iso, parse_time
from shared.ingest.files import messages_from
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.ingest.replay import Replay
from shared.synth.records import BASE_TIME, body, policy, record
from shared.views.lookup import MAX_REQUEST_DETAILS, MemoryDetails, health_response
from tests.support.http import http_health, http_lookup, signed_in

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CID = "33333333-aaaa-bbbb-cccc-000000000003"


def get(correlation_id: Any, store: Any) -> func.HttpResponse:
    req = func.HttpRequest(
        method="GET", url=f"/api/signins/{correlation_id}", route_params={"correlation_id": correlation_id}, body=b""
    )
    return http_lookup(signed_in(req), store)


def json_of(response: func.HttpResponse) -> dict[str, Any]:
    assert response.mimetype == "application/json"
    return orjson.loads(response.get_body())


def fed(records: list[dict[str, Any]], drain: bool = True) -> MemoryDetails:
    details = MemoryDetails()
    pipeline = Pipeline(MemoryStore(), 600.0, observers=[details])
    pipeline.ingest([Message(body(records), Origin(source="test"))])
    if drain:
        pipeline.drain()
    return details


class Exploding:
    """A store that is down."""

    def get_signin_detail(self, correlation_id: str) -> None:
        raise ConnectionError("table service unreachable")

    def latest_event_time(self) -> None:
        raise ConnectionError("table service unreachable")

    def signin_details(self) -> Any:
        raise ConnectionError("table service unreachable")


def test_lookup_returns_the_verdict_and_each_request_explained() -> None:
    blocked = policy("CA-TP01 Require token protection", result="failure", not_satisfied=["SignInTokenProtection"])
    records = [
        record(correlation_id=CID, status="bound", code=0, app="Microsoft Outlook", user="ann@contoso.com"),
        record(
            correlation_id=CID,
            status="unbound",
            code=1008,
            app="Microsoft Teams",
            resource="Microsoft Teams Services",
            user="ann@contoso.com",
            policies=[blocked],
        ),
    ]
    response = get(CID, fed(records))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    detail = json_of(response)
    assert detail["correlation_id"] == CID
    assert detail["verdict"] == "unbound"
    assert detail["enforcement"] == "enforced"
    assert detail["state"] == "final"
    assert detail["user"] == "ann@contoso.com"
    assert detail["requests"] == 2
    rows = {r["app"]: r for r in detail["request_details"]}
    teams = rows["Microsoft Teams"]
    assert (teams["binding"], teams["code"], teams["resource"]) == ("unbound", 1008, "Microsoft Teams Services")
    assert "not evidence of token theft" in teams["meaning"]
    assert teams["fix"].startswith("Update or configure the client")
    assert teams["policies"] == [
        {"name": "CA-TP01 Require token protection", "result": "failure", "not_satisfied": True}
    ]
    assert (teams["os"], teams["trust_type"], teams["client_app"]) == (
        "Windows10",
        "Azure AD joined",
        "Mobile Apps and Desktop clients",
    )
    assert teams["device_id"]
    assert rows["Microsoft Outlook"]["binding"] == "bound"
    assert rows["Microsoft Outlook"]["meaning"].startswith("Bound")


def test_lookup_of_an_open_signin_says_so() -> None:
    detail = json_of(get(CID, fed([record(correlation_id=CID)], drain=False)))
    assert detail["state"] == "open"


def test_lookup_of_every_sample_signin_agrees_with_replay() -> None:
    details = MemoryDetails()
    run = Replay(Pipeline(MemoryStore(), 600.0, observers=[details]))
    last_verdicts = {
        line["correlation_id"]: line["verdict"]
        for outcome in run.run(messages_from([str(SAMPLES)]))
        for line in outcome.lines
        if line["type"] == "verdict"
    }
    assert last_verdicts
    for correlation_id, verdict in last_verdicts.items():
        response = get(correlation_id, details)
        assert response.status_code == 200, correlation_id
        assert json_of(response)["verdict"] == verdict


def test_copies_of_a_request_show_once_with_the_worst_binding() -> None:
    first = record(correlation_id=CID, request_id="r-1", status="bound", code=0)
    worse = record(correlation_id=CID, request_id="r-1", status="unbound", code=1002)
    detail = json_of(get(CID, fed([first, worse, first])))
    assert [(r["id"], r["binding"], r["code"]) for r in detail["request_details"]] == [("r-1", "unbound", 1002)]


def test_request_details_are_capped() -> None:
    records = [record(correlation_id=CID, request_id=f"r-{i:03d}") for i in range(MAX_REQUEST_DETAILS + 5)]
    detail = json_of(get(CID, fed(records)))
    assert detail["requests"] == MAX_REQUEST_DETAILS + 5
    assert detail["requests_kept"] == len(detail["request_details"]) == MAX_REQUEST_DETAILS
    assert detail["requests_truncated"] is True


def test_unknown_signin_is_404() -> None:
    response = get("00000000-0000-0000-0000-000000000000", fed([record()]))
    assert response.status_code == 404
    assert json_of(response)["error"] == "sign-in not found"


def test_store_outage_is_503_without_the_error_text() -> None:
    response = get(CID, Exploding())
    assert response.status_code == 503
    assert json_of(response) == {"error": "store unavailable", "reason": "ConnectionError"}


HOSTILE_IDS = [
    "",
    "x' or PartitionKey ne '",
    "abc' or 1 eq 1",
    "a b",
    "a%27b",
    "../etc",
    "a/b",
    "a#b",
    "a?b",
    "a\nb",
    "{abc",
    "{{" + CID + "}}",
    "a" * 129,
    "ａｂｃ",  # fullwidth letters are not ASCII letters
    "a\x00b",
    None,
]


@pytest.mark.parametrize("bad", HOSTILE_IDS)
def test_malformed_id_is_refused_before_the_store_is_opened(bad: Any) -> None:
    opened: list[str] = []

    def factory() -> MemoryDetails:
        opened.append("opened")
        return MemoryDetails()

    response = get(bad, factory)
    assert response.status_code == 400
    assert json_of(response)["error"] == "invalid correlation_id"
    assert opened == []


def test_a_valid_id_opens_the_store_through_the_factory() -> None:
    store = fed([record(correlation_id=CID)])
    assert get(CID, lambda: store).status_code == 200


@pytest.mark.parametrize("good", [CID, CID.upper(), "a", "a" * 128, "req_1.2-x", "0f1e2d3c4b5a69788796a5b4c3d2e1f0"])
def test_well_formed_ids_pass(good: str) -> None:
    assert valid_correlation_id(good)


_FORBIDDEN = set("'\"()/\\#?%&=+,;: \t\r\n$")


@given(st.text(max_size=200))
def test_the_validator_never_lets_a_quote_or_odata_operator_through(text: str) -> None:
    if valid_correlation_id(text):
        assert not (_FORBIDDEN & set(text))
        assert " eq " not in text and " or " not in text and " ne " not in text
        assert 1 <= len(text) <= 128
        assert text.isascii()


@given(st.text(alphabet=string.ascii_letters + string.digits + "._-", min_size=1, max_size=128))
def test_the_validator_accepts_its_whole_alphabet(text: str) -> None:
    assert valid_correlation_id(text)


@given(st.text(min_size=1, max_size=40), st.sampled_from(["'", " eq ", " or ", "/", "#", "?", "%27", '"', "\n"]))
def test_any_id_with_an_operator_or_quote_is_refused(prefix: str, operator: str) -> None:
    assert not valid_correlation_id(prefix + operator)


def test_health_reports_the_latest_event_time_processed() -> None:
    later = BASE_TIME.replace(minute=7)
    store = fed([record(at=BASE_TIME), record(at=later)], drain=False)
    req = func.HttpRequest(method="GET", url="/api/health", body=b"")
    response = http_health(req, store)
    assert response.status_code == 200
    health = json_of(response)
    assert health["status"] == "ok"
    assert health["store"] == "MemoryDetails"
    assert parse_time(health["latest_event_time"]) == later.timestamp()
    status, body_ = health_response(store, now=later.timestamp() + 30)
    assert status == 200
    assert body_["event_lag_seconds"] == 30.0
    assert body_["latest_event_time"] == iso(later.timestamp())


def test_health_before_any_event() -> None:
    status, health = health_response(MemoryDetails(), now=0.0)
    assert status == 200
    assert health["latest_event_time"] is None
    assert health["event_lag_seconds"] is None


def test_health_is_503_when_the_store_is_down() -> None:
    req = func.HttpRequest(method="GET", url="/api/health", body=b"")
    response = http_health(req, Exploding())
    assert response.status_code == 503
    assert json_of(response)["status"] == "unhealthy"

    def broken_factory() -> MemoryDetails:
        raise ConnectionError("no credential")

    assert http_health(req, broken_factory).status_code == 503


def test_lookup_links_need_the_public_url() -> None:
    assert lookup_url(None, CID) is None
    assert lookup_url("", CID) is None
    assert lookup_url("https://bindwatch.example.net/", CID) == f"https://bindwatch.example.net/api/signins/{CID}"
    assert lookup_url("https://bindwatch.example.net", "x' or 1 eq 1") is None
    links = lookup_links("https://bw.example.net", [CID, "bad id", "b", "c", "d"])
    assert links == {
        "Lookup 33333333": f"https://bw.example.net/api/signins/{CID}",
        "Lookup b": "https://bw.example.net/api/signins/b",
    }
    twins = lookup_links("https://bw.example.net", ["12345678-a", "12345678-b"])
    assert sorted(twins.values()) == [
        "https://bw.example.net/api/signins/12345678-a",
        "https://bw.example.net/api/signins/12345678-b",
    ]
    assert lookup_links(None, [CID]) == {}


def test_a_store_that_cannot_be_opened_is_a_503_not_a_crash() -> None:
    def broken() -> object:
        raise ConnectionError("storage down")

    request = func.HttpRequest(method="GET", url="/api/signins/abc", route_params={"correlation_id": "abc"}, body=b"")
    assert http_lookup(signed_in(request), broken).status_code == 503  # type: ignore[arg-type]
