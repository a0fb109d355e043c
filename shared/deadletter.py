"""Rejected input, kept where an admin can find it: one blob of JSON lines per invocation.

Event Hubs has no dead-letter queue and the checkpoint moves on whether or not the
function succeeds, so anything not judged must land here or in a log. Each line
has the reason, where it came from (partition, offset, sequence number, record
index) and the raw bytes in base64. Blob names come from the content, so a
redelivered batch overwrites its own blob instead of adding a second copy.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from .record import Message, Rejection
from .replay import rejection_record
from .request import iso
from .settings import Settings


class DeadLetter(Protocol):
    def write(self, rejections: Sequence[Rejection]) -> str | None:
        """Keep these rejections; return where (None when there were none)."""
        ...


def dead_letter_line(rejection: Rejection) -> dict[str, Any]:
    """The replay `--rejected` line, plus the enqueued time and always the exact bytes in base64."""
    line = rejection_record(rejection)
    enqueued = rejection.origin.enqueued_time
    line["enqueued_time"] = iso(enqueued) if enqueued is not None else None
    line["raw_base64"] = base64.b64encode(rejection.raw).decode()
    return line


def blob_name(rejections: Sequence[Rejection], content: bytes) -> str:
    """`<yyyy>/<mm>/<dd>/p<partition>/<first sequence>-<hash>.jsonl`: findable by day and partition, idempotent."""
    first = rejections[0].origin
    at = first.enqueued_time
    day = datetime.fromtimestamp(at, UTC) if at is not None else datetime.now(UTC)
    partition = first.partition if first.partition is not None else "none"
    sequence = first.sequence_number if first.sequence_number is not None else "none"
    digest = hashlib.sha256(content).hexdigest()[:16]
    return f"{day:%Y/%m/%d}/p{partition}/{sequence}-{digest}.jsonl"


def as_rejections(messages: Sequence[Message], reason: str) -> list[Rejection]:
    """Whole messages the function could not process (the store kept failing): keep them to re-drive."""
    return [Rejection(reason, message.origin, bytes(message.body)) for message in messages]


class BlobDeadLetter:
    """Writes to the REJECTED_CONTAINER container, creating it on first use."""

    def __init__(self, container: ContainerClient) -> None:
        self.container = container

    def write(self, rejections: Sequence[Rejection]) -> str | None:
        if not rejections:
            return None
        content = b"".join(orjson.dumps(dead_letter_line(r), default=str) + b"\n" for r in rejections)
        name = blob_name(rejections, content)
        try:
            self.container.upload_blob(name, content, overwrite=True)
        except ResourceNotFoundError:
            with contextlib.suppress(ResourceExistsError):  # another instance created it meanwhile
                self.container.create_container()
            self.container.upload_blob(name, content, overwrite=True)
        return name


def open_dead_letter(settings: Settings) -> BlobDeadLetter:
    from .storage import blob_service

    return BlobDeadLetter(blob_service(settings).get_container_client(settings.rejected_container))
