"""The deployed file set starts: the zip docs/deploy.md builds (respecting .funcignore), unpacked alone, imports.

The import runs in a fresh interpreter whose path holds the unpacked package and the installed
requirements only (what the platform's remote build gives it), never this repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from scripts.package import build, ignored, package_files

ROOT = Path(__file__).resolve().parents[1]

IMPORT = """
import sys
sys.path.insert(0, ".")
import function_app
import shared
assert shared.__file__.startswith(sys.argv[1]), shared.__file__
names = sorted(f.get_function_name() for f in function_app.app.get_functions())
print(" ".join(names))
"""


def test_the_package_holds_what_the_app_needs_and_nothing_else() -> None:
    files = set(package_files())
    assert {"function_app.py", "host.json", "requirements.txt", "rules.toml"} <= files
    assert any(f.startswith("shared/views/") for f in files)
    for left_out in ("tests/", "docs/", "infra/", "shared/synth/", "scripts/", "samples/", ".venv/", "node_modules/"):
        assert not any(f.startswith(left_out) for f in files), left_out
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)
    assert "local.settings.json.example" not in files


def test_the_unpacked_package_imports_and_registers_every_function(tmp_path: Path) -> None:
    archive = tmp_path / "app.zip"
    build(archive)
    unpacked = tmp_path / "wwwroot"
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(unpacked)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RULES_", "ALERT_", "PYTHON"))}
    done = subprocess.run(
        [sys.executable, "-c", IMPORT, str(unpacked)],
        cwd=unpacked,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["expire_signins", "health", "ingest_signins", "settle_signins", "signin_lookup"]


def test_without_rules_toml_the_package_would_not_start(tmp_path: Path) -> None:
    """The reason step 1b ships rules.toml: the same import fails, naming the rules file."""
    unpacked = tmp_path / "wwwroot"
    build(tmp_path / "app.zip")
    with zipfile.ZipFile(tmp_path / "app.zip") as zipped:
        zipped.extractall(unpacked)
    (unpacked / "rules.toml").unlink()
    done = subprocess.run(
        [sys.executable, "-c", IMPORT, str(unpacked)], cwd=unpacked, capture_output=True, text=True, timeout=120,
        check=False, env={k: v for k, v in os.environ.items() if not k.startswith(("RULES_", "PYTHON"))},
    )  # fmt: skip
    assert done.returncode != 0
    assert "rules file" in done.stderr and "cannot read it" in done.stderr


def test_funcignore_patterns() -> None:
    patterns = ["tests/", "shared/synth/", ".git*", "*.pyc", "local.settings.json"]
    assert ignored("tests", True, patterns)
    assert not ignored("tests", False, patterns)  # a file called tests is not the folder
    assert ignored("shared/synth", True, patterns)
    assert not ignored("shared/synthesis", True, patterns)
    assert ignored(".gitignore", False, patterns) and ignored("shared/x.pyc", False, patterns)
    assert not ignored("shared/core/x.py", False, patterns)
