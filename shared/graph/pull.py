"""`pull`: the user sign-ins of a period from Graph's beta `auditLogs/signIns`, as JSON lines, oldest first.

Graph lists sign-ins newest first, 1,000 a page. Replay settles sign-ins by event
time, so the pull walks the period in windows (an hour by default) from the oldest,
fetches every page of a window into a spool file beside the output, and appends the
window's sign-ins sorted by `createdDateTime`. After each window the output is synced
and a state file beside it records how far the pull got and how long the output was
then, so an interrupted pull (Ctrl-C, a network that stays down, an expired token)
resumes at the window it was in: the output is cut back to the last complete window
and nothing is written twice. Only the beta endpoint carries `tokenProtectionStatusDetails`.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import httpx
import orjson

from shared.core.timestamp import parse_time

from .client import GraphClient, GraphError

USER_SIGNINS = "signInEventTypes/any(t: t eq 'interactiveUser' or t eq 'nonInteractiveUser')"
STATE_VERSION = 1


@dataclass
class PullState:
    since: str
    until: str
    window_minutes: int
    done_until: str  # every sign-in before this time is in the output
    out_bytes: int  # the output's length when it was
    signins: int
    version: int = STATE_VERSION

    @property
    def complete(self) -> bool:
        return self.done_until >= self.until


def signins_url(graph_url: str, start: datetime, end: datetime) -> str:
    """The first page of one window: both user sign-in kinds, createdDateTime in [start, end)."""
    condition = f"createdDateTime ge {_z(start)} and createdDateTime lt {_z(end)} and {USER_SIGNINS}"
    url = httpx.URL(f"{graph_url.rstrip('/')}/beta/auditLogs/signIns", params={"$filter": condition, "$top": "1000"})
    return str(url)


def _z(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Pull:
    def __init__(
        self, client: GraphClient, graph_url: str, out: Path, progress: Callable[[str], None] = lambda _: None
    ) -> None:
        self.client = client
        self.graph_url = graph_url
        self.out = out
        self.state_path = out.with_name(out.name + ".pull-state.json")
        self.spool_path = out.with_name(out.name + ".pull-window.tmp")
        self.progress = progress

    def run(self, since: datetime, until: datetime, window: timedelta) -> PullState:
        state = self._start(since, until, window)
        with self.out.open("r+b") as out:
            out.truncate(state.out_bytes)  # a window that was cut off is pulled again, whole
            out.seek(state.out_bytes)
            start = datetime.fromisoformat(state.done_until)
            while start < until:
                end = min(start + window, until)
                count = self._window(start, end, out)
                state.done_until, state.out_bytes, state.signins = _z(end), out.tell(), state.signins + count
                self._save(state)
                self.progress(f"{_z(start)} to {_z(end)}: {count} sign-ins ({state.signins} in all)")
                start = end
        self.spool_path.unlink(missing_ok=True)
        return state

    def _start(self, since: datetime, until: datetime, window: timedelta) -> PullState:
        fresh = PullState(_z(since), _z(until), int(window.total_seconds() // 60), _z(since), 0, 0)
        if self.state_path.exists():
            try:
                state = PullState(**orjson.loads(self.state_path.read_bytes()))
            except (orjson.JSONDecodeError, TypeError) as error:
                raise GraphError(f"{self.state_path} is not a pull state file; remove it to start again") from error
            if (state.since, state.until, state.window_minutes) != (fresh.since, fresh.until, fresh.window_minutes):
                raise GraphError(
                    f"{self.out} holds another pull ({state.since} to {state.until}); choose another --out"
                )
            if self.out.exists() and self.out.stat().st_size >= state.out_bytes:
                if not state.complete:
                    self.progress(f"resuming at {state.done_until} ({state.signins} sign-ins already pulled)")
                return state
        if self.out.exists() and self.out.stat().st_size > 0:
            raise GraphError(f"{self.out} exists and is not a pull in progress; remove it or choose another --out")
        self.out.write_bytes(b"")
        self._save(fresh)
        return fresh

    def _window(self, start: datetime, end: datetime, out: IO[bytes]) -> int:
        """Every sign-in of [start, end) appended to `out`, oldest first."""
        times, offsets = array("d"), array("q")
        with self.spool_path.open("w+b") as spool:
            for page in self.client.pages(signins_url(self.graph_url, start, end)):
                for signin in page.signins:
                    offsets.append(spool.tell())
                    times.append(parse_time(signin.get("createdDateTime")) or 0.0)
                    spool.write(orjson.dumps(signin) + b"\n")
            offsets.append(spool.tell())
            for i in sorted(range(len(times)), key=times.__getitem__):
                spool.seek(offsets[i])
                out.write(spool.read(offsets[i + 1] - offsets[i]))
        out.flush()
        os.fsync(out.fileno())
        return len(times)

    def _save(self, state: PullState) -> None:
        temporary = self.state_path.with_name(self.state_path.name + ".tmp")
        temporary.write_bytes(orjson.dumps(asdict(state), option=orjson.OPT_INDENT_2))
        os.replace(temporary, self.state_path)


def parse_instant(text: str) -> datetime:
    """An ISO time for --since/--until; naive means UTC."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text!r}") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)
