"""Where sign-ins live between requests: one interface, an in-memory and a Table Storage implementation.

The store does the folding itself (`merge`) so that a shared store can make each
sign-in's update atomic (Table Storage: ETag-conditioned entity group
transactions) while the in-memory store simply mutates a dict. Both answer the
same questions: what changed, which sign-ins are due, what is stored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from shared.core.clock import ClockState
from shared.core.request import Request
from shared.core.signin import SignIn


@dataclass(slots=True)
class Update:
    """What one batch did to one sign-in."""

    signin: SignIn
    changed: bool  # False when the batch only repeated what was stored (redelivery): nothing to write
    created: bool  # its first request came in this batch
    became_unbound: bool  # its verdict turned unbound in this batch (counted once, ever)
    new_requests: int
    duplicates: int
    reopened: bool  # it had been final; a late request updated it
    first_at: float  # event time of the earliest request of this batch for it
    unbound_at: float | None  # event time of the request that made it unbound
    over_limit: list[Request] = field(default_factory=list)  # past MAX_REQUESTS: in the verdict, not kept by id
    # Its stored row was written by a newer release: left untouched, these requests set aside (dead-lettered).
    refused: list[Request] = field(default_factory=list)


class SignInStore(Protocol):
    def merge(self, requests: Sequence[Request], clock: float, batch: str | None = None) -> list[Update]:
        """Fold requests into their sign-ins (atomically per sign-in) and say what changed.

        `batch` identifies a batch a retry reproduces: a shared store reports the first run's
        created/unbound transitions again for sign-ins that run already wrote, so none is lost.
        """
        ...

    def settle(self, cutoff: float, orphan_age: float = 600.0) -> list[SignIn]:
        """Claim the open sign-ins that no request touched after `cutoff` (event time); each is returned once.

        With them come sign-ins a shared store declared final more than `orphan_age` wall seconds ago whose
        report was never acknowledged (the process that claimed them failed before reporting them)."""
        ...

    def acknowledge(self, finals: Sequence[SignIn], flush: bool = False) -> None:
        """These final sign-ins have been reported; a shared store stops keeping them for a report (at once when
        `flush`, as at the end of a replay)."""
        ...

    def get(self, correlation_id: str) -> SignIn | None: ...

    def signins(self) -> Iterator[SignIn]: ...

    def expire(self, before: float) -> int:
        """Retention: remove final sign-ins last touched before `before`; say how many."""
        ...

    def load_clock(self) -> ClockState | None: ...

    def save_clock(self, state: ClockState) -> None:
        """Advance the shared clock; never moves it back."""
        ...


def group_by_signin(requests: Sequence[Request]) -> dict[str, list[Request]]:
    grouped: dict[str, list[Request]] = defaultdict(list)
    for request in requests:
        grouped[request.correlation_id].append(request)
    return grouped


def fold(signin: SignIn | None, correlation_id: str, requests: Sequence[Request], clock: float) -> Update:
    """Pure: apply a batch's requests of one sign-in to its stored state (None when new)."""
    created = signin is None
    current = SignIn(correlation_id) if signin is None else signin
    reopened = current.finals > 0 and not created
    new_requests = duplicates = 0
    changed = False
    unbound_at = None
    first_at = float("inf")
    over_limit: list[Request] = []
    for request in requests:
        absorbed = current.absorb(request, clock)
        if absorbed.over_limit:
            over_limit.append(request)
        duplicates += absorbed.duplicate
        new_requests += not (absorbed.duplicate or absorbed.over_limit)
        changed = changed or absorbed.changed
        if absorbed.became_unbound:
            unbound_at = request.at
        first_at = min(first_at, request.at)
    return Update(
        signin=current,
        changed=changed,
        created=created,
        became_unbound=unbound_at is not None,
        new_requests=new_requests,
        duplicates=duplicates,
        reopened=reopened and changed,
        first_at=first_at,
        unbound_at=unbound_at,
        over_limit=over_limit,
    )
