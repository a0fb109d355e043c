"""The on-call lookup as a page: what on-call reads after clicking *Lookup* on an alert card.

Renders the body `shared.views.lookup.lookup_response` answers (the JSON is the
same data), nothing else. Self-contained (inline CSS, no script, no image, no
font) and safe: every value from the logs is escaped with `html.escape`, and the
Content-Security-Policy forbids every fetch, script, frame and form.
`prefers_json` decides, from the Accept header, who gets JSON instead.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

from shared.core.links import ENTRA_SIGNIN_LOGS

# Sent as a header too (frame-ancestors only works there); the meta tag keeps a saved copy just as locked.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_META_CSP = CSP.removesuffix("; frame-ancestors 'none'")
_CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 "Segoe UI",system-ui,-apple-system,"Helvetica Neue",Arial,sans-serif;color:#1f2328;
background:#f4f6f8}
main{max-width:1220px;margin:0 auto;padding:20px 26px 40px}
h1{font-size:22px;margin:0 0 4px;word-break:break-all}
h2{font-size:17px;margin:26px 0 8px;border-bottom:2px solid #d0d7de;padding-bottom:4px}
.sub{color:#57606a;margin:0 0 14px}.mono{font-family:ui-monospace,Consolas,monospace;font-size:12px}
.verdict{background:#fff;border-left:8px solid #8c959f;border-radius:4px;padding:12px 18px;margin:10px 0}
.verdict b.big{font-size:22px;display:block}.unbound{border-color:#c62828}.bound{border-color:#2e7d32}
.unevaluated{border-color:#a7adb3}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
th,td{padding:5px 8px;border-bottom:1px solid #e5e8eb;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}
.tag{display:inline-block;font-size:11px;border-radius:9px;padding:0 7px;font-weight:600}
.t-unbound{background:#ffebe9;color:#a40e26}.t-bound{background:#dafbe1;color:#116329}
.t-not_evaluated{background:#eef1f4;color:#57606a}
.fix{background:#fff;border-radius:6px;padding:8px 14px;margin:6px 0;border-left:4px solid #e36209}
pre{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:10px;overflow:auto;font-size:12px}
.muted{color:#57606a}a{color:#0969da}
.error{background:#fff;border-left:8px solid #c62828;border-radius:4px;padding:14px 18px;margin:14px 0}
"""
_VERDICT_TEXT = {
    "unbound": "Unbound: at least one request was not bound to the device",
    "bound": "Bound: the tokens were bound to the device",
    "unevaluated": "Not evaluated: Token Protection did not judge any request",
}
_ENFORCEMENT_TEXT = {
    "enforced": "under an enforced policy: the sign-in was blocked",
    "report_only": "under a report-only policy: it would be blocked once the policy is enforced",
    "none": "no token protection policy applied",
}


def _e(value: Any) -> str:
    """Everything from the logs (and the URL) is outside input: escape it, quotes included."""
    return html.escape("" if value is None else str(value), quote=True)


def prefers_json(accept: str | None, format_param: str | None = None) -> bool:
    """JSON for `?format=json` or an Accept header that asks for JSON more than HTML; a page otherwise.

    Browsers send `text/html,...;q=0.9,*/*;q=0.8`; scripts send `application/json`.
    """
    if format_param:
        return format_param.strip().lower() == "json"
    weights = _accept_weights(accept or "")
    json_q = weights.get("application/json", 0.0)
    html_q = max(weights.get("text/html", 0.0), weights.get("application/xhtml+xml", 0.0))
    return json_q > html_q


def _accept_weights(accept: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for part in accept.split(",")[:32]:
        media, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = min(1.0, max(0.0, float(value)))
                except ValueError:
                    quality = 0.0
        weights[media.strip().lower()] = max(quality, weights.get(media.strip().lower(), 0.0))
    return weights


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{_META_CSP}\">"
        "<meta name='referrer' content='no-referrer'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>{body}"
        "<p class='muted'>bindwatch on-call lookup. The same data as JSON: add <span class='mono'>?format=json</span> "
        "or send <span class='mono'>Accept: application/json</span>.</p></main></body></html>\n"
    )


def render_error(status: int, body: dict[str, Any]) -> str:
    """A refused or failed lookup, said plainly (the same fields as the JSON answer)."""
    headline = {
        400: "That is not a correlation ID",
        401: "Sign-in required",
        403: "Not allowed",
        404: "Sign-in not found",
        503: "The store did not answer",
    }.get(status, "The lookup failed")
    details = "".join(
        f"<p><b>{_e(key.replace('_', ' '))}:</b> {_e(value)}</p>" for key, value in body.items() if key != "error"
    )
    advice = {
        400: "Paste the Correlation ID from the error page or the sign-in log: a GUID, braces and spaces are fine.",
        404: "bindwatch keeps sign-ins for RETENTION_DAYS (7 by default) and only those it received; search the "
        "Entra sign-in logs by Correlation ID instead.",
        503: "Retry in a minute; GET /api/health shows whether the store answers.",
    }.get(status, "")
    return _page(
        f"bindwatch lookup: {headline}",
        f"<h1>{_e(headline)}</h1><div class='error'><p>{_e(body.get('error', ''))}</p>{details}"
        + (f"<p>{_e(advice)}</p>" if advice else "")
        + f"</div><p><a href='{ENTRA_SIGNIN_LOGS}' rel='noreferrer noopener'>Entra sign-in logs</a></p>",
    )


def render(detail: dict[str, Any]) -> str:
    """The whole page for one sign-in (`lookup_response`'s 200 body)."""
    cid = detail.get("correlation_id", "")
    body = (
        f"<h1>Sign-in <span class='mono'>{_e(cid)}</span></h1>"
        + _summary(detail)
        + _codes(detail)
        + _requests(detail)
        + _policies(detail)
        + _next(detail)
    )
    return _page(f"bindwatch: sign-in {cid}", body)


def _summary(d: dict[str, Any]) -> str:
    verdict = str(d.get("verdict", "unevaluated"))
    enforcement = str(d.get("enforcement", "none"))
    state = "final" if d.get("state") == "final" else "open: requests may still come and change the verdict"
    return (
        f"<div class='verdict {_e(verdict)}'><b class='big'>{_e(_VERDICT_TEXT.get(verdict, verdict))}</b>"
        f"{_e(_ENFORCEMENT_TEXT.get(enforcement, enforcement))}.</div>"
        f"<p class='sub'>User <b>{_e(d.get('user'))}</b>; {_e(d.get('requests'))} requests, "
        f"{_e(d.get('unbound_requests'))} unbound; from {_e(d.get('first_seen'))} to {_e(d.get('last_seen'))}; "
        f"state {_e(state)}. Apps: {_e(', '.join(map(str, d.get('apps') or [])) or '-')}. "
        f"Device: {_e(d.get('device_os') or '-')}, {_e(d.get('trust_type') or 'not registered')}; "
        f"client {_e(d.get('client_app') or '-')}.</p>"
    )


def _codes(d: dict[str, Any]) -> str:
    codes = [c for c in d.get("codes") or [] if isinstance(c, dict)]
    if not codes:
        return ""
    items = "".join(
        f"<div class='fix'><b>Code {_e(c.get('code'))}</b>: {_e(c.get('meaning'))}<br><b>What to do:</b> "
        f"{_e(c.get('fix'))}</div>"
        for c in codes
    )
    return f"<h2>Why, and what to do</h2>{items}"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _policy_cell(policies: Any) -> str:
    if not isinstance(policies, list) or not policies:
        return "<span class='muted'>none applied</span>"
    return "<br>".join(
        f"{_e(p.get('name'))}: {_e(p.get('result'))}" + (" <b>(not satisfied)</b>" if p.get("not_satisfied") else "")
        for p in policies
        if isinstance(p, dict)
    )


def _request_row(r: dict[str, Any]) -> list[str]:
    binding = str(r.get("binding", "not_evaluated"))
    code = r.get("code")
    explained = f"{_e(r.get('meaning'))}<br><b>Fix:</b> {_e(r.get('fix'))}" if code not in (None, 0) else ""
    device = " ".join(_e(v) for v in (r.get("os"), r.get("trust_type")) if v) or "<span class='muted'>-</span>"
    if r.get("device_id"):
        device += f"<br><span class='mono'>{_e(r.get('device_id'))}</span>"
    client = _e(r.get("client_app") or "-") + (f"<br>{_e(r.get('browser'))}" if r.get("browser") else "")
    return [
        f"<span class='mono'>{_e(r.get('time'))}</span>",
        _e(r.get("app")),
        _e(r.get("resource")),
        f"<span class='tag t-{_e(binding)}'>{_e(binding.replace('_', ' '))}</span>",
        _e("" if code is None else code),
        explained,
        device,
        client,
        _policy_cell(r.get("policies")),
    ]


def _requests(d: dict[str, Any]) -> str:
    rows = [_request_row(r) for r in d.get("request_details") or [] if isinstance(r, dict)]
    headers = ("Time (UTC)", "App", "Resource", "Binding", "Code", "Meaning and fix", "Device", "Client", "Policies")
    note = (
        f"<p class='muted'>The first {_e(d.get('requests_kept'))} of {_e(d.get('requests'))} requests are kept; "
        "the KQL below finds all of them.</p>"
        if d.get("requests_truncated")
        else ""
    )
    return "<h2>Every request</h2>" + _table(headers, rows) + note


def _policies(d: dict[str, Any]) -> str:
    seen: dict[str, dict[str, int]] = {}
    for request in d.get("request_details") or []:
        for p in (request.get("policies") or []) if isinstance(request, dict) else []:
            if isinstance(p, dict):
                counts = seen.setdefault(str(p.get("name", "")), {})
                key = f"{p.get('result', '')}" + (", not satisfied" if p.get("not_satisfied") else "")
                counts[key] = counts.get(key, 0) + 1
    if not seen:
        return "<h2>Token protection policies</h2><p class='muted'>No token protection policy applied.</p>"
    rows = [
        [_e(name), "<br>".join(f"{_e(result)}: {n} request(s)" for result, n in sorted(counts.items()))]
        for name, counts in sorted(seen.items())
    ]
    return "<h2>Token protection policies</h2>" + _table(("Policy", "Result"), rows)


def _next(d: dict[str, Any]) -> str:
    kql = d.get("kql") or ""
    return (
        "<h2>Look further</h2>"
        f"<p><a href='{ENTRA_SIGNIN_LOGS}' rel='noreferrer noopener'>Entra sign-in logs</a>: add the filter "
        f"<i>Correlation ID</i> = <span class='mono'>{_e(d.get('correlation_id'))}</span> (both the interactive and "
        "the non-interactive tab).</p>"
        + (f"<p>Log Analytics (KQL), every request of this sign-in:</p><pre>{_e(kql)}</pre>" if kql else "")
    )
