"""The Functions worker's own cache: what one worker process builds once and reuses across invocations.

The ingest service (state, detection, delivery) and the lookup's store are built
from the settings on first use; health and lookup never build the ingest
pipeline. Tests put their own parts in with `use` and start over with `reset`.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.app import compose
from shared.app.service import IngestService
from shared.settings import current_settings
from shared.views.access import LookupAccess
from shared.views.lookup import DetailStore


@dataclass
class Worker:
    _ingest: IngestService | None = None
    _details: DetailStore | None = None
    _access: LookupAccess | None = None

    def ingest(self) -> IngestService:
        if self._ingest is None:
            self._ingest = compose.ingest_service(current_settings())
        return self._ingest

    def details(self) -> DetailStore:
        if self._details is None:
            self._details = compose.detail_store(current_settings())
        return self._details

    def access(self) -> LookupAccess:
        """Who may open the lookup, from the settings (read once per worker, as the settings are)."""
        if self._access is None:
            self._access = compose.lookup_access(current_settings())
        return self._access

    def use(
        self,
        ingest: IngestService | None = None,
        details: DetailStore | None = None,
        access: LookupAccess | None = None,
    ) -> None:
        """Tests choose the parts (and so the stores) explicitly."""
        self._ingest, self._details, self._access = ingest, details, access

    def reset(self) -> None:
        """Build everything again on next use (new settings, another instance)."""
        self.use(None, None, None)


WORKER = Worker()
