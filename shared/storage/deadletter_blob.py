"""Rejected input in a blob container: one blob of JSON lines per invocation.

Each line has the reason, where it came from (partition, offset, sequence number,
record index) and the raw bytes in base64. Blob names come from the content, so a
redelivered batch overwrites its own blob instead of adding a second copy.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from shared.core.rejection import Rejection
from shared.ingest.deadletter import dead_letter_line


def blob_name(rejections: Sequence[Rejection], content: bytes) -> str:
    """`<yyyy>/<mm>/<dd>/p<partition>/<first sequence>-<hash>.jsonl`: findable by day and partition, idempotent."""
    first = rejections[0].origin
    at = first.enqueued_time
    day = datetime.fromtimestamp(at, UTC) if at is not None else datetime.now(UTC)
    partition = first.partition if first.partition is not None else "none"
    sequence = first.sequence_number if first.sequence_number is not None else "none"
    digest = hashlib.sha256(content).hexdigest()[:16]
    return f"{day:%Y/%m/%d}/p{partition}/{sequence}-{digest}.jsonl"


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
