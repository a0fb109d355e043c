"""The readiness report as one self-contained HTML page: inline CSS, inline SVG, no script, no network.

Renders the figures dict of `shared.readiness.figures`, nothing else. Every value
that comes from the logs (users, apps, resources, policy names) is outside input
and goes through `_e`; the Content-Security-Policy forbids any fetch and any script.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

_ROWS = 25  # users listed in the page; the JSON output has the longer list
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
_SERIES = (  # timeline series: key, label, colour
    ("bound", "Bound", "#2e7d32"),
    ("unevaluated", "Unevaluated", "#a7adb3"),
    ("expected_unbound", "Unbound, expected (browser, unsupported platform)", "#f2c14e"),
    ("unbound", "Unbound", "#c62828"),
)
_CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 "Segoe UI",system-ui,-apple-system,"Helvetica Neue",Arial,sans-serif;color:#1f2328;
background:#f4f6f8}
main{max-width:1220px;margin:0 auto;padding:24px 28px 40px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:30px 0 8px;border-bottom:2px solid #d0d7de;padding-bottom:4px}
h3{font-size:15px;margin:14px 0 6px}
.sub{color:#57606a;margin:0 0 16px}.unit{font-weight:normal;color:#57606a;font-size:12px;margin-left:6px}
.answer{background:#fff;border-left:6px solid #0969da;padding:12px 18px;margin:12px 0;border-radius:4px}
.answer ul{margin:6px 0 0;padding-left:20px}.answer li{margin:3px 0}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;margin:8px 0}
.card{background:#fff;border-radius:6px;padding:10px 12px;border-top:4px solid #8c959f}
.card b{display:block;font-size:24px}.card span{color:#57606a;font-size:12px}
.ok{border-color:#2e7d32}.bad{border-color:#c62828}.warn{border-color:#e36209}.grey{border-color:#a7adb3}
.exp{border-color:#f2c14e}
.chart{background:#fff;border-radius:6px;padding:10px}
.legend span{display:inline-block;margin-right:16px;font-size:12px}
.legend i{display:inline-block;width:11px;height:11px;margin-right:5px;vertical-align:-1px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
th,td{padding:5px 8px;border-bottom:1px solid #e5e8eb;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}td.n,th.n{text-align:right;white-space:nowrap}
.grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:14px}
.grid table{font-size:12px}.grid th,.grid td{padding:4px 5px}
.hint{background:#fff8e6;border:1px solid #e3b341;border-radius:6px;padding:10px 14px;margin:10px 0}
.hint h3{margin-top:0;color:#9a6700}
.apart{background:#fbfaf3;border:1px dashed #c9b458;border-radius:6px;padding:8px 14px 12px}
.badge{display:inline-block;font-size:11px;border-radius:9px;padding:0 7px;background:#dafbe1;color:#116329}
.bar{height:8px;background:#eef1f4;border-radius:4px;min-width:60px;overflow:hidden;display:flex}
.bar i{display:block;height:8px}.mono{font-family:ui-monospace,Consolas,monospace;font-size:12px}
.users{columns:4;font-size:12px;background:#fff;padding:8px 12px;border-radius:6px}.muted{color:#57606a}
footer{margin-top:28px;color:#57606a;font-size:12px}
.warn-box{background:#fff1e5;border:1px solid #e36209;border-left:6px solid #e36209;border-radius:6px;padding:10px 16px;
margin:12px 0}
.sums{background:#fff;border-radius:6px;padding:8px 14px;margin:8px 0;font-size:13px}.sums li{margin:2px 0}
.exp-tag{display:inline-block;font-size:11px;border-radius:9px;padding:0 7px;background:#fff4c2;color:#7a5c00}
.scroll{max-height:420px;overflow:auto;border:1px solid #e5e8eb;border-radius:6px}
.cause{background:#fff;border-radius:6px;padding:10px 14px;margin:10px 0;border-left:5px solid #e36209}
.cause h3{margin:0 0 4px}.cause pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:4px;padding:8px;
white-space:pre-wrap;word-break:break-all;font-size:12px;margin:4px 0}
"""


def _e(value: Any) -> str:
    """Everything from the logs is outside input: escape it, quotes included."""
    return html.escape("" if value is None else str(value), quote=True)


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else _e(value)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}%"


def _when(stamp: str | None) -> str:
    return "–" if not stamp else stamp.replace("T", " ")[:16] + " UTC"


def render(figures: dict[str, Any], title: str = "Token Protection readiness", users_csv: str | None = None) -> str:
    """The whole page; `users_csv` names the CSV of every user who would break, written beside the page."""
    sections = (
        _header,
        input_section,
        _evidence,
        _answer,
        _cards,
        _timeline,
        _changes,
        _hints,
        _breakdowns,
        _codes,
        _causes,
    )
    body = "".join(section(figures) for section in sections) + _users(figures, users_csv)
    body += "".join(section(figures) for section in (_expected, _footer))
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>"
        f"<h1>{_e(title)}</h1>{body}</main></body></html>\n"
    )


def _header(f: dict[str, Any]) -> str:
    period = f["period"]
    hours = period["seconds"] / 3600
    span = f"{hours:.1f} h" if hours < 72 else f"{hours / 24:.1f} days"
    return (
        f"<p class='sub'>From {_when(period['start'])} to {_when(period['end'])} ({span}). "
        f"{_n(f['signins']['judged'])} sign-ins judged from {_n(f['requests']['distinct'])} distinct requests "
        f"of {_n(f['signins']['users'])} users.</p>"
    )


def _evidence(f: dict[str, Any]) -> str:
    """Too little history to decide: say so first, and say what is enough and why."""
    evidence = f.get("evidence") or {}
    if evidence.get("enough", True):
        return ""
    hours = f["period"]["seconds"] / 3600
    span = f"{hours:.1f} hours" if hours < 72 else f"{hours / 24:.1f} days"
    return (
        "<div class='warn-box' id='too-short'><b>Too short to decide.</b> These logs cover "
        f"{_e(span)}. Before enforcing, read {_e(evidence['why'])}. Until then these figures are a sample, not a "
        f"verdict. A user counts as ready only with {_e(evidence['user_rule'])}.</div>"
    )


def input_section(f: dict[str, Any]) -> str:
    """What was read and what could not be: each input's shape, records judged, skipped and rejected by reason.

    Shown first when most of the input was rejected (with the shapes bindwatch reads); otherwise a short line.
    """
    section = f.get("input")
    if not section:
        return ""
    inputs = _table(
        ("Input", "Shape", "Items"),
        (
            (_e(i["name"]), _e(i["shape"] + (", gzip" if i["gzip"] else "")), _n(i["messages"]))
            for i in section["inputs"][:_ROWS]
        ),
        numeric=frozenset({2}),
    )
    more = len(section["inputs"]) - _ROWS
    if more > 0:
        inputs += f"<p class='muted'>and {more:,} more inputs (the JSON output lists them all).</p>"
    counts = "<h3>Not judged</h3>" + _table(
        ("Kind", "Why", "Records"),
        [("skipped", _e(name), _n(n)) for name, n in section["skipped_by_category"].items()]
        + [("rejected", _e(reason), _n(n)) for reason, n in section["rejected_by_reason"].items()],
        numeric=frozenset({2}),
    )
    warning = ""
    if section["expected_shapes"]:
        shapes = "".join(f"<li>{_e(shape)}</li>" for shape in section["expected_shapes"])
        warning = (
            "<div class='hint'><h3>Most of the input could not be read</h3><p>bindwatch reads:</p>"
            f"<ul>{shapes}</ul><p>--input-format forces a shape; docs/inputs.md shows each.</p></div>"
        )
    return (
        "<h2>Input<span class='unit'>what was read, and what could not be judged</span></h2>"
        f"{warning}<p>{_n(section['records'])} records judged ({_n(section['duplicates'])} duplicate copies), "
        f"{_n(section['skipped'])} skipped (other categories), {_n(section['rejected'])} rejected.</p>"
        + inputs
        + (counts if section["skipped"] or section["rejected"] else "")
    )


def _answer(f: dict[str, Any]) -> str:
    """Can we enforce now? The few sentences an admin reads first."""
    req, users, hints = f["requests"], f["users"], f["hints"]
    items = [
        f"<b>{_pct(req['pct_allowed'])}</b> of the requests a token protection policy evaluated would pass today; "
        f"<b>{_pct(req['pct_enforceable'])}</b> would once users fix self-remediable devices (codes 1003, 1004) "
        "<span class='unit'>per request, Microsoft's PctAllowed and PctEnforceable</span>",
        f"<b>{_n(users['ready_total'])}</b> users are ready to enforce (only bound sign-ins, and enough history); "
        f"{_n(users.get('too_little_history_total', 0))} have only bound sign-ins but too little history; "
        f"<b>{_n(users['would_break_total'])}</b> would break; {_n(users['not_evaluated_total'])} have no "
        "evaluated sign-in yet <span class='unit'>per user</span>",
    ]
    if hints:
        items.append(f"<b>{len(hints)}</b> policy configuration problem(s) to fix first: see Policy hints")
    if f.get("causes"):
        items.append(
            f"<b>{len(f['causes'])}</b> causes of blocks, each with the Conditional Access change to paste and what "
            "it would gain: see What to change"
        )
    exp = f["expected"]
    if exp["requests"]:
        items.append(
            f"{_n(exp['requests'])} unbound requests are expected (browsers, unsupported platforms): marked in "
            "every table, never counted as allowed, and detailed at the end"
        )
    return (
        "<div class='answer'><b>Can we enforce now?</b><ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul></div>"
    )


def _card(value: Any, label: str, tone: str) -> str:
    return f"<div class='card {tone}'><b>{value}</b><span>{_e(label)}</span></div>"


def _cards(f: dict[str, Any]) -> str:
    s, r = f["signins"], f["requests"]
    by_mode = s.get("expected_by_mode", {})
    signins = [
        _card(_n(s["judged"]), "sign-ins judged", "grey"),
        _card(_n(s["bound"]), "bound", "ok"),
        _card(_n(s["unbound"]), "unbound (all of them)", "bad"),
        _card(_n(s["unevaluated"]), "unevaluated", "grey"),
        _card(_n(s["blocked"]), "of the unbound: blocked (enforced)", "bad"),
        _card(_n(s["would_be_blocked"]), "of the unbound: would be blocked (report-only)", "warn"),
        _card(_n(s["expected_unbound"]), "of the unbound: expected (browser, unsupported platform)", "exp"),
    ]
    sums = [
        f"{_n(s['judged'])} judged = {_n(s['bound'])} bound + {_n(s['unbound'])} unbound + "
        f"{_n(s['unevaluated'])} unevaluated",
        f"{_n(s['unbound'])} unbound = {_n(s['blocked'])} blocked (enforced) + {_n(s['would_be_blocked'])} would be "
        f"blocked (report-only) + {_n(s['unbound_without_policy'])} without a token protection policy",
        f"{_n(s['unbound'])} unbound = {_n(s['expected_unbound'])} expected + "
        f"{_n(s.get('actionable_unbound', s['unbound'] - s['expected_unbound']))} to act on; the "
        f"{_n(s['expected_unbound'])} expected are inside the blocked ({_n(by_mode.get('blocked', 0))}), would be "
        f"blocked ({_n(by_mode.get('would_be_blocked', 0))}) and without-policy "
        f"({_n(by_mode.get('without_policy', 0))}) counts, not on top of them",
    ]
    requests = [
        _card(_n(r["evaluated"]), "requests under a policy", "grey"),
        _card(_n(r["allowed"]), "allowed", "ok"),
        _card(_n(r["blocked"]), "blocked (enforced)", "bad"),
        _card(_n(r["would_be_blocked"]), "would be blocked (report-only)", "warn"),
        _card(_n(r["self_remediable"]), "of the blocks: self-remediable (1003, 1004)", "warn"),
        _card(_pct(r["pct_allowed"]), "allowed share (PctAllowed)", "ok"),
        _card(_pct(r["pct_enforceable"]), "enforceable share (PctEnforceable)", "ok"),
    ]
    request_sum = (
        f"{_n(r['evaluated'])} under a policy = {_n(r['allowed'])} allowed + {_n(r['blocked'])} blocked + "
        f"{_n(r['would_be_blocked'])} would be blocked"
    )
    return (
        "<h2>Verdicts<span class='unit'>per sign-in (correlation id): bindwatch's verdict</span></h2>"
        f"<div class='cards'>{''.join(signins)}</div>"
        f"<ul class='sums' id='signin-sums'>{''.join(f'<li>{x}</li>' for x in sums)}</ul>"
        "<h2>Microsoft's impact figures<span class='unit'>per request, deduplicated by request id "
        "(docs/signin-logs.md, Impact figures)</span></h2>"
        f"<div class='cards'>{''.join(requests)}</div>"
        f"<ul class='sums' id='request-sums'><li>{request_sum}</li></ul>"
    )


def _nice_max(value: int) -> int:
    """The smallest round axis top (4 gridlines of 1, 2 or 5 x 10^n) at or above `value`."""
    for power in range(10):
        for step in (1, 2, 5):
            if step * 10**power * 4 >= value:
                return step * 10**power * 4
    return value


def _axis_label(stamp: str, step: int) -> str:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return moment.strftime("%H:%M") if step < 86400 else moment.strftime("%d %b")


def timeline_svg(timeline: dict[str, Any], width: int = 1140, height: int = 250) -> str:
    """Stacked bars of sign-ins per bucket; each bar has a <title> tooltip (no script)."""
    buckets = timeline["buckets"]
    if not buckets:
        return "<p class='muted'>No sign-ins in the period.</p>"
    left, top, bottom = 44, 10, 26
    plot_w, plot_h = width - left - 10, height - top - bottom
    peak = _nice_max(max(sum(b[k] for k, _, _ in _SERIES) for b in buckets))
    slot = plot_w / len(buckets)
    parts = [_grid(peak, left, top, plot_w, plot_h)]
    every = max(1, round(len(buckets) / 12))
    for index, bucket in enumerate(buckets):
        x = left + index * slot
        parts.append(_bar(bucket, x + slot * 0.12, slot * 0.76, top + plot_h, plot_h / peak))
        if index % every == 0:
            label = _axis_label(bucket["start"], timeline["bucket_seconds"])
            parts.append(f"<text x='{x + slot / 2:.1f}' y='{height - 8}' text-anchor='middle'>{_e(label)}</text>")
    parts.extend(_marks(timeline, left, slot, (top, plot_h)))
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' width='100%' role='img' "
        f"aria-label='Sign-ins over time by verdict' font-size='11' fill='#57606a'>{''.join(parts)}</svg>"
    )


def _marks(timeline: dict[str, Any], left: float, slot: float, plot: tuple[float, float]) -> list[str]:
    """A dashed line at each token protection policy change, numbered as the "Policy changes" table is."""
    buckets, step = timeline["buckets"], timeline["bucket_seconds"]
    origin = _seconds(buckets[0]["start"])
    top, height = plot
    drawn = []
    for number, mark in enumerate(timeline.get("marks", []), start=1):
        offset = (_seconds(mark["at"]) - origin) / step
        if not 0 <= offset <= len(buckets):
            continue
        x = left + offset * slot
        drawn.append(
            f"<g class='mark'><title>{_e(_when(mark['at']) + ': ' + mark['label'])}</title>"
            f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{top:.1f}' y2='{top + height:.1f}' stroke='#6f42c1' "
            f"stroke-width='2' stroke-dasharray='5 3'/><text x='{x + 4:.1f}' y='{top + 12:.1f}' fill='#6f42c1' "
            f"font-weight='bold'>{number}</text></g>"
        )
    return drawn


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _grid(peak: int, left: int, top: int, plot_w: float, plot_h: float) -> str:
    lines = []
    for i in range(5):
        value = peak * i // 4
        y = top + plot_h - plot_h * i / 4
        lines.append(
            f"<line x1='{left}' x2='{left + plot_w:.1f}' y1='{y:.1f}' y2='{y:.1f}' stroke='#e5e8eb'/>"
            f"<text x='{left - 6}' y='{y + 4:.1f}' text-anchor='end'>{value:,}</text>"
        )
    return "".join(lines)


def _bar(bucket: dict[str, Any], x: float, width: float, base: float, scale: float) -> str:
    parts, y = [], base
    tip = _when(bucket["start"]) + ": " + ", ".join(f"{bucket[k]} {label.lower()}" for k, label, _ in _SERIES)
    for key, _, colour in _SERIES:
        h = bucket[key] * scale
        if h > 0:
            y -= h
            parts.append(f"<rect x='{x:.1f}' y='{y:.1f}' width='{width:.1f}' height='{h:.1f}' fill='{colour}'/>")
    return f"<g><title>{_e(tip)}</title>{''.join(parts)}</g>"


def _timeline(f: dict[str, Any]) -> str:
    t = f["timeline"]
    minutes = t["bucket_seconds"] // 60
    legend = "".join(f"<span><i style='background:{c}'></i>{_e(label)}</span>" for _, label, c in _SERIES)
    return (
        f"<h2>Sign-ins over time<span class='unit'>per sign-in, by its first request; one bar = {minutes} min"
        "</span></h2>"
        f"<div class='chart'><div class='legend'>{legend}</div>{timeline_svg(t)}</div>"
    )


def _changes(f: dict[str, Any]) -> str:
    """Each token protection policy change (numbered as the timeline marks it), its author, and what its policy
    judged, would have blocked and blocked in the day before and after it."""
    changes = f.get("policy_changes") or []
    if not changes:
        return ""
    rows = []
    for number, c in enumerate(changes, start=1):
        rows.append(
            (
                f"<b>{number}</b>",
                _e(_when(c["at"])),
                _e(c["policy"]),
                _e(c["action"]) + (" <span class='badge'>enforces now</span>" if c["enforces_now"] else ""),
                _e(c["actor"] or "(not recorded)"),
                _side_text(c["before"]),
                _side_text(c["after"]),
            )
        )
    headers = ("#", "When", "Policy", "Change", "By", "Day before", "After (up to a day)")
    return (
        "<h2>Policy changes<span class='unit'>per request the policy judged, from the audit log and the sign-in "
        "logs</span></h2>" + _table(headers, rows)
    )


def _side_text(side: dict[str, Any]) -> str:
    if not side["requests"]:
        return "<span class='muted'>no requests judged</span>"
    return (
        f"{side['requests']:,} requests, {side['users']:,} people; would block {side['would_be_blocked']:,}, "
        f"blocked {side['blocked']:,} ({_pct(side['share'] * 100)}; {side['users_blocked']:,} people)"
    )


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: frozenset[int] = frozenset()) -> str:
    head = "".join(f"<th class='n'>{h}</th>" if i in numeric else f"<th>{h}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>"
        + "".join(f"<td class='n'>{c}</td>" if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _hints(f: dict[str, Any]) -> str:
    hints = f["hints"]
    if not hints:
        return (
            "<h2>Policy hints</h2><p class='muted'>No token protection policy was evaluated for browser clients or "
            "for unsupported resources, and no unsupported platform reached the protected resources unchecked.</p>"
        )
    return "<h2>Policy hints<span class='unit'>once per policy and trap, per request</span></h2>" + "".join(
        _hint(h) for h in hints
    )


def _hint(hint: dict[str, Any]) -> str:
    targets = ", ".join(f"{_e(name)} ({count:,})" for name, count in hint["targets"])
    rows = [
        (
            _e(_when(x["time"])),
            _e(x["user"]),
            _e(x["app"]),
            _e(x["resource"]),
            _e(x["client_app"]),
            "<br>".join(f"{_e(p['name'])}: {_e(p['result'])}" for p in x["policies"]),
            f"<span class='mono'>{_e(x['correlation_id'])}</span>",
        )
        for x in hint["examples"]
    ]
    return (
        f"<div class='hint'><h3>{_e(hint['title'])}: {_e(hint.get('policy', ''))}</h3><p>{_e(hint['advice'])}</p>"
        f"<p><b>{hint['requests']:,}</b> requests ({hint['would_be_blocked']:,} would be blocked, "
        f"{hint['blocked']:,} blocked). Policies: {', '.join(_e(p) for p in hint['policies'])}. "
        f"Seen for: {targets}.</p><h3>Requests that prove it</h3>"
        + _table(("Time", "User", "App", "Resource", "Client app", "Policy: result", "Correlation id"), rows)
        + "</div>"
    )


_BREAKDOWN_TITLES = {"app": "App", "resource": "Resource", "platform": "Device platform", "client_app": "Client app"}


def _split_bar(row: dict[str, Any]) -> str:
    total = row["requests"] or 1
    parts = (
        ("allowed", "#2e7d32"),
        ("would_be_blocked", "#e36209"),
        ("blocked", "#c62828"),
        ("expected_unbound", "#f2c14e"),
    )
    return (
        "<div class='bar'>"
        + "".join(f"<i style='width:{100 * row[k] / total:.1f}%;background:{c}'></i>" for k, c in parts)
        + "</div>"
    )


def _breakdown(key: str, rows: list[dict[str, Any]]) -> str:
    cells = [
        (
            _e(r["name"]) + (" <span class='exp-tag'>expected</span>" if r.get("expected_unbound") else ""),
            _split_bar(r),
            _n(r["requests"]),
            _pct(r["pct_allowed"]),
            _n(r["would_be_blocked"]),
            _n(r["blocked"]),
            _n(r.get("expected_unbound", 0)),
            _n(r["users_blocked"]),
            _n(r["signins_blocked"]),
        )
        for r in rows
    ]
    headers = (
        _BREAKDOWN_TITLES[key], "", "Requests", "Allowed", "Would block", "Blocked", "Expected unbound", "Users",
        "Sign-ins",
    )  # fmt: skip
    return (
        f"<div><h3>By {_e(_BREAKDOWN_TITLES[key].lower())}</h3>"
        + _table(headers, cells, frozenset({2, 3, 4, 5, 6, 7, 8}))
        + "</div>"
    )


def _breakdowns(f: dict[str, Any]) -> str:
    tables = "".join(_breakdown(key, rows) for key, rows in f["breakdowns"].items())
    return (
        "<h2>Would be blocked (report-only) and blocked (enforced)<span class='unit'>per request under a token "
        "protection policy, plus expected-unbound requests (browser, unsupported platform) in their own column, never "
        "as allowed: Allowed = allowed / all requests of the row; users and sign-ins blocked are distinct counts"
        f"</span></h2><div class='grid'>{tables}</div>"
    )


def _codes(f: dict[str, Any]) -> str:
    rows = [
        (
            f"<b>{_e(c['code'] if c['code'] is not None else 'none')}</b>",
            _e(c["meaning"]) + (" <span class='badge'>self-remediable</span>" if c["self_remediable"] else ""),
            _e(c["fix"]),
            _n(c["unbound_requests"]),
            _n(c["would_be_blocked"]),
            _n(c["blocked"]),
            _n(c.get("expected_unbound", 0)),
            _n(c["users"]),
        )
        for c in f["codes"]
    ]
    headers = ("Code", "Meaning", "What to do", "Unbound", "Would block", "Blocked", "Expected unbound", "Users")
    return (
        "<h2>Why: status codes<span class='unit'>per unbound request; the expected-unbound ones (browser, "
        "unsupported platform) counted in their own column</span></h2>"
        + _table(headers, rows, frozenset({3, 4, 5, 6, 7}))
    )


def _what_if(w: dict[str, Any]) -> str:
    fixed = w.get("fixed")
    parts = []
    if fixed:
        parts.append(f"if fixed, allowed {_pct(fixed['pct_allowed'])} and enforceable {_pct(fixed['pct_enforceable'])}")
    excluded = w["excluded"]
    parts.append(
        f"if excluded, allowed {_pct(excluded['pct_allowed'])} and enforceable {_pct(excluded['pct_enforceable'])}"
    )
    return (
        f"<p><b>What if:</b> today allowed {_pct(w['pct_allowed_now'])}, enforceable {_pct(w['pct_enforceable_now'])}; "
        + "; ".join(parts)
        + f"; {_n(w['users_no_longer_blocked'])} users would no longer be blocked at all "
        "<span class='unit'>per request, Microsoft's shares</span></p>"
    )


def _cause(c: dict[str, Any]) -> str:
    apps = ", ".join(f"{_e(a)} ({n:,})" for a, n in c["apps"])
    note = f"<p class='muted'>{_e(c['paste_note'])}</p>" if c.get("paste_note") else ""
    return (
        f"<div class='cause'><h3>{_e(c['cause'])}</h3>"
        f"<p>{_n(c['requests'])} requests ({_n(c['would_be_blocked'])} would be blocked, {_n(c['blocked'])} blocked) "
        f"of {_n(c['users'])} users in {_n(c['signins'])} sign-ins. Apps: {apps}.</p>"
        f"<p><b>Fix:</b> {_e(c['fix'])}</p>"
        f"<p><b>Or change the policy</b> in <i>{_e(c['setting'])}</i>:</p><pre>{_e(c['paste'])}</pre>{note}"
        + _what_if(c["what_if"])
        + "</div>"
    )


def _causes(f: dict[str, Any]) -> str:
    causes = f.get("causes") or []
    if not causes:
        return "<h2>What to change</h2><p class='muted'>No token protection policy blocked a request.</p>"
    return (
        "<h2 id='causes'>What to change, cause by cause<span class='unit'>per request under a token protection "
        "policy that blocked or would block it; largest first</span></h2>" + "".join(_cause(c) for c in causes)
    )


def _users(f: dict[str, Any], users_csv: str | None = None) -> str:
    u = f["users"]
    rows = [
        (
            _e(r["user"]),
            f"{r['unbound_signins']:,} of {r['signins']:,}",
            ", ".join(_e(c if c >= 0 else "none") for c in r["codes"])
            + (" <span class='badge'>self-remediable</span>" if r["self_remediable_only"] else ""),
            _e(", ".join(r["apps"])),
        )
        for r in u["would_break"]
    ]
    csv_link = (
        f"<p>All of them, for a spreadsheet: <a href='{_e(users_csv)}'>{_e(users_csv)}</a> (beside this page).</p>"
        if users_csv
        else ""
    )
    ready = "".join(f"<div>{_e(r['user'])} <span class='muted'>({r['signins']:,})</span></div>" for r in u["ready"])
    little = "".join(
        f"<div>{_e(r['user'])} <span class='muted'>({r['signins']:,} on {r['days']:,} day(s))</span></div>"
        for r in u.get("too_little_history", [])
    )
    rule = u.get("enough_history", "")
    return (
        f"<h2 id='would-break'>Users who would break<span class='unit'>per user: at least one unbound sign-in, "
        f"expected-unbound left out; all {u['would_break_total']:,} users</span></h2>"
        + f"<div class='scroll'>{_table(('User', 'Unbound sign-ins', 'Codes', 'Apps'), rows, frozenset({1}))}</div>"
        + _more(u["would_break_total"], len(rows))
        + csv_link
        + f"<h2 id='ready'>Users ready to enforce<span class='unit'>per user: only bound sign-ins in the period, "
        f"and {_e(rule)}; {u['ready_total']:,} users (sign-ins in brackets)</span></h2>"
        + (f"<div class='users'>{ready}</div>" if ready else "<p class='muted'>None yet.</p>")
        + _more(u["ready_total"], len(u["ready"]))
        + (
            f"<h3 id='too-little'>Bound so far, but too little history to call ready "
            f"({u.get('too_little_history_total', 0):,} users)</h3><div class='users'>{little}</div>"
            + _more(u.get("too_little_history_total", 0), len(u.get("too_little_history", [])))
            if little
            else ""
        )
    )


def _more(total: int, shown: int) -> str:
    return f"<p class='muted'>and {total - shown:,} more (see --format json).</p>" if total > shown else ""


def _expected(f: dict[str, Any]) -> str:
    x = f["expected"]
    rows = [
        (
            _e(r["reason"]),
            _n(r["requests"]),
            _n(r["signins"]),
            _n(r["users"]),
            ", ".join(_e(c if c >= 0 else "none") for c in r["codes"]),
            _e(", ".join(f"{a} ({c:,})" for a, c in r["apps"])),
        )
        for r in x["by_reason"]
    ]
    table = _table(("Why expected", "Requests", "Sign-ins", "Users", "Codes", "Apps"), rows, frozenset({1, 2, 3}))
    return (
        "<h2>Expected unbound traffic<span class='unit'>per unbound request; kept apart, not a problem by itself"
        "</span></h2><div class='apart'><p>Token Protection supports native apps on Windows, macOS and iOS/iPadOS. "
        "Browsers (except Azure Resource Manager, in preview) and other platforms are unbound by design. "
        f"{_n(x['signins'])} sign-ins were unbound only for these reasons.</p>"
        + (table if rows else "<p class='muted'>None.</p>")
        + "</div>"
    )


def _footer(f: dict[str, Any]) -> str:
    units = "".join(f"<li>{_e(text)}</li>" for text in f["units"].values())
    return (
        "<footer><b>Units.</b><ul>" + units + "</ul>Block and Allow follow Microsoft's impact queries: a request is "
        "blocked when a token protection policy (SignInTokenProtection or Binding) lists the control as not "
        "satisfied; report-only policies count as 'would be blocked'. Microsoft's sample narrows to Exchange Online "
        "and SharePoint Online; these figures cover every resource a policy applied to. "
        "Generated by bindwatch.</footer>"
    )
