"""One judged request: a sign-in record reduced to the fields the rules and the people use.

Only these fields are read and checked; the rest of a ~10 KB record is left alone,
which keeps the hot path close to the cost of decoding the JSON at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .binding import Binding, Enforcement, read_policies, replaces, status_of
from .record import Accepted, Device
from .text import clean, clean_id
from .timestamp import event_time

_NO_DEVICE = Device()


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
    # Where it came from in its batch: (message position, record index); -1 when not from a batch.
    source: tuple[int, int] = field(default=(-1, -1), compare=False)


def judge(accepted: Accepted, fallback_time: float) -> Request:
    """Apply rules 1-5 and 7 to one accepted record."""
    props = accepted.properties
    binding, code = status_of(props.tokenProtectionStatusDetails)
    view = read_policies(props.appliedConditionalAccessPolicies)
    if view.not_satisfied:
        binding = Binding.UNBOUND
    request_id = clean_id(props.id)
    device = props.deviceDetail or _NO_DEVICE
    return Request(
        id=request_id,
        correlation_id=_id(props.correlationId) or _id(accepted.record.correlationId) or request_id,
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
        source=(-1, accepted.index),
    )


def merge_copies(old: Request, new: Request) -> Request:
    """Copies of one request (rule 6): the worst binding with its code, the strongest enforcement, every policy."""
    base = new if replaces(old.binding, old.code, new.binding) else old
    policies = old.policies + tuple(p for p in new.policies if p not in old.policies)
    return replace(base, enforcement=max(old.enforcement, new.enforcement), policies=policies)


def _text(value: Any) -> str:
    return clean(value) if type(value) is str else ""


def _id(value: Any) -> str:
    return clean_id(value) if type(value) is str else ""


def _device_id(value: Any) -> str:
    text = _text(value)
    # Devices of other tenants show up as "PII Removed"; that is no device id either.
    return "" if text.lower() == "pii removed" else text
