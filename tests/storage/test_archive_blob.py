"""`--from-storage`: a diagnostic setting's archive read in place from a real (Azurite) storage account."""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from azure.storage.blob import (
    AccountSasPermissions,
    BlobServiceClient,
    ResourceTypes,
    generate_account_sas,
)

from shared.cli.main import main
from shared.settings import ConfigurationError
from shared.storage.archive_blob import SIGNIN_CONTAINERS, parse
from tests.ingest.test_shapes import judged
from tests.support import azurite
from tests.support.shapes import corpus, write

CONTAINERS = dict(zip(("SignInLogs", "NonInteractiveUserSignInLogs"), SIGNIN_CONTAINERS, strict=True))
TENANT = "11111111-2222-3333-4444-555555555555"
CORPUS = corpus(signins=160)


def blob_name(at: datetime) -> str:
    return f"tenantId={TENANT}/y={at:%Y}/m={at:%m}/d={at:%d}/h={at:%H}/m=00/PT1H.json"


@pytest.fixture
def archive(azurite_server: azurite.Azurite) -> tuple[str, str]:
    """The corpus archived as a diagnostic setting does: a container per category, an append blob per hour.

    Returns the account URL and a SAS query that reads it."""
    service = BlobServiceClient.from_connection_string(azurite_server.connection_string)
    hours: dict[tuple[str, str], list[bytes]] = defaultdict(list)
    for rec in CORPUS:
        at = datetime.fromisoformat(rec["properties"]["createdDateTime"]).astimezone(UTC)
        hours[(CONTAINERS[rec["category"]], blob_name(at))].append(orjson.dumps(rec) + b"\n")
    for container in SIGNIN_CONTAINERS:
        client = service.get_container_client(container)
        if client.exists():
            client.delete_container()
        service.create_container(container)
    for (container, name), lines in hours.items():
        blob = service.get_blob_client(container, name)
        blob.create_append_blob()
        for start in range(0, len(lines), 25):  # appended in bursts, as Azure Monitor does
            blob.append_block(b"".join(lines[start : start + 25]))
    sas = generate_account_sas(
        azurite.ACCOUNT,
        azurite.KEY,
        resource_types=ResourceTypes(container=True, object=True),
        permission=AccountSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    return f"http://127.0.0.1:{azurite_server.blob_port}/{azurite.ACCOUNT}", sas


def test_a_whole_account_reports_like_the_stream(archive: tuple[str, str], tmp_path: Path) -> None:
    account, sas = archive
    _, expected_figures, _ = judged(write("eventhub-lines", CORPUS, tmp_path))
    out = io.StringIO()
    assert main(["report", "--from-storage", f"{account}?{sas}", "--format", "json"], out) == 0
    figures = orjson.loads(out.getvalue())
    section = figures.pop("input")
    assert section["records"] == len(CORPUS) and section["rejected"] == section["skipped"] == 0
    assert {i["shape"] for i in section["inputs"]} == {"archive"}
    hours = {(r["category"], r["properties"]["createdDateTime"][:13]) for r in CORPUS}
    assert len(section["inputs"]) == len(hours)  # one blob per log and hour
    names = [i["name"].split("/", 1)[1] for i in section["inputs"]]
    assert names == sorted(names)  # hour by hour, both logs of an hour together
    assert figures == orjson.loads(orjson.dumps(expected_figures))


def test_containers_and_folders_give_the_stream_s_last_verdicts(archive: tuple[str, str], tmp_path: Path) -> None:
    account, sas = archive
    expected, _, _ = judged(write("eventhub-lines", CORPUS, tmp_path))
    folder = f"tenantId={TENANT}/y=2026"
    urls = [f"{account}/{container}/{folder}?{sas}" for container in SIGNIN_CONTAINERS]
    out = io.StringIO()
    assert main(["replay", "--format", "jsonl", *[a for url in urls for a in ("--from-storage", url)]], out) == 0
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    last = {line["correlation_id"]: line for line in lines if line["type"] == "verdict"}
    assert lines[-1]["records"] == len(CORPUS)

    def content(line: dict) -> dict:
        return {k: v for k, v in line.items() if k != "revision"}

    got = sorted(map(content, last.values()), key=lambda line: line["correlation_id"])
    assert got == [content(line) for line in expected]


def test_urls_name_the_account_the_containers_and_the_folder() -> None:
    account = parse("https://contoso.blob.core.windows.net")
    assert (account.account_url, account.containers, account.prefix) == (
        "https://contoso.blob.core.windows.net",
        SIGNIN_CONTAINERS,
        "",
    )
    folder = parse("https://contoso.blob.core.windows.net/insights-logs-signinlogs/tenantId=t/y=2026/m=03?sv=x&sig=y")
    assert folder.containers == ("insights-logs-signinlogs",)
    assert (folder.prefix, folder.sas) == ("tenantId=t/y=2026/m=03/", "sv=x&sig=y")
    local = parse("http://127.0.0.1:10000/devstoreaccount1/insights-logs-signinlogs")
    assert local.account_url == "http://127.0.0.1:10000/devstoreaccount1"
    for bad in ("ftp://x", "not a url", "http://127.0.0.1:10000"):
        with pytest.raises(ConfigurationError):
            parse(bad)
