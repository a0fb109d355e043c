"""The layout is the design: which package may import which SDK, and that the pure layers load no SDK at all.

The layers themselves are import-linter's contract (pyproject.toml, `make test` runs `lint-imports`); these
checks cover what import-linter cannot express, because it sees `azure` as one package.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "shared"

# SDK -> the only package of shared/ that may import it directly.
OWNERS = {
    "azure.functions": "functions",
    "azure.data.tables": "storage",
    "azure.storage.blob": "storage",
    "azure.eventhub": "eventhub",
    "azure.identity": ("storage", "eventhub", "graph"),
    "httpx": ("notify", "graph"),
}


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("sdk", sorted(OWNERS))
def test_each_sdk_is_imported_by_its_own_package_only(sdk: str) -> None:
    owners = OWNERS[sdk] if isinstance(OWNERS[sdk], tuple) else (OWNERS[sdk],)
    offenders = [
        str(path.relative_to(ROOT))
        for path in SHARED.rglob("*.py")
        if path.relative_to(SHARED).parts[0] not in owners
        and any(name == sdk or name.startswith(sdk + ".") for name in imports_of(path))
    ]
    assert offenders == []


def test_function_app_only_registers_blueprints() -> None:
    tree = ast.parse((ROOT / "function_app.py").read_text(encoding="utf-8"))
    functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)]
    assert functions == []
    assert imports_of(ROOT / "function_app.py") == {"azure.functions", "shared.functions"}


@pytest.mark.parametrize(
    "module",
    ["shared.detect.content", "shared.detect.detector", "shared.ingest.pipeline", "shared.views.readiness"]
    + [f"shared.core.{p.stem}" for p in sorted((SHARED / "core").glob("*.py")) if p.stem != "__init__"],
)
def test_the_pure_layers_load_no_sdk(module: str) -> None:
    """Importing a pure module must not pull in an Azure SDK, the Functions library or an HTTP client."""
    code = (
        f"import sys, {module}; "
        "print(sorted({m.split('.')[0] + '.' + m.split('.')[1] if m.startswith('azure.') else m.split('.')[0] "
        "for m in sys.modules if m.startswith(('azure', 'httpx'))}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]"


def test_bench_and_scripts_import_the_code_without_a_path_hack() -> None:
    for path in [*(ROOT / "bench").glob("*.py"), *(ROOT / "scripts").glob("*.py")]:
        assert "sys.path.insert" not in path.read_text(encoding="utf-8"), path.name
