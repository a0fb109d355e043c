"""Render the Teams card for a sample alert to docs/teams-card.png, the way the Adaptive Cards SDK draws it.

Builds the message with `shared.card`, writes an HTML page that inlines the SDK's
bundle from node_modules (no network), and screenshots it with headless Chromium.
Run: `.venv/bin/python -m scripts.render_card [--out docs/teams-card.png] [--status firing|resolved]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from shared.core.alert import Notification
from shared.notify.teams import message
from shared.synth.alerts import sample

ROOT = Path(__file__).resolve().parent.parent

SDK = ROOT / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.min.js"
CHROMIUM = ("/usr/bin/chromium", "chromium", "chromium-browser")

# A host config close to Teams' light theme, so the picture looks like the channel post.
HOST_CONFIG = {
    "fontFamily": "'Segoe UI', 'Helvetica Neue', 'Liberation Sans', 'DejaVu Sans', sans-serif",
    "spacing": {"small": 4, "default": 8, "medium": 16, "large": 20, "extraLarge": 24, "padding": 16},
    "separator": {"lineThickness": 1, "lineColor": "#E1DFDD"},
    "fontSizes": {"small": 12, "default": 14, "medium": 16, "large": 20, "extraLarge": 24},
    "fontWeights": {"lighter": 200, "default": 400, "bolder": 600},
    "containerStyles": {
        "default": {
            "backgroundColor": "#FFFFFF",
            "foregroundColors": {
                "default": {"default": "#242424", "subtle": "#616161"},
                "accent": {"default": "#5B5FC7", "subtle": "#5B5FC7"},
                "attention": {"default": "#C4314B", "subtle": "#C4314B"},
                "good": {"default": "#237B4B", "subtle": "#237B4B"},
                "warning": {"default": "#835C00", "subtle": "#835C00"},
            },
        },
        "emphasis": {"backgroundColor": "#F5F5F5"},
        "attention": {"backgroundColor": "#FCF4F6"},
        "warning": {"backgroundColor": "#FBF6D9"},
        "good": {"backgroundColor": "#E7F2DA"},
        "accent": {"backgroundColor": "#EBEBF7"},
    },
    "actions": {
        "maxActions": 6,
        "buttonSpacing": 8,
        "actionsOrientation": "horizontal",
        "showCard": {"inlineTopMargin": 8},
    },
    "factSet": {"title": {"weight": "bolder", "wrap": True, "maxWidth": 260}, "value": {"wrap": True}, "spacing": 12},
}

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><style>
body {{ margin: 0; padding: 16px; background: #F5F5F5; font-family: 'Segoe UI', 'Liberation Sans', sans-serif; }}
#card {{ background: #fff; border-radius: 6px; box-shadow: 0 1px 3px rgba(0,0,0,.2); overflow: hidden; }}
.ac-pushButton {{ background: #fff; border: 1px solid #D1D1D1; border-radius: 4px; padding: 6px 12px;
  font: 600 14px 'Segoe UI', 'Liberation Sans', sans-serif; color: #242424; }}
</style></head><body><div id="card"></div>
<script>{sdk}</script>
<script>
const escape = (s) => s.replace(/[&<>]/g, (c) => ({{"&": "&amp;", "<": "&lt;", ">": "&gt;"}})[c]);
AdaptiveCards.AdaptiveCard.onProcessMarkdown = (text, result) => {{
  const html = escape(text).split(/\\n\\n|\\n(?=- )/).map((p) => p.startsWith("- ")
    ? "<ul style='margin:0;padding-left:18px'>" + p.split("\\n").map((l) => "<li>" + l.slice(2) + "</li>").join("") + "</ul>"
    : "<p style='margin:0'>" + p.replace(/\\n/g, "<br>") + "</p>").join("");
  result.outputHtml = html.replace(/\\*\\*(.+?)\\*\\*/g, "<strong>$1</strong>");
  result.didProcess = true;
}};
const card = new AdaptiveCards.AdaptiveCard();
card.hostConfig = new AdaptiveCards.HostConfig({host});
card.parse({content});
document.getElementById("card").appendChild(card.render());
</script></body></html>
"""


def page(content: dict) -> str:
    return PAGE.format(sdk=SDK.read_text(), host=json.dumps(HOST_CONFIG), content=json.dumps(content))


def chromium() -> str:
    for name in CHROMIUM:
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("chromium not found: install it (Debian: apt-get install -y chromium)")


def screenshot(html: str, out: Path, width: int = 600, height: int = 1000) -> None:
    """Headless Chromium, offline and without a profile of its own, to a PNG of width x height."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "card.html"
        source.write_text(html)
        command = [
            chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
            f"--user-data-dir={tmp}/profile", f"--screenshot={out.resolve()}", f"--window-size={width},{height}",
            source.as_uri(),
        ]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True, timeout=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "teams-card.png")
    parser.add_argument("--status", choices=("firing", "resolved"), default="firing")
    parser.add_argument("--kind", default="spike")
    parser.add_argument("--height", type=int, default=880)
    args = parser.parse_args(argv)
    alert = sample(args.kind, args.status)
    envelope = message(Notification("teams", [alert], alert.at))
    screenshot(page(envelope["attachments"][0]["content"]), args.out, height=args.height)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
