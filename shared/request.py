"""One judged request: a sign-in record reduced to the fields the rules and the people use.

Only these fields are read and checked; the rest of a ~10 KB record is left alone,
which keeps the hot path close to the cost of decoding the JSON at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .binding import Binding, Enforcement, read_policies, status_of
from .record import Accepted, Device

_NO_DEVICE = Device()

_US_FORMAT = "%m/%d/%Y %I:%M:%S %p"  # seen in real data: 11/14/2025 1:48:53 AM
EARLIEST = datetime(1971, 1, 1, tzinfo=UTC).timestamp()
LATEST = datetime(9998, 12, 31, tzinfo=UTC).timestamp()


@dataclass(slots=True)
class Request:
    id: str
    correlation_id: str
    category: str
    at: float  # event time, seconds since the epoch (createdDateTime)
    binding: Binding
    enforcement: Enforcement
    code: int | None
    user: str
    app: str
    resource: str
    os: str
    trust_type: str
    client_app: str
    device_id: str
    browser: str
    policies: tuple[tuple[str, str, bool], ...]  # token protection policies: (name, result, not satisfied)


def judge(accepted: Accepted, fallback_time: float) -> Request:
    """Apply rules 1-5 and 7 to one accepted record."""
    props = accepted.properties
    binding, code = status_of(props.tokenProtectionStatusDetails)
    view = read_policies(props.appliedConditionalAccessPolicies)
    if view.not_satisfied:
        binding = Binding.UNBOUND
    request_id = props.id
    device = props.deviceDetail or _NO_DEVICE
    return Request(
        id=request_id,
        correlation_id=_text(props.correlationId) or _text(accepted.record.correlationId) or request_id,
        category=accepted.category,
        at=event_time(props.createdDateTime, accepted.record.time, fallback_time),
        binding=binding,
        enforcement=view.enforcement,
        code=code,
        user=_text(props.userPrincipalName) or _text(props.userId),
        app=_text(props.appDisplayName) or _text(props.appId),
        resource=_text(props.resourceDisplayName) or _text(props.resourceId),
        os=_text(device.operatingSystem),
        trust_type=_text(device.trustType),
        client_app=_text(props.clientAppUsed),
        device_id=_device_id(device.deviceId),
        browser=_text(device.browser),
        policies=tuple(view.results),
    )


def event_time(created: Any, fallback_record_time: Any, fallback: float) -> float:
    """createdDateTime first, then the record's processing `time`, then the caller's fallback."""
    for value in (created, fallback_record_time):
        parsed = parse_time(value)
        if parsed is not None:
            return parsed
    return fallback


def parse_time(value: Any) -> float | None:
    """ISO 8601 (7 fractional digits, Z or offset) or the US format seen in the stream; naive means UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = datetime.strptime(value.strip(), _US_FORMAT)
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    seconds = parsed.timestamp()
    # Years 1 and 9999 parse but cannot be written back out (iso() would fail): not a usable event time.
    return seconds if EARLIEST <= seconds <= LATEST else None


def iso(seconds: float) -> str:
    """Event times go out as ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(value: Any) -> str:
    return value.strip() if type(value) is str else ""


def _device_id(value: Any) -> str:
    text = _text(value)
    # Devices of other tenants show up as "PII Removed"; that is no device id either.
    return "" if text.lower() == "pii removed" else text
