"""What the commands print: JSON lines for tools, a table for people."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(line: dict[str, Any]) -> str:
    return orjson.dumps(line, default=str).decode()


TABLE_HEADER = (
    f"{'VERDICT':<12}{'ENFORCEMENT':<13}{'REQ':>4}{'UNB':>4}  {'CODES':<12}{'USER':<28}{'APPS':<30}CORRELATION ID"
)


def row(line: dict[str, Any]) -> str:
    if line.get("type") == "verdict":
        codes = ",".join(str(c) for c in line["status_codes"]) or "-"
        apps = ", ".join(line["apps"])[:29]
        return (
            f"{line['verdict']:<12}{line['enforcement']:<13}{line['requests']:>4}{line['unbound_requests']:>4}  "
            f"{codes:<12}{line['user'][:27]:<28}{apps:<30}{line['correlation_id']}"
        )
    if line.get("type") == "alert":
        return f"ALERT {line.get('status', '').upper()}: {line.get('title') or line.get('rule')} at {line.get('at')}"
    if line.get("type") == "policy_change":
        enforces = " (token protection now enforced)" if line.get("enforces_now") else ""
        return f"POLICY CHANGE: {line.get('summary')}{enforces}"
    return dumps(line)


def summary_text(summary: dict[str, Any]) -> str:
    parts = [
        f"{summary['signins']} sign-ins from {summary['records']} records",
        f"{summary['unbound']} unbound, {summary['bound']} bound, {summary['unevaluated']} unevaluated",
        f"{summary['duplicates']} duplicate copies, {summary['skipped']} skipped, {summary['rejected']} rejected",
    ]
    return "\n" + "; ".join(parts)
