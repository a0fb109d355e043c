"""Shared fixtures: a real Azurite for the session, and a clean environment for settings.

Every test that reaches Azurite (through `azurite_server`, directly or through another fixture) is marked
`azurite`, so `pytest -m "not azurite and not browser"` runs the pure suite without starting it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.support import azurite


@pytest.fixture(scope="session")
def azurite_server() -> Iterator[azurite.Azurite]:
    server = azurite.start()
    yield server
    server.stop()


@pytest.fixture
def storage_connection(azurite_server: azurite.Azurite) -> str:
    return azurite_server.connection_string


@pytest.fixture
def table_prefix() -> str:
    """A fresh table-name prefix per test, so tests sharing one Azurite never see each other's state."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests must not read the developer's `.env` or app settings by accident."""
    for name in list(os.environ):
        if name.startswith(
            ("ALERT_", "STATE_", "AzureWebJobsStorage", "SETTLE_", "RULES_", "BINDWATCH_", "LOOKUP_", "WEBSITE_")
        ):
            monkeypatch.delenv(name, raising=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "azurite_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.azurite)
