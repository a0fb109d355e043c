"""Token binding of one request: what Entra says, and what its Conditional Access policies say.

Rules 2, 3 and 5 of README live here. The ranks let copies of a request, and the
requests of a sign-in, merge with `max`: the worst binding and the strongest
enforcement win.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from .text import clean

if TYPE_CHECKING:
    from .record import Policy


class Binding(IntEnum):
    """Worst is highest, so `max` merges copies (rule 6)."""

    NOT_EVALUATED = 0
    BOUND = 1
    UNBOUND = 2

    @property
    def label(self) -> str:
        return _BINDING_LABELS[self]


_BINDING_LABELS = {Binding.NOT_EVALUATED: "not_evaluated", Binding.BOUND: "bound", Binding.UNBOUND: "unbound"}


class Enforcement(IntEnum):
    """Strongest is highest, so `max` merges copies and requests."""

    NONE = 0
    REPORT_ONLY = 1
    ENFORCED = 2

    @property
    def label(self) -> str:
        return _ENFORCEMENT_LABELS[self]

    @classmethod
    def from_label(cls, label: str) -> Enforcement:
        return _ENFORCEMENT_BY_LABEL[label]


_ENFORCEMENT_LABELS = {
    Enforcement.NONE: "none",
    Enforcement.REPORT_ONLY: "report_only",
    Enforcement.ENFORCED: "enforced",
}
_ENFORCEMENT_BY_LABEL = {v: k for k, v in _ENFORCEMENT_LABELS.items()}

MAX_POLICY_NAME = 256  # Entra caps a policy's display name at 256 characters; so do we, for hostile input
# The session control was renamed in June 2023; both names appear in real data.
TOKEN_PROTECTION_CONTROLS = frozenset({"signintokenprotection", "binding"})
_CONTROL_CACHE: dict[str, bool] = {}
# Results under which a policy did not apply to the request at all.
NOT_APPLIED_RESULTS = frozenset({"notapplied", "reportonlynotapplied", "notenabled"})
ENFORCED_RESULTS = frozenset({"success", "failure"})


def status_of(details: Any) -> tuple[Binding, int | None]:
    """Read `tokenProtectionStatusDetails`: its binding and its status code (rules 2 and 4)."""
    if not isinstance(details, dict):
        return Binding.NOT_EVALUATED, None
    raw = details.get("signInSessionStatus")
    binding = Binding.NOT_EVALUATED
    if isinstance(raw, str):
        lowered = raw.lower()
        if lowered == "unbound":
            binding = Binding.UNBOUND
        elif lowered == "bound":
            binding = Binding.BOUND
    return binding, code_of(details.get("signInSessionStatusCode"))


MAX_CODE = 2**31 - 1  # signInSessionStatusCode is an Int32


def code_of(raw: Any) -> int | None:
    """A status code as an int; digits in a string count, anything else (or out of Int32 range) is no code."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        text = raw.strip()
        raw = int(text) if text.isdigit() and text.isascii() and len(text) <= 10 else None
    if isinstance(raw, int) and 0 <= raw <= MAX_CODE:
        return raw
    return None


def strongest(results: Iterable[str]) -> Enforcement:
    """The enforcement of a request from its token protection policies' lower-cased results."""
    return max((enforcement_of(result) for result in results), default=Enforcement.NONE)


def replaces(kept: Binding, kept_code: int | None, offered: Binding) -> bool:
    """Rule 6: whether a copy's binding (with its code) wins over the one kept: the worst binding, and a code
    over no code for the same binding."""
    return offered > kept or (offered == kept and kept_code is None)


class PolicyView:
    """What the token protection policies of one request say (rules 3 and 5)."""

    __slots__ = ("enforcement", "not_satisfied", "results")

    def __init__(self) -> None:
        self.enforcement = Enforcement.NONE
        self.not_satisfied = False
        self.results: list[tuple[str, str, bool]] = []


# Most records name no token protection policy at all; they all share this (never mutated) answer.
NO_POLICY = PolicyView()


def read_policies(policies: list[Policy] | None) -> PolicyView:
    """Walk `appliedConditionalAccessPolicies` once, looking only at token protection policies.

    A record lists every policy of the tenant (~30), so this loop is the hot path:
    most entries are rejected on their empty session controls without a call.
    """
    if type(policies) is not list:
        return NO_POLICY
    view = NO_POLICY
    for policy in policies:
        controls = policy.enforcedSessionControls
        if not controls or _plainly_other(controls) or not _has_token_protection(controls):
            continue
        result = policy.result
        result = result.lower() if isinstance(result, str) else ""
        if result in NOT_APPLIED_RESULTS:
            continue
        if view is NO_POLICY:
            view = PolicyView()
        blocked = _has_token_protection(policy.sessionControlsNotSatisfied)
        view.not_satisfied = view.not_satisfied or blocked
        view.enforcement = max(view.enforcement, enforcement_of(result))
        name = policy.displayName
        view.results.append((clean(name, MAX_POLICY_NAME) if isinstance(name, str) else "", clean(result, 64), blocked))
    return view


def _plainly_other(controls: Any) -> bool:
    """The common case decided without a loop: one control, already known not to be token protection."""
    if type(controls) is list and len(controls) == 1:
        first = controls[0]
        return type(first) is str and _CONTROL_CACHE.get(first) is False
    return False


def enforcement_of(result: str) -> Enforcement:
    """Rule 5 for one token protection policy's lower-cased result."""
    if result in ENFORCED_RESULTS:
        return Enforcement.ENFORCED
    if result.startswith("reportonly"):
        # reportOnlyNotApplied was filtered out before; every other reportOnly* counts.
        return Enforcement.REPORT_ONLY
    return Enforcement.NONE


def _has_token_protection(controls: Any) -> bool:
    if type(controls) is str:
        # Graph renders collections as comma strings in places; accept that drift too.
        controls = controls.split(",")
    elif type(controls) is not list:
        return False
    for control in controls:
        if type(control) is str:
            known = _CONTROL_CACHE.get(control)
            if known is None:
                known = _remember(control)
            if known:
                return True
    return False


def _remember(control: str) -> bool:
    """Control names repeat across every record; remember each verdict (bounded, input is untrusted)."""
    verdict = control.strip().lower() in TOKEN_PROTECTION_CONTROLS
    if len(_CONTROL_CACHE) < 1024:
        _CONTROL_CACHE[control] = verdict
    return verdict
