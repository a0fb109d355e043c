"""A Conditional Access policy change that touches token protection, read from an Entra audit record.

Pure. The same diagnostic setting that streams sign-ins can stream `AuditLogs`; Entra writes one record per
Conditional Access policy save (`loggedByService` "Conditional Access", activity "Add|Update|Delete conditional
access policy"), with the policy before and after as JSON text in the target's modified property named
`ConditionalAccessPolicy`, in the shape of Microsoft Graph's `conditionalAccessPolicy`. Token protection is the
session control `sessionControls.secureSignInSession.isEnabled` (Graph's `secureSignInSessionControl`).

Only changes whose old or new policy holds token protection are kept; every other audit record is skipped and
counted by why. Values are read leniently: keys missing, `null` and `[]` all mean "not configured", enum case
varies between records, and the companion "Core Directory" record of each save is skipped (it would count the
change twice). Sources: Microsoft Graph `directoryAudit`, `modifiedProperty`, `conditionalAccessPolicy`,
`conditionalAccessSessionControls` and `secureSignInSessionControl` resource pages; Entra's "Troubleshoot
Conditional Access policy changes" page (audit values before and after).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from .timestamp import parse_time

ACTIVITY = re.compile(r"^(add|update|delete) conditional access policy$", re.IGNORECASE)
REPORT_ONLY = "enabledforreportingbutnotenforced"
STATES = {"enabled": "on", "disabled": "off", REPORT_ONLY: "report_only"}
MAX_TEXT = 300  # characters kept of a name or an actor: they go into alerts and logs

# (what the change is called, the path into the policy) for the scope a policy applies to
SCOPE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("users included", ("conditions", "users", "includeUsers")),
    ("users excluded", ("conditions", "users", "excludeUsers")),
    ("groups included", ("conditions", "users", "includeGroups")),
    ("groups excluded", ("conditions", "users", "excludeGroups")),
    ("roles included", ("conditions", "users", "includeRoles")),
    ("roles excluded", ("conditions", "users", "excludeRoles")),
    ("apps included", ("conditions", "applications", "includeApplications")),
    ("apps excluded", ("conditions", "applications", "excludeApplications")),
    ("platforms included", ("conditions", "platforms", "includePlatforms")),
    ("platforms excluded", ("conditions", "platforms", "excludePlatforms")),
    ("client app types", ("conditions", "clientAppTypes")),
)


@dataclass(frozen=True, slots=True)
class ScopeChange:
    """One list of a policy's scope that changed: what was added and what was removed."""

    what: str  # "users excluded", "platforms included", ...
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def counts(self) -> str:
        """How many came and went, as "+2 -1"."""
        signs = (f"+{len(self.added)}" if self.added else "", f"-{len(self.removed)}" if self.removed else "")
        return " ".join(sign for sign in signs if sign)


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """One save of a token protection policy: which policy, what changed, who did it and when."""

    id: str  # the audit record's id: a redelivered record is the same change
    at: float  # when the change was made (activityDateTime)
    policy_id: str
    policy: str  # the policy's name after the change (before it, for a delete)
    operation: str  # add | update | delete
    actor: str  # a user's UPN, else the app's name or id ("" when the record names neither)
    state_before: str  # on | off | report_only | "" (the policy did not exist)
    state_after: str  # on | off | report_only | "" (deleted)
    protection_before: bool  # token protection was in the policy before
    protection_after: bool
    scope: tuple[ScopeChange, ...] = field(default_factory=tuple)
    renamed_from: str = ""

    @property
    def enforces_now(self) -> bool:
        """The change that turns report-only results into blocked sign-ins: token protection is now enforced where it
        was not (a switch to On, or the control added to a policy that is On)."""
        return (
            self.state_after == "on"
            and self.protection_after
            and not (self.state_before == "on" and self.protection_before)
        )

    @property
    def widens(self) -> bool:
        """An enforced token protection policy now covers more: users, groups, roles, apps, platforms or client
        app types included, or taken out of an exclusion."""
        if not (self.state_after == "on" and self.protection_after and self.state_before == "on"):
            return False
        return any(
            (s.added and "included" in s.what)
            or (s.removed and "excluded" in s.what)
            or (s.added and s.what == "client app types")
            for s in self.scope
        )

    @property
    def opens_watch(self) -> bool:
        """Enforced blocks may start now: watch what the policy does next."""
        return self.enforces_now or self.widens

    @property
    def rolls_back(self) -> bool:
        """Token protection was enforced and no longer is (switched to report-only or off, removed, deleted)."""
        before = self.state_before == "on" and self.protection_before
        return before and not (self.state_after == "on" and self.protection_after)

    @property
    def action(self) -> str:
        """What was done, as a person says it: "switched On", "switched to report-only", "widened" ..."""
        if self.operation == "delete":
            return "deleted"
        if self.state_before != self.state_after:
            return f"switched {_STATE_WORDS.get(self.state_after, self.state_after)}"
        if self.protection_before != self.protection_after:
            return "given token protection" if self.protection_after else "stripped of token protection"
        if self.widens:
            return "widened"
        return "changed"

    @property
    def summary(self) -> str:
        """One line for a person: `'CA-TP01' report-only → on by admin@contoso.com; apps included +1`."""
        parts = [f"{_state(self.state_before)} → {_state(self.state_after)}"]
        if self.protection_before != self.protection_after:
            parts = [f"token protection {'added' if self.protection_after else 'removed'}", *parts]
        parts += [f"{s.what} {s.counts}" for s in self.scope]
        by = f" by {self.actor}" if self.actor else ""
        return f"{self.operation} '{self.policy}'{by}: " + "; ".join(parts)

    def line(self) -> dict[str, Any]:
        """The change as replay prints it among the verdict lines."""
        return {
            "type": "policy_change",
            "id": self.id,
            "at": self.at,
            "policy_id": self.policy_id,
            "policy": self.policy,
            "operation": self.operation,
            "actor": self.actor,
            "state_before": self.state_before,
            "state_after": self.state_after,
            "token_protection_before": self.protection_before,
            "token_protection_after": self.protection_after,
            "enforces_now": self.enforces_now,
            "scope": [{"what": s.what, "added": list(s.added), "removed": list(s.removed)} for s in self.scope],
            "renamed_from": self.renamed_from,
            "summary": self.summary,
        }

    @classmethod
    def from_line(cls, data: Mapping[str, Any]) -> PolicyChange:
        """A change from its line (as stored); the inverse of `line`."""
        scope = tuple(
            ScopeChange(str(s["what"]), tuple(map(str, s.get("added") or ())), tuple(map(str, s.get("removed") or ())))
            for s in data.get("scope") or ()
        )
        return cls(
            id=str(data["id"]),
            at=float(data["at"]),
            policy_id=str(data.get("policy_id") or ""),
            policy=str(data.get("policy") or ""),
            operation=str(data.get("operation") or "update"),
            actor=str(data.get("actor") or ""),
            state_before=str(data.get("state_before") or ""),
            state_after=str(data.get("state_after") or ""),
            protection_before=bool(data.get("token_protection_before")),
            protection_after=bool(data.get("token_protection_after")),
            scope=scope,
            renamed_from=str(data.get("renamed_from") or ""),
        )


_STATE_WORDS = {"on": "On", "off": "Off", "report_only": "to report-only", "unknown": "to an unknown state"}


def policy_key(name: str) -> str:
    """How a policy is matched between the sign-in logs (which name it) and the audit log: its display name, case
    and spacing folded."""
    return " ".join(name.split()).casefold()


class Skip(Exception):
    """An audit record that is not a token protection policy change; its message is the counted reason."""


def read_change(record: Mapping[str, Any]) -> PolicyChange:
    """The change in one audit record (Event Hub/archive record with `properties`, or a Graph directoryAudit);
    Skip says why a record is not one."""
    audit = record.get("properties") if isinstance(record.get("properties"), Mapping) else record
    activity = _text(audit.get("activityDisplayName") or record.get("operationName"))
    if not ACTIVITY.match(activity):
        raise Skip("other audit activity")
    if _text(audit.get("loggedByService")).lower() not in ("conditional access", ""):
        raise Skip("companion record")
    if _text(audit.get("result") or "success").lower() != "success":
        raise Skip("failed change")
    target = _policy_target(audit.get("targetResources"))
    old, new = (_policy(target, side) for side in ("oldValue", "newValue"))
    if not (_protected(old) or _protected(new)):
        raise Skip("not a token protection policy")
    return _change(record, audit, target, (old, new))


def _change(
    record: Mapping[str, Any], audit: Mapping[str, Any], target: Mapping[str, Any], sides: tuple[Any, Any]
) -> PolicyChange:
    old, new = sides
    activity = _text(audit.get("activityDisplayName") or record.get("operationName"))
    at = parse_time(audit.get("activityDateTime")) or parse_time(record.get("time"))
    if at is None:
        raise Skip("no time")
    name_before, name_after = _text((old or {}).get("displayName")), _text((new or {}).get("displayName"))
    return PolicyChange(
        id=_text(audit.get("id")) or _text(record.get("correlationId")) or f"{target.get('id')}@{at}",
        at=at,
        policy_id=_text(target.get("id") or (new or old or {}).get("id")),
        policy=name_after or name_before or _text(target.get("displayName")) or "(unnamed policy)",
        operation=activity.split(maxsplit=1)[0].lower(),
        actor=_actor(audit.get("initiatedBy")),
        state_before=_state_of(old),
        state_after=_state_of(new),
        protection_before=_protected(old),
        protection_after=_protected(new),
        scope=tuple(_scope(old or {}, new or {})),
        renamed_from=name_before if name_before and name_after and name_before != name_after else "",
    )


def _policy_target(targets: Any) -> Mapping[str, Any]:
    for target in targets if isinstance(targets, list) else []:
        if isinstance(target, Mapping) and _policy_property(target) is not None:
            return target
    raise Skip("no policy in the record")


def _policy_property(target: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The modified property holding the policy, found by name: its place in the list varies."""
    for prop in target.get("modifiedProperties") or []:
        if isinstance(prop, Mapping) and _text(prop.get("displayName")).lower() == "conditionalaccesspolicy":
            return prop
    return None


def _policy(target: Mapping[str, Any], side: str) -> dict[str, Any] | None:
    """One side of the change as a policy object; None when empty (an add's before, a delete's after)."""
    raw = (_policy_property(target) or {}).get(side)
    if raw in (None, "", "null"):
        return None
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        value = orjson.loads(raw if isinstance(raw, (str, bytes)) else b"")
    except orjson.JSONDecodeError:
        raise Skip("policy value is not JSON") from None
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Skip("policy value is not an object")
    return value


def _protected(policy: Mapping[str, Any] | None) -> bool:
    control = _path(policy or {}, ("sessionControls", "secureSignInSession"))
    return isinstance(control, Mapping) and control.get("isEnabled") is True


def _state_of(policy: Mapping[str, Any] | None) -> str:
    if policy is None:
        return ""
    return STATES.get(_text(policy.get("state")).lower(), "unknown")


def _scope(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[ScopeChange]:
    found = []
    for what, path in SCOPE:
        before, after = _values(_path(old, path)), _values(_path(new, path))
        if before != after:
            added = tuple(sorted(after - before, key=str.lower))
            removed = tuple(sorted(before - after, key=str.lower))
            found.append(ScopeChange(what, added, removed))
    return found


def _values(value: Any) -> frozenset[str]:
    """A list of the policy as a set, case folded for enums; missing, null and [] are all "not configured"."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return frozenset()
    return frozenset(_text(v).casefold() for v in value if isinstance(v, (str, int)) and _text(v))


def _path(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = data
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _actor(initiated: Any) -> str:
    if not isinstance(initiated, Mapping):
        return ""
    user = initiated.get("user") if isinstance(initiated.get("user"), Mapping) else {}
    app = initiated.get("app") if isinstance(initiated.get("app"), Mapping) else {}
    for value in (user.get("userPrincipalName"), user.get("displayName"), app.get("displayName"), app.get("appId")):
        if _text(value):
            return _text(value)
    return ""


def _text(value: Any) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        return ""
    return " ".join(str(value).split())[:MAX_TEXT]


def _state(state: str) -> str:
    return {"report_only": "report-only", "": "none"}.get(state, state)
