"""Regenerate samples/: deterministic, realistic message files for the demo and the tests.

Run from the repository root: `python -m scripts.make_samples`.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path

from shared.synth.records import BASE_TIME, body, policy, record, service_principal_record
from shared.synth.traffic import Traffic

OUT = Path(__file__).resolve().parent.parent / "samples"


def messages(records: list[dict], rng: random.Random, size: int = 20) -> list[bytes]:
    """Pack records into message bodies the way Azure Monitor batches them, with a little disorder."""
    chunks = [records[i : i + size] for i in range(0, len(records), size)]
    for i in range(0, len(chunks) - 1, 3):  # neighbouring messages arrive swapped now and then
        if rng.random() < 0.4:
            chunks[i], chunks[i + 1] = chunks[i + 1], chunks[i]
    bodies = [body(chunk) for chunk in chunks]
    for i in rng.sample(range(len(bodies)), k=max(1, len(bodies) // 15)):  # at-least-once: redelivered copies
        bodies.insert(i + 2, bodies[i])
    return bodies


def rollout() -> list[bytes]:
    """Two hours of ordinary traffic in report-only and enforced mode, plus other categories."""
    traffic = Traffic(seed=11, users=40, fillers=2)
    rng = random.Random(11)
    records: list[dict] = []
    for minute in range(120):
        at = BASE_TIME + timedelta(minutes=minute)
        for _ in range(rng.randint(2, 5)):
            records.extend(traffic.signin(at + timedelta(seconds=rng.randrange(60))))
        if minute % 10 == 0:
            records.append(service_principal_record(at))
    # A browser user on an unmanaged device: the expected unbound trickle.
    for minute in range(0, 120, 7):
        records.extend(
            traffic.signin(
                BASE_TIME + timedelta(minutes=minute),
                status="unbound",
                code=1002,
                app="Microsoft Teams",
                client_app="Browser",
                os="Windows10",
                trust_type="",
            )
        )
    records.sort(key=lambda r: r["properties"]["createdDateTime"])
    return messages(records, rng)


def burst() -> list[bytes]:
    """A Teams client update stops using the broker: 1008s from one app, twenty times the usual rate."""
    traffic = Traffic(seed=23, users=60, fillers=2)
    rng = random.Random(23)
    start = BASE_TIME + timedelta(hours=2)
    records: list[dict] = []
    for minute in range(75):
        at = start + timedelta(minutes=minute)
        for _ in range(rng.randint(2, 4)):
            records.extend(traffic.signin(at + timedelta(seconds=rng.randrange(60))))
        if 40 <= minute < 55:
            for _ in range(6):
                records.extend(
                    traffic.signin(
                        at + timedelta(seconds=rng.randrange(60)), app="Microsoft Teams", status="unbound", code=1008
                    )
                )
    records.sort(key=lambda r: r["properties"]["createdDateTime"])
    return messages(records, rng)


def hazards() -> dict:
    """One body (pretty-printed) with the drift docs/signin-logs.md ("Hazards") describes."""
    at = BASE_TIME + timedelta(hours=3, minutes=20)
    legacy = record(
        at=at,
        status=None,
        policies=[
            policy("CA-TP00 Legacy binding policy", result="failure", controls=["Binding"], not_satisfied=["Binding"])
        ],
        user="legacy@contoso.com",
    )
    string_code = record(
        at=at,
        status="UNBOUND",
        code="1003",
        user="stringcode@contoso.com",
        policies=[policy(result="reportOnlyFailure", not_satisfied=["SignInTokenProtection"])],
    )
    string_code["level"] = "Informational"
    string_code.pop("Level")
    string_code["durationMs"] = "0"
    us_time = record(at=at, status="bound", code=0, user="ustime@contoso.com")
    us_time["properties"].pop("createdDateTime")
    us_time["time"] = "3/10/2026 11:21:07 AM"
    as_string = record(
        at=at,
        status="unbound",
        code=1006,
        user="oldos@contoso.com",
        category="SignInLogs",
        policies=[policy(result="failure", not_satisfied=["SignInTokenProtection"])],
    )
    as_string["properties"] = json.dumps(as_string["properties"])
    empty = record(at=at, status="none", code=1002, user="unevaluated@contoso.com")
    empty["properties"]["tokenProtectionStatusDetails"] = {}
    not_applied = record(
        at=at,
        status=None,
        user="notapplied@contoso.com",
        policies=[policy(result="notApplied", not_satisfied=["SignInTokenProtection"])],
    )
    return {
        "records": [
            legacy,
            string_code,
            us_time,
            as_string,
            empty,
            not_applied,
            {"category": "AuditLogs", "properties": {"activityDisplayName": "Update user"}},
        ]
    }


def broken() -> list[bytes]:
    """What a hub can also hold: not JSON, no records list, records without properties or id."""
    good = record(at=BASE_TIME + timedelta(hours=3, minutes=30), status="bound", code=0, user="survivor@contoso.com")
    no_id = record(at=BASE_TIME + timedelta(hours=3, minutes=30))
    no_id["properties"].pop("id")
    return [
        b"this is not JSON",
        b'{"records": {"not": "a list"}}',
        body([good, "a string, not a record", {"category": "SignInLogs"}, no_id]),
    ]


def main() -> None:
    random.seed(2026)  # ids the builders draw at random: the same samples every time
    OUT.mkdir(exist_ok=True)
    (OUT / "01-rollout.jsonl").write_bytes(b"\n".join(rollout()) + b"\n")
    (OUT / "02-burst.jsonl").write_bytes(b"\n".join(burst()) + b"\n")
    (OUT / "03-hazards.json").write_text(json.dumps(hazards(), indent=2) + "\n")
    (OUT / "04-broken.jsonl").write_bytes(b"\n".join(broken()) + b"\n")


if __name__ == "__main__":
    main()
