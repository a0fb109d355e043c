"""A diagnostic setting's storage archive, read in place: every blob of the sign-in containers, in time order.

A diagnostic setting that archives to a storage account writes one container per
category (`insights-logs-signinlogs`, `insights-logs-noninteractiveusersigninlogs`) and
one append blob per hour, `tenantId=<tenant>/y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json`,
one record per line. Given an account URL both containers are read, their blobs
interleaved hour by hour (by name below the container) so the two logs of one hour are
judged together; given a container URL (with an optional folder path) that one alone.
A SAS token in the URL is used as it is; otherwise the caller's Entra identity
(`DefaultAzureCredential`, which needs *Storage Blob Data Reader*). Blobs are streamed,
never downloaded whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from ipaddress import ip_address
from urllib.parse import urlsplit

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobProperties, ContainerClient

from shared.ingest.files import Source
from shared.settings import ConfigurationError, Settings

from .account import credential

SIGNIN_CONTAINERS = ("insights-logs-signinlogs", "insights-logs-noninteractiveusersigninlogs")


@dataclass(frozen=True)
class ArchiveUrl:
    account_url: str
    containers: tuple[str, ...]
    prefix: str
    sas: str


def parse(url: str) -> ArchiveUrl:
    """`https://acct.blob.core.windows.net[/container[/folder]][?sas]`; Azurite's path-style URLs too."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError("--from-storage needs an http(s) URL of a storage account or container")
    segments = [s for s in parts.path.split("/") if s]
    base = f"{parts.scheme}://{parts.netloc}"
    if _path_style(parts.hostname):  # Azurite and IP endpoints: the account is the first path segment
        if not segments:
            raise ConfigurationError("--from-storage: a path-style URL names the account first")
        base += "/" + segments.pop(0)
    containers = (segments[0],) if segments else SIGNIN_CONTAINERS
    prefix = "/".join(segments[1:])
    return ArchiveUrl(base, containers, prefix + "/" if prefix else "", parts.query)


def _path_style(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ip_address(host)
    except ValueError:
        return False
    return True


def archive_sources(settings: Settings, url: str) -> Iterator[Source]:
    """Every blob under the URL as a Source, hour by hour across the containers."""
    target = parse(url)
    clients = {name: _client(target, name, settings) for name in target.containers}
    blobs = sorted(
        (blob.name, order, name)
        for order, (name, client) in enumerate(clients.items())
        for blob in _listed(client, target.prefix)
    )
    for blob, _, container in blobs:
        yield Source(f"{container}/{blob}", partial(_chunks, clients[container], blob), streamed=True)


def _client(target: ArchiveUrl, container: str, settings: Settings) -> ContainerClient:
    if target.sas:
        return ContainerClient.from_container_url(f"{target.account_url}/{container}?{target.sas}")
    return ContainerClient(target.account_url, container, credential=credential(settings))


def _listed(client: ContainerClient, prefix: str) -> Iterator[BlobProperties]:
    try:
        yield from client.list_blobs(name_starts_with=prefix or None)
    except ResourceNotFoundError:
        return  # an account with only one of the two logs archived


def _chunks(client: ContainerClient, blob: str) -> Iterator[bytes]:
    yield from client.download_blob(blob).chunks()
