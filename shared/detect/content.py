"""What an alert says: what fired and why, report-only or enforced, who and what, each code's fix, where to look.

Pure text from a rule's finding. Codes are explained from core/status_code.py so the
wording matches the verdicts (1008 is a client not using the broker, never token
theft). The KQL shows the same sign-ins in Log Analytics, per sign-in, so a
person can check the numbers against Entra's own logs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from shared.core.alert import Alert, fingerprint
from shared.core.links import ENTRA_SIGNIN_LOGS, lookup_links
from shared.core.status_code import describe
from shared.core.timestamp import iso

from .grouping import NONE_VALUE
from .kinds import Finding, kind_of
from .rules import Rule
from .window import BUCKET_SECONDS

TOP = {"apps": "app", "resources": "resource", "users": "user", "platforms": "os", "codes": "status_code"}
_ENFORCEMENT_TEXT = {
    "report_only": "report-only: these sign-ins would be blocked once the policy is enforced",
    "enforced": "enforced: these sign-ins were blocked",
    "none": "no Token Protection policy applied",
    "any": "report-only and enforced together",
}
_KQL_COLUMNS = {
    "app": "AppDisplayName",
    "resource": "ResourceDisplayName",
    "user": "UserPrincipalName",
    "os": "OS",
    "client_app": "ClientAppUsed",
    "status_code": "Code",
    "category": "Category",
}


def render(
    finding: Finding,
    status: str,
    at: float,
    *,
    starts_at: float,
    receivers: list[str],
    silenced: bool = False,
    public_url: str | None = None,
) -> Alert:
    """The alert for one decision about one finding."""
    rule = finding.rule
    enforcement = finding.group.get("enforcement") or rule.enforcement()
    counts = finding.counts
    top = {name: counts.top(dimension) for name, dimension in TOP.items()}
    codes = [_code_entry(code) for code, _ in top["codes"]]
    alert = Alert(
        fingerprint=fingerprint(rule.name, finding.group),
        rule=rule.name,
        status="firing" if status == "firing" else "resolved",
        at=at,
        title=title(rule, finding.group),
        severity=finding.severity or rule.severity_of(finding.group),  # type: ignore[arg-type]
        enforcement=enforcement,
        group=dict(finding.group),
        starts_at=starts_at,
        kind=rule.kind,
        unit=kind_of(rule).unit,
        current=finding.current,
        baseline=finding.expected,
        window_seconds=rule.window,
        signins=counts.judged,
        unbound=counts.unbound,
        top=top,
        codes=codes,
        examples=list(counts.examples[:5]),
        kql=kql(rule, finding.group, at),
        links={**links(public_url), **lookup_links(public_url, list(counts.examples[:3]))},
        receivers=receivers,
        silenced=silenced,
    )
    alert.summary = summary(finding, status, enforcement)
    return alert


def title(rule: Rule, group: Mapping[str, str]) -> str:
    scope = ", ".join(f"{v}" for v in group.values()) or "all sign-ins"
    return f"{rule.title or rule.name}: {scope}"


def summary(finding: Finding, status: str, enforcement: str) -> str:
    """Two sentences: what was measured against what, and whether it was blocked or would be."""
    head = "Resolved: back to normal. " if status == "resolved" else ""
    text = f"{head}{finding.why.capitalize()}. {_ENFORCEMENT_TEXT.get(enforcement, enforcement).capitalize()}."
    codes = [c for c, _ in finding.counts.top("status_code")]
    if codes and all(c == "1008" for c in codes):
        text += " Code 1008 means the client does not use the platform broker: a client configuration issue."
    return text


def _code_entry(code: str) -> dict[str, object]:
    number = int(code) if code.isdigit() else None
    entry = describe(number)
    return {"code": number, "meaning": entry.meaning, "fix": entry.fix}


def links(public_url: str | None) -> dict[str, str]:
    found = {"Entra sign-in logs": ENTRA_SIGNIN_LOGS}
    if public_url:
        found["bindwatch"] = public_url
    return found


def kql(rule: Rule, group: Mapping[str, str], at: float) -> str:
    """A Log Analytics query for the same sign-ins: the window, the group's values, unbound requests per sign-in."""
    start = at - rule.window - BUCKET_SECONDS
    lines = [
        "union SigninLogs, AADNonInteractiveUserSignInLogs",
        f"| where TimeGenerated between (datetime({iso(start - 3600)}) .. datetime({iso(at + 3600)}))",
        f"| where CreatedDateTime between (datetime({iso(start)}) .. datetime({iso(at)}))",
        "| extend TP = parse_json(tostring(TokenProtectionStatusDetails))",
        "| extend Status = tostring(TP.signInSessionStatus), Code = tostring(TP.signInSessionStatusCode)",
        "| extend OS = tostring(parse_json(tostring(DeviceDetail)).operatingSystem)",
    ]
    for dimension, value in {**_single_filters(rule), **group}.items():
        column = _KQL_COLUMNS.get(dimension)
        if column and value != NONE_VALUE:
            lines.append(f"| where {column} == {json.dumps(value)}")
    enforcement = group.get("enforcement") or rule.enforcement()
    if enforcement in ("report_only", "enforced"):
        marker = "reportOnlyFailure" if enforcement == "report_only" else '"result":"failure"'
        lines.append(f"| where tostring(ConditionalAccessPolicies) has {json.dumps(marker)}  // {enforcement}")
    lines += [
        "| summarize Requests = count(), Unbound = countif(Status =~ 'unbound'),",
        "    Codes = make_set_if(Code, Status =~ 'unbound'), First = min(CreatedDateTime)",
        "    by CorrelationId, UserPrincipalName, AppDisplayName, ResourceDisplayName, OS",
        "| where Unbound > 0",
        "| order by First asc",
    ]
    return "\n".join(lines)


def _single_filters(rule: Rule) -> dict[str, str]:
    return {d: v[0] for d, v in rule.match.items() if len(v) == 1 and d != "enforcement"}
