"""The deployed file set: the zip `make package` builds (respecting .funcignore, as azd does) holds what the app needs
and nothing else, no secret-bearing file can ship, and unpacked alone it imports.

The import runs in a fresh interpreter whose path holds the unpacked package and the installed
requirements only (what the platform's remote build gives it), never this repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from scripts.package import Refused, build, ignored, needed, package_files

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


# Files a deployer's folder holds that must never ship: azd's environment (the destination secrets in plain text),
# dotenv files, the Functions local settings, keys, and leftovers of the tools.
DECOYS = (
    ".azure/prod/.env",
    ".azure/prod/config.json",
    ".azure/config.json",
    ".env",
    ".env.local",
    "shared/.env",
    "local.settings.json",
    "signing.pem",
    "app.zip",
    "report.html",  # what README's own commands write in this folder
    "report.json",
    "report.would-break.csv",
    "verdicts.jsonl",
    ".import_linter_cache/x.json",
    "shared/__pycache__/x.cpython-311.pyc",
)


def project_copy(tmp_path: Path) -> Path:
    """The project as a deployer's folder holds it (no git, venv or node_modules), in a temporary directory."""
    copy = tmp_path / "project"
    skip = shutil.ignore_patterns(".git", ".venv", ".venv-checkov", "node_modules", ".hypothesis", "*_cache")
    shutil.copytree(ROOT, copy, ignore=skip)
    return copy


def plant(root: Path, names: tuple[str, ...] = DECOYS) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("ALERT_TEAMS_WEBHOOK_URL=https://example.invalid/secret\n")


def test_the_package_holds_what_the_app_needs_and_nothing_else() -> None:
    files = set(package_files())
    assert {"function_app.py", "host.json", "requirements.txt", "rules.toml"} <= files
    assert any(f.startswith("shared/views/") for f in files)
    assert all(needed(f) for f in files), sorted(f for f in files if not needed(f))
    for left_out in ("tests/", "docs/", "infra/", "shared/synth/", "scripts/", "samples/", ".venv/", "node_modules/"):
        assert not any(f.startswith(left_out) for f in files), left_out
    assert not {"README.md", "azure.yaml", "pyproject.toml", ".funcignore", "local.settings.json.example"} & files


def test_make_package_leaves_every_secret_bearing_file_out(tmp_path: Path) -> None:
    """The command `make package` runs, in a copy of the project where a deployer's secrets sit beside the code."""
    copy = project_copy(tmp_path)
    plant(copy)
    out = tmp_path / "app.zip"
    done = subprocess.run(
        [sys.executable, "-m", "scripts.package", str(out)], cwd=copy, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(out) as zipped:
        shipped = {name: zipped.read(name) for name in zipped.namelist()}
    assert set(shipped) == set(package_files(copy)) and "rules.toml" in shipped
    assert not set(shipped) & set(DECOYS)
    assert not any(".env" in name or name.startswith(".azure/") for name in shipped)
    assert not any(b"example.invalid/secret" in content for content in shipped.values())  # nor under another name


@pytest.mark.parametrize("pattern", [".azure/", ".env*", "local.settings.json", "*.zip", "*.html"])
def test_a_secret_bearing_file_that_funcignore_lets_through_stops_the_build(tmp_path: Path, pattern: str) -> None:
    """Take one pattern out of .funcignore and the package is refused, naming what would have shipped."""
    copy = project_copy(tmp_path)
    plant(copy)
    funcignore = copy / ".funcignore"
    lines = funcignore.read_text().splitlines()
    assert pattern in lines
    funcignore.write_text("\n".join(line for line in lines if line != pattern) + "\n")
    with pytest.raises(Refused, match="which the app does not need") as refused:
        package_files(copy)
    shipped = refused.value.extra
    assert shipped and set(shipped) <= set(DECOYS)  # exactly what the pattern kept out, nothing else
    assert all(d.startswith(pattern) or ignored(d, d.endswith("/"), [pattern]) for d in shipped)
    check = subprocess.run([sys.executable, "-m", "scripts.package", "--check"], cwd=copy, capture_output=True,
                           text=True, check=False)  # fmt: skip
    assert check.returncode != 0 and shipped[0] in check.stderr  # the azd prepackage hook fails the same way


def test_azd_runs_the_same_check_before_it_packs() -> None:
    """azd zips the folder itself (by .funcignore); its prepackage hook is this command's --check, on both shells."""
    azure_yaml = (ROOT / "azure.yaml").read_text()
    assert azure_yaml.count("-m scripts.package --check") == 2 and "prepackage:" in azure_yaml
    assert ".venv" not in azure_yaml.split("prepackage:")[1]  # the hook needs only Python 3.11, not the dev venv


def test_negated_patterns_are_refused(tmp_path: Path) -> None:
    """azd honours '!' in .funcignore and this reader does not: such a pattern must stop the build, not diverge."""
    copy = project_copy(tmp_path)
    (copy / ".funcignore").write_text((copy / ".funcignore").read_text() + "!docs/readme-for-ops.md\n")
    with pytest.raises(Refused, match="negated patterns"):
        package_files(copy)


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
