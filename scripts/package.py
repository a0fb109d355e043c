"""Build the deployment zip of the function app (`make package`): the project folder less what `.funcignore` leaves
out, and refuse it if it would hold anything the app does not need.

azd reads `.funcignore` (gitignore syntax) to zip the same folder; this command reads it the same way, and the
azd `prepackage` hook in azure.yaml runs `--check` so azd stops before uploading a package this command would
refuse. What the app needs is `function_app.py`, `host.json`, `requirements.txt`, `rules.toml` (without it the app
does not start: RULES_FILE defaults to the shipped file) and the Python modules of `shared/`. Anything else that
`.funcignore` lets through (`.azure/<env>/.env` with azd's copies of the destination secrets, a `.env`,
`local.settings.json`, caches, docs) stops the build, naming the file. tests/test_package.py unpacks the zip alone
and imports it, and plants such files in a copy of the project to see them refused or left out.

Run from the repository root: `make package` (writes app.zip), or `.venv/bin/python -m scripts.package --check`.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = ("function_app.py", "host.json", "requirements.txt", "rules.toml", "shared/__init__.py")
TOP_LEVEL = frozenset(REQUIRED[:4])


class Refused(SystemExit):
    """The package would miss what the app needs, or hold what it does not: the message names every file."""

    def __init__(self, message: str, missing: list[str] | None = None, extra: list[str] | None = None) -> None:
        super().__init__(message)
        self.missing = missing or []
        self.extra = extra or []


def ignore_patterns(root: Path) -> list[str]:
    lines = (root / ".funcignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    negated = [p for p in patterns if p.startswith("!")]
    if negated:  # azd honours them, this reader would not: the two must never disagree about what ships
        raise Refused(f".funcignore: negated patterns are not supported here: {', '.join(negated)}")
    return patterns


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


def needed(relative: str) -> bool:
    """What the app imports or reads at run time, and nothing else."""
    return relative in TOP_LEVEL or (relative.startswith("shared/") and relative.endswith(".py"))


def package_files(root: Path = ROOT) -> list[str]:
    """Every file the package holds, as paths relative to `root`, in a stable order; Refused when one is missing
    or one is not needed."""
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
    extra = [name for name in found if not needed(name)]
    problems = []
    if missing:
        problems.append(f"the package would miss {', '.join(missing)}: check .funcignore")
    if extra:
        problems.append(
            f"the package would hold {', '.join(extra)}, which the app does not need (secrets in .env or .azure/ "
            "must never ship): add them to .funcignore, or delete them"
        )
    if problems:
        raise Refused("; ".join(problems), missing, extra)
    return found


def build(out: Path, root: Path = ROOT) -> list[str]:
    files = package_files(root)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in files:
            archive.write(root / name, name)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path("app.zip"), help="the zip to write (app.zip)")
    parser.add_argument("--check", action="store_true", help="only check the file set (the azd prepackage hook)")
    args = parser.parse_args(argv)
    if args.check:
        files = package_files()
        print(f"package ok: {len(files)} files, nothing the app does not need", file=sys.stderr)
        return 0
    files = build(args.out)
    print(f"wrote {args.out}: {len(files)} files (rules.toml included, nothing the app does not need)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
