"""The one pipeline that the Event Hub function, replay and the standalone consumer all drive.

messages -> records (core/record.py) -> requests (core/request.py) -> sign-ins in the
store (store.py) -> final verdicts after the settle window, with observers (detection,
reports) seeing every batch. The pipeline never raises for bad data; a failing
store raises, so the host's retry policy can run the batch again (the store's
writes are idempotent).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import orjson

from shared.core.clock import FUTURE_TOLERANCE, Clock, SystemClock, advance, idle_clock
from shared.core.detail import encode
from shared.core.message import Message
from shared.core.policy_change import PolicyChange
from shared.core.record import Accepted, decode, read_message
from shared.core.rejection import Rejection
from shared.core.request import Request, judge
from shared.core.signin import MAX_REQUESTS, SignIn
from shared.core.verdict import verdict_line

from .store import SignInStore, Update


@dataclass(slots=True)
class Tally:
    """Counts that add up across batches; nothing is dropped without landing in one of them."""

    messages: int = 0
    records: int = 0  # user sign-in records judged, copies included
    skipped: Counter[str] = field(default_factory=Counter)  # other categories, by name
    rejected: int = 0
    duplicates: int = 0  # copies of a request already stored
    requests: int = 0  # distinct requests
    signins: int = 0  # sign-ins seen for the first time
    reopened: int = 0  # final sign-ins a late request updated
    finals: int = 0  # verdicts declared final
    # Requests past their sign-in's limit (in its verdict), or whose sign-in a newer release stored (not judged
    # here): kept in the dead-letter trail either way.
    set_aside: int = 0
    changes: list[PolicyChange] = field(default_factory=list)  # token protection policy changes read (AuditLogs)

    def add(self, other: Tally) -> None:
        names = ("messages", "records", "rejected", "duplicates", "requests", "signins", "reopened", "finals")
        for name in (*names, "set_aside"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.skipped.update(other.skipped)
        self.changes += other.changes


@dataclass(slots=True)
class Batch:
    """What observers see of one step: the requests judged, what they changed, and what became final."""

    requests: list[Request]
    updates: list[Update]
    finals: list[SignIn]
    clock: float | None
    final: bool = False  # the end of the input (replay's drain): nothing more will come
    previous_clock: float | None = None  # the event clock before this batch (what was already judged)
    key: str | None = None  # the same for a redelivery of the same events (see batch_key)
    changes: list[PolicyChange] = field(default_factory=list)  # token protection policy changes read (AuditLogs)


@dataclass(slots=True)
class Outcome:
    tally: Tally
    rejections: list[Rejection]
    observed: list[dict[str, Any]]  # observer lines (alerts), in the order they were decided
    clock: float | None
    finals: list[SignIn] = field(default_factory=list)  # sign-ins declared final in this step
    set_aside: list[Rejection] = field(default_factory=list)  # judged and counted, but kept in the dead letters

    @property
    def dead_letters(self) -> list[Rejection]:
        """What goes to the dead-letter trail: the rejected, then the set aside."""
        return self.rejections + self.set_aside

    @classmethod
    def empty(cls) -> Outcome:
        return cls(tally=Tally(), rejections=[], observed=[], clock=None)

    def add(self, other: Outcome) -> None:
        """Fold a later step's outcome into this one (an invocation judged in several slices)."""
        self.tally.add(other.tally)
        self.rejections += other.rejections
        self.observed += other.observed
        self.finals += other.finals
        self.set_aside += other.set_aside
        if other.clock is not None:
            self.clock = other.clock if self.clock is None else max(self.clock, other.clock)

    @property
    def lines(self) -> list[dict[str, Any]]:
        """Verdict lines, policy changes, then observer lines: built on demand, because the function only logs
        counts."""
        changes = [change.line() for change in self.tally.changes]
        return [verdict_line(signin) for signin in self.finals] + changes + self.observed


class Observer(Protocol):
    def observe(self, batch: Batch) -> list[dict[str, Any]]:
        """React to a batch (count windows, evaluate rules); return lines to emit after the batch's verdicts."""
        ...


class Pipeline:
    def __init__(
        self,
        store: SignInStore,
        settle_seconds: float,
        observers: Sequence[Observer] = (),
        wall: Clock | None = None,
    ) -> None:
        self.store = store
        self.settle_seconds = settle_seconds
        self.observers = list(observers)
        self.wall = wall or SystemClock()

    def ingest(self, messages: Iterable[Message]) -> Outcome:
        """Judge a batch of messages, fold it into the store, and settle what is due."""
        batch = list(messages)
        wall = self.wall.now()
        state = self.store.load_clock()
        requests, rejections, tally = judge_all(batch, state.watermark if state else wall, wall + FUTURE_TOLERANCE)
        new_state = advance(state, [r.at for r in requests], wall)
        if new_state is not state and new_state is not None:
            self.store.save_clock(new_state)
        clock = new_state.watermark if new_state else None
        key = batch_key(batch)
        updates = self.store.merge(requests, clock if clock is not None else wall, key) if requests else []
        over_limit: list[Request] = []
        refused: list[Request] = []
        for update in updates:
            tally.duplicates += update.duplicates
            tally.requests += update.new_requests
            tally.signins += update.created
            tally.reopened += update.reopened
            over_limit += update.over_limit
            refused += update.refused
        tally.set_aside = len(over_limit) + len(refused)
        previous = state.watermark if state else None
        outcome = self._settle(requests, updates, clock, tally, previous=previous, key=key)
        outcome.rejections = rejections
        outcome.set_aside = set_aside(batch, over_limit) + set_aside(batch, refused, NEWER_ROW)
        return outcome

    def tick(self) -> Outcome:
        """Settle on a timer while the stream is quiet: the event clock moves on with the wall clock.

        Observers see an empty batch at that clock, so detection resolves alerts whose traffic stopped."""
        clock = idle_clock(self.store.load_clock(), self.wall.now())
        return self._settle([], [], clock, Tally())

    def drain(self) -> Outcome:
        """End of input (replay): every open sign-in is final now."""
        state = self.store.load_clock()
        return self._settle([], [], state.watermark if state else None, Tally(), cutoff=float("inf"), final=True)

    def _settle(
        self,
        requests: list[Request],
        updates: list[Update],
        clock: float | None,
        tally: Tally,
        *,
        cutoff: float | None = None,
        final: bool = False,
        previous: float | None = None,
        key: str | None = None,
    ) -> Outcome:
        if cutoff is None:
            cutoff = clock - self.settle_seconds if clock is not None else float("-inf")
        # At the end of the input nothing else will report what a failed earlier run declared final: report it now.
        finals = self.store.settle(cutoff, orphan_age=0.0) if final else self.store.settle(cutoff)
        tally.finals += len(finals)
        lines: list[dict[str, Any]] = []
        batch = Batch(
            requests=requests,
            updates=updates,
            finals=finals,
            clock=clock,
            final=final,
            previous_clock=previous,
            key=key,
            changes=tally.changes,
        )
        for observer in self.observers:
            lines.extend(observer.observe(batch))
        self.store.acknowledge(finals, flush=final)
        return Outcome(tally=tally, rejections=[], observed=lines, clock=clock, finals=finals)


def judge_all(batch: Sequence[Message], fallback: float, latest: float) -> tuple[list[Request], list[Rejection], Tally]:
    """Read and judge every message; a record that cannot be judged is rejected, never raised.

    `fallback` is the event time of records that carry none (nor an enqueued time); a record dated after
    `latest` (the wall clock plus a tolerance) gets it too, so it cannot hold its sign-in open for years.
    """
    tally = Tally(messages=len(batch))
    requests: list[Request] = []
    rejections: list[Rejection] = []
    for position, message in enumerate(batch):
        # Judge each message as soon as it is decoded, so its ~1 MB of JSON is garbage before the next one.
        reading = read_message(message)
        at = message.origin.enqueued_time or fallback
        for accepted in reading.accepted:
            try:
                request = judge(accepted, at)
            except (ValueError, TypeError, OverflowError) as error:
                reason = f"record could not be judged: {type(error).__name__}"
                rejections.append(Rejection(reason, message.origin, _raw(accepted), accepted.index))
                continue
            if request.at > latest:
                request.at = at
            request.source = (position, accepted.index)
            requests.append(request)
        tally.skipped.update(reading.skipped)
        tally.changes += reading.changes
        rejections.extend(reading.rejections)
    tally.records = len(requests)
    tally.rejected = len(rejections)
    return requests, rejections, tally


def _raw(accepted: Accepted) -> bytes:
    try:
        return msgspec.json.encode(accepted.record)
    except (TypeError, ValueError, UnicodeEncodeError):
        return repr(accepted.record).encode("utf-8", "backslashreplace")


OVER_LIMIT = (
    f"set aside: its sign-in holds more than {MAX_REQUESTS} requests; this one counts in the verdict but is "
    "not kept one by one"
)


NEWER_ROW = (
    "set aside: its sign-in is stored in a newer schema than this release reads (written by a newer release); "
    "re-drive it once that release runs"
)


def set_aside(batch: Sequence[Message], requests: Sequence[Request], reason: str = OVER_LIMIT) -> list[Rejection]:
    """The raw records of requests set aside, for the dead-letter trail (rare: decode on demand)."""
    documents: dict[int, list[Any]] = {}
    kept = []
    for request in requests:
        position, index = request.source
        if not 0 <= position < len(batch):
            continue
        message = batch[position]
        if position not in documents:
            documents[position] = _records_of(message.body)
        records = documents[position]
        raw = _dumps(records[index]) if 0 <= index < len(records) else orjson.dumps(encode(request))
        kept.append(Rejection(reason, message.origin, raw, index))
    return kept


def _records_of(body: bytes) -> list[Any]:
    try:
        document = decode(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return []
    records = document.get("records") if isinstance(document, dict) else None
    return records if isinstance(records, list) else []


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # lone surrogates: the standard library escapes them
        return json.dumps(value).encode()


def batch_key(messages: Sequence[Message]) -> str | None:
    """An identity for a batch of Event Hub events that a retry of the same invocation reproduces.

    The host runs a failed invocation again with the same events; stores use the key to recognise the
    rerun and report (not recount) what the first run already wrote. Messages without Event Hub
    coordinates (replay, tests) have no key: nothing retries them.
    """
    if not messages or any(m.origin.sequence_number is None for m in messages):
        return None
    parts = [
        f"{m.origin.partition}:{m.origin.sequence_number}:{m.origin.offset}:{m.origin.enqueued_time}:{len(m.body)}"
        for m in messages
    ]
    return hashlib.blake2b("|".join(parts).encode(), digest_size=12).hexdigest()
