"""A sign-in: the requests that share a correlation ID, and its one verdict (rules 6 and 8).

The state is a join of its requests: copies merge to the worst binding and the
strongest enforcement, so the result does not depend on the order requests come
in, nor on how often they are delivered. It is kept compact (one small int per
request) because a busy tenant holds tens of thousands of sign-ins open.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from .binding import Binding, Enforcement, replaces
from .request import Request

UNBOUND = "unbound"
BOUND = "bound"
UNEVALUATED = "unevaluated"

_MAX_LABELS = 20  # apps/resources kept per sign-in; a real sign-in touches a handful
# Requests kept one by one per sign-in. A real sign-in has a handful; thousands under one correlation ID are a
# client in a loop (or an attack). Past this, a request still counts in the verdict (its binding, enforcement and
# code are merged into `extra`) but is not kept by id, so the state fits one table row whatever comes.
MAX_REQUESTS = 2000
_MAX_EXTRA_CODES = 20
_SEEN_BOUND, _SEEN_UNBOUND = 1, 2


def _pack(binding: Binding, enforcement: Enforcement, code: int | None) -> int:
    return int(binding) | (int(enforcement) << 2) | ((code + 1 if code is not None and code >= 0 else 0) << 4)


def _binding(packed: int) -> Binding:
    return Binding(packed & 3)


def _enforcement(packed: int) -> Enforcement:
    return Enforcement((packed >> 2) & 3)


def _code(packed: int) -> int | None:
    code = packed >> 4
    return code - 1 if code else None


def merge_copies(old: int, new: int) -> int:
    """Rule 6: the worst binding (with its code) and the strongest enforcement of two copies."""
    binding, code = _binding(old), _code(old)
    if replaces(binding, code, _binding(new)):
        binding, code = _binding(new), _code(new)
    return _pack(binding, max(_enforcement(old), _enforcement(new)), code)


_ENFORCEMENTS = tuple(Enforcement(v) for v in range(3))


def _intern(text: str) -> str:
    # Apps, resources and platforms repeat across thousands of sign-ins; keep one copy of each.
    return sys.intern(text) if text else ""


@dataclass(frozen=True, slots=True)
class Absorbed:
    """What folding one request into a sign-in changed."""

    duplicate: bool
    changed: bool  # False for a copy that adds nothing: redelivery must not reopen a final sign-in
    became_unbound: bool
    over_limit: bool = False  # past MAX_REQUESTS: counted in the verdict, not kept by id


# The few possible answers, made once: absorb runs for every record on the hot path.
_ABSORBED = {(d, c, u): Absorbed(d, c, u) for d in (False, True) for c in (False, True) for u in (False, True)}
_OVER = {(c, u): Absorbed(False, c, u, over_limit=True) for c in (False, True) for u in (False, True)}


class SignIn:
    __slots__ = (
        "apps",
        "categories",
        "client_app",
        "correlation_id",
        "extra",
        "extra_codes",
        "finals",
        "first_seen",
        "last_seen",
        "os",
        "requests",
        "resources",
        "touched_at",
        "trust_type",
        "unbound",
        "user",
    )

    def __init__(self, correlation_id: str) -> None:
        self.correlation_id = correlation_id
        self.requests: dict[str, int] = {}  # request id -> packed binding, enforcement, code
        self.first_seen = float("inf")
        self.last_seen = float("-inf")
        self.touched_at = float("-inf")  # event clock when a request last came (drives the settle window)
        self.user = ""
        self.apps: tuple[str, ...] = ()
        self.resources: tuple[str, ...] = ()
        self.os = ""
        self.trust_type = ""
        self.client_app = ""
        self.categories: tuple[str, ...] = ()
        self.finals = 0  # how many times it was declared final (a later request reopens it)
        self.unbound = False  # any request unbound; never goes back (derivable, kept for the hot path)
        self.extra = 0  # requests past MAX_REQUESTS: bound seen (1), unbound seen (2), strongest enforcement (<< 2)
        self.extra_codes: tuple[int, ...] = ()  # and their status codes

    def absorb(self, request: Request, clock: float) -> Absorbed:
        """Fold one request in; `clock` is the event clock at arrival."""
        packed = _pack(request.binding, request.enforcement, request.code)
        previous = self.requests.get(request.id)
        if previous is None and len(self.requests) >= MAX_REQUESTS:
            return self._absorb_extra(request, clock)
        merged = packed if previous is None else merge_copies(previous, packed)
        if merged == previous:
            return _ABSORBED[True, False, False]
        self.requests[request.id] = merged
        at = request.at
        self._describe(request, earliest=at < self.first_seen)
        self.first_seen = min(self.first_seen, at)
        self.last_seen = max(self.last_seen, at)
        self.touched_at = max(self.touched_at, clock, at)
        became_unbound = not self.unbound and merged & 3 == Binding.UNBOUND
        self.unbound = self.unbound or became_unbound
        return _ABSORBED[previous is not None, True, became_unbound]

    def _absorb_extra(self, request: Request, clock: float) -> Absorbed:
        """A request past the limit: its binding, enforcement and code join the verdict; its id is not kept."""
        seen = {Binding.BOUND: _SEEN_BOUND, Binding.UNBOUND: _SEEN_UNBOUND}.get(request.binding, 0)
        enforcement = max((self.extra >> 2) & 3, int(request.enforcement))
        extra = (self.extra & 3) | seen | (enforcement << 2)
        codes = self.extra_codes
        code = request.code
        if request.binding == Binding.UNBOUND and code is not None and code not in codes:
            codes = (*codes, code)[:_MAX_EXTRA_CODES]
        if extra == self.extra and codes == self.extra_codes:
            return _OVER[False, False]
        self.extra, self.extra_codes = extra, codes
        at = request.at
        self.first_seen, self.last_seen = min(self.first_seen, at), max(self.last_seen, at)
        self.touched_at = max(self.touched_at, clock, at)
        became_unbound = not self.unbound and request.binding == Binding.UNBOUND
        self.unbound = self.unbound or became_unbound
        return _OVER[True, became_unbound]

    def _describe(self, request: Request, earliest: bool) -> None:
        """Who and what device: the earliest request's values win, so arrival order does not matter."""
        if earliest or not (self.user and self.os and self.trust_type and self.client_app):
            self.user = _pick(self.user, request.user, earliest)
            self.os = _pick(self.os, request.os, earliest)
            self.trust_type = _pick(self.trust_type, request.trust_type, earliest)
            self.client_app = _pick(self.client_app, request.client_app, earliest)
        if request.app not in self.apps:
            self.apps = _add(self.apps, request.app)
        if request.resource not in self.resources:
            self.resources = _add(self.resources, request.resource)
        if request.category not in self.categories:
            self.categories = _add(self.categories, request.category)

    @property
    def verdict(self) -> str:
        if self.unbound:
            return UNBOUND
        if self.extra & _SEEN_BOUND or any(p & 3 == Binding.BOUND for p in self.requests.values()):
            return BOUND
        return UNEVALUATED

    @property
    def enforcement(self) -> Enforcement:
        kept = max((p >> 2) & 3 for p in self.requests.values()) if self.requests else 0
        return _ENFORCEMENTS[max(kept, (self.extra >> 2) & 3)]

    @property
    def unbound_requests(self) -> int:
        return sum(1 for p in self.requests.values() if p & 3 == Binding.UNBOUND)

    @property
    def status_codes(self) -> list[int]:
        """Sorted distinct codes of the unbound requests."""
        kept = {c for p in self.requests.values() if p & 3 == Binding.UNBOUND and (c := _code(p)) is not None}
        return sorted(kept.union(self.extra_codes))

    def request_states(self) -> dict[str, tuple[Binding, Enforcement, int | None]]:
        return {rid: (_binding(p), _enforcement(p), _code(p)) for rid, p in self.requests.items()}

    # --- persistence: plain data, so any store can keep it ---

    def to_state(self) -> dict[str, Any]:
        return {
            "correlation_id": self.correlation_id,
            "requests": dict(self.requests),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "touched_at": self.touched_at,
            "user": self.user,
            "apps": list(self.apps),
            "resources": list(self.resources),
            "os": self.os,
            "trust_type": self.trust_type,
            "client_app": self.client_app,
            "categories": list(self.categories),
            "finals": self.finals,
            **({"extra": self.extra, "extra_codes": list(self.extra_codes)} if self.extra else {}),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SignIn:
        signin = cls(state["correlation_id"])
        signin.requests = {str(k): int(v) for k, v in state["requests"].items()}
        signin.first_seen = float(state["first_seen"])
        signin.last_seen = float(state["last_seen"])
        signin.touched_at = float(state["touched_at"])
        signin.user = state.get("user", "")
        signin.apps = tuple(state.get("apps", ()))
        signin.resources = tuple(state.get("resources", ()))
        signin.os = state.get("os", "")
        signin.trust_type = state.get("trust_type", "")
        signin.client_app = state.get("client_app", "")
        signin.categories = tuple(state.get("categories", ()))
        signin.finals = int(state.get("finals", 0))
        signin.extra = int(state.get("extra", 0))
        signin.extra_codes = tuple(int(c) for c in state.get("extra_codes", ()))
        signin.unbound = bool(signin.extra & _SEEN_UNBOUND) or any(
            p & 3 == Binding.UNBOUND for p in signin.requests.values()
        )
        return signin

    def __repr__(self) -> str:
        return f"SignIn({self.correlation_id!r}, {self.verdict}, requests={len(self.requests)})"


def _pick(current: str, offered: str, earliest: bool) -> str:
    if offered and (earliest or not current):
        return _intern(offered)
    return current


def _add(labels: tuple[str, ...], label: str) -> tuple[str, ...]:
    if not label or label in labels or len(labels) >= _MAX_LABELS:
        return labels
    grown = (*labels, _intern(label))
    # Thousands of open sign-ins share a few app, resource and category sets: keep one tuple of each.
    shared = _LABEL_SETS.get(grown)
    if shared is None:
        if len(_LABEL_SETS) >= 100_000:
            _LABEL_SETS.clear()
        shared = _LABEL_SETS[grown] = grown
    return shared


_LABEL_SETS: dict[tuple[str, ...], tuple[str, ...]] = {}
