"""What is firing now, for `python -m shared alerts`: each alert, since when, its incident, where it was sent.

Pure: made from the detection state (live alerts and incidents), the outbox entries of their incidents, and the
run-time silences active now, so on-call sees in one place what paged whom and what is muted by whom.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.detect.lifecycle import FIRING
from shared.detect.routing import labels
from shared.detect.rules import RulesFile
from shared.detect.silence import RuntimeSilence, muted_by
from shared.detect.state import DetectionState
from shared.notify.outbox import Entry


@dataclass(frozen=True, slots=True)
class Firing:
    """One firing alert as on-call reads it."""

    rule: str
    group: Mapping[str, str]
    severity: str
    since: float | None
    incident: str
    sent: Sequence[str] = field(default_factory=tuple)  # "teams: delivered", ...
    muted: str = ""  # "silence <id> by <author>", "held (inhibited or silenced in rules.toml)", or ""


def firing(
    state: DetectionState,
    entries: Iterable[Entry],
    silences: Sequence[RuntimeSilence],
    rules: RulesFile,
) -> list[Firing]:
    """The firing alerts, oldest first, with the run-time silence (active now) that mutes each, if any."""
    deliveries = _deliveries(entries)
    by_name = {r.name: r for r in rules.rules}
    found = []
    for alert in state.alerts.values():
        if alert.status != FIRING:
            continue
        incident = alert.incident or ""
        rule = by_name.get(alert.rule)
        silence = muted_by(silences, labels(rule, alert.group, alert.severity)) if rule else None
        muted = f"silence {silence.id} by {silence.author}" if silence else ("held" if alert.held else "")
        found.append(
            Firing(
                rule=alert.rule,
                group=dict(alert.group),
                severity=alert.severity or "",
                since=alert.starts_at,
                incident=incident,
                sent=tuple(f"{d}: {s}" for d, s in sorted(deliveries.get(incident, {}).items())),
                muted=muted,
            )
        )
    return sorted(found, key=lambda f: (f.since or 0.0, f.rule))


def text_lines(rows: Sequence[Firing]) -> list[str]:
    lines = []
    for row in rows:
        group = " ".join(f"{k}={v}" for k, v in row.group.items())
        sent = ", ".join(row.sent) or "not sent"
        muted = f"  MUTED: {row.muted}" if row.muted else ""
        lines.append(
            f"{row.severity.upper():<8} {row.rule}  {group}  since {_when(row.since)}  "
            f"incident {row.incident or '-'}  sent: {sent}{muted}"
        )
    lines.append(f"{len(rows)} alert(s) firing")
    return lines


def _deliveries(entries: Iterable[Entry]) -> dict[str, dict[str, str]]:
    """incident -> destination -> how its latest notification stands (reason, delivery state)."""
    latest: dict[tuple[str, str], Entry] = {}
    for entry in entries:
        key = (entry.notification.incident, entry.destination)
        if key[0] and (key not in latest or entry.notification.created_at >= latest[key].notification.created_at):
            latest[key] = entry
    found: dict[str, dict[str, str]] = {}
    for (incident, destination), entry in latest.items():
        reason = entry.notification.reason or "told"
        found.setdefault(incident, {})[destination] = f"{reason} {entry.state}"
    return found


def _when(at: float | None) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC") if at else "-"
