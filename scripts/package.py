"""Build the deployment zip of the function app: the project folder less what `.funcignore` leaves out.

azd and `func azure functionapp publish` read `.funcignore` the same way; this is the zip that
docs/deploy.md step 1b uploads with `az functionapp deployment source config-zip`, and the one
tests/test_package.py unpacks and imports. It always holds `rules.toml`: without it the app does
not start (RULES_FILE defaults to the shipped file).

Run from the repository root: `.venv/bin/python -m scripts.package app.zip`.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = ("function_app.py", "host.json", "requirements.txt", "rules.toml", "shared/__init__.py")


def ignore_patterns(root: Path) -> list[str]:
    lines = (root / ".funcignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def ignored(relative: str, is_dir: bool, patterns: list[str]) -> bool:
    """gitignore-style: 'name/' matches folders only; a pattern with an inner '/' is anchored to the root."""
    for raw in patterns:
        pattern = raw.rstrip("/")
        if raw.endswith("/") and not is_dir:
            continue
        if "/" in pattern.lstrip("/"):
            if fnmatch.fnmatch(relative, pattern.lstrip("/")):
                return True
        elif fnmatch.fnmatch(relative.rsplit("/", 1)[-1], pattern):
            return True
    return False


def package_files(root: Path = ROOT) -> list[str]:
    """Every file the package holds, as paths relative to `root`, in a stable order."""
    patterns = ignore_patterns(root)
    found: list[str] = []

    def walk(folder: Path) -> None:
        for entry in sorted(folder.iterdir()):
            relative = entry.relative_to(root).as_posix()
            if ignored(relative, entry.is_dir(), patterns):
                continue
            if entry.is_dir():
                walk(entry)
            elif entry.is_file():
                found.append(relative)

    walk(root)
    missing = [name for name in REQUIRED if name not in found]
    if missing:
        raise SystemExit(f"the package would miss {', '.join(missing)}: check .funcignore")
    return found


def build(out: Path, root: Path = ROOT) -> list[str]:
    files = package_files(root)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in files:
            archive.write(root / name, name)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the zip to write, e.g. app.zip")
    args = parser.parse_args(argv)
    files = build(args.out)
    print(f"wrote {args.out}: {len(files)} files (rules.toml included)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
