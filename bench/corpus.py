"""The benchmarks' corpora: deterministic, realistic Event Hub bodies, written one per line as users feed replay."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import orjson

from shared.synth.records import BASE_TIME, body
from shared.synth.traffic import Traffic

RECORDS_PER_BODY = 80  # records per Event Hub message, as a diagnostic setting batches them
FILLER_POLICIES = 29  # with the Token Protection policy: 30 CA policies a record, ~10 KB a record


def make_bodies(
    records: int,
    seed: int = 3,
    *,
    users: int = 5000,
    apps: Sequence[str] | None = None,
    unbound_share: float = 0.12,
) -> list[bytes]:
    """Deterministic realistic traffic: ~10 KB records with 30 CA policies, 1-4 requests per sign-in.

    `apps`: pick each sign-in's app from these names (many distinct groups) instead of the four usual ones.
    """
    traffic = Traffic(seed=seed, users=users, fillers=FILLER_POLICIES, unbound_share=unbound_share)
    rng = random.Random(seed)
    out: list[dict] = []
    at = BASE_TIME
    while len(out) < records:
        at += timedelta(seconds=rng.expovariate(20.0))
        out.extend(traffic.signin(at, app=rng.choice(apps)) if apps else traffic.signin(at))
    out = out[:records]
    return [body(out[i : i + RECORDS_PER_BODY]) for i in range(0, len(out), RECORDS_PER_BODY)]


@dataclass(frozen=True)
class Corpus:
    """One corpus: its bodies, written to `path` one per line, and what it holds."""

    name: str
    bodies: list[bytes]
    path: Path
    records: int
    signins: int
    unbound_share: float  # of sign-ins with an unbound first request
    users: int  # distinct users seen
    apps: int  # distinct apps seen

    @property
    def bytes_per_record(self) -> float:
        return sum(len(b) for b in self.bodies) / self.records


def build(name: str, bodies: list[bytes], folder: Path) -> Corpus:
    path = folder / f"{name}.jsonl"
    path.write_bytes(b"\n".join(bodies) + b"\n")
    records = 0
    signins: dict[str, bool] = {}
    users: set[str] = set()
    apps: set[str] = set()
    for item in bodies:
        for record in orjson.loads(item)["records"]:
            records += 1
            properties = record["properties"]
            users.add(properties["userPrincipalName"])
            apps.add(properties["appDisplayName"])
            status = (properties.get("tokenProtectionStatusDetails") or {}).get("signInSessionStatus")
            signins[properties["correlationId"]] = (
                signins.get(properties["correlationId"], False) or status == "unbound"
            )
    unbound = sum(signins.values()) / len(signins)
    return Corpus(name, bodies, path, records, len(signins), unbound, len(users), len(apps))


def main_corpus(records: int, folder: Path) -> Corpus:
    """~5,000 users, the four usual apps, 8 % of sign-ins unbound (the issue's 5-10 %)."""
    return build("main", make_bodies(records, seed=3, unbound_share=0.08), folder)


def many_groups_corpus(records: int, folder: Path) -> Corpus:
    """Thousands of distinct apps and users: does detection's cost grow with the number of groups it has seen?"""
    apps = [f"Line-of-business app {i:04d}" for i in range(3000)]
    return build("many-groups", make_bodies(records, seed=5, users=50_000, apps=apps, unbound_share=0.08), folder)


def one_record_file(folder: Path) -> Path:
    """A file of one record: replay's and report's start-up, timed the same way as the real runs."""
    path = folder / "one.jsonl"
    path.write_bytes(make_bodies(1, seed=11)[0] + b"\n")
    return path
