"""Policy changes in the stream (issue 17): audit records beside sign-ins, in every envelope replay reads, come out
as policy-change lines; every other audit record is skipped and counted as before."""

from __future__ import annotations

import io
import json
from pathlib import Path

from shared.cli.main import main
from shared.core.message import Message
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.synth.audit import audit_record, changed, companion, policy
from shared.synth.records import body, record


def stream_records() -> list[dict]:
    before = policy()
    switch = audit_record(before, changed(before, state="enabled"))
    other = audit_record(before, changed(before, state="enabled"), record_id="IPCGraph_0002")
    other["properties"]["activityDisplayName"] = other["operationName"] = "Add member to group"
    mfa = policy(name="CA-MFA", protection=False)
    return [switch, companion(switch), other, audit_record(mfa, changed(mfa, state="disabled"), record_id="x")]


def test_an_event_hub_message_of_audit_records_gives_the_change_and_counts_the_rest() -> None:
    pipeline = Pipeline(MemoryStore(), 600.0)
    outcome = pipeline.ingest([Message(json.dumps({"records": stream_records()}).encode())])
    (change,) = outcome.tally.changes
    assert change.enforces_now and change.actor == "admin@contoso.com"
    assert outcome.tally.skipped["AuditLogs"] == 3 and outcome.rejections == []
    assert [line["type"] for line in outcome.lines] == ["policy_change"]


def test_sign_ins_beside_audit_messages_are_judged_as_before() -> None:
    pipeline = Pipeline(MemoryStore(), 600.0)
    signins = Message(body([record(status="unbound", code=1008)]))
    outcome = pipeline.ingest([signins, Message(json.dumps({"records": stream_records()}).encode())])
    assert outcome.tally.records == 1 and len(outcome.tally.changes) == 1


def test_replay_prints_the_change_from_an_archive_file(tmp_path: Path) -> None:
    archive = tmp_path / "PT1H.json"  # a storage-account archive: one record per line
    archive.write_text("\n".join(json.dumps(r) for r in stream_records()) + "\n", encoding="utf-8")
    out = io.StringIO()
    assert main(["replay", str(archive), "--format", "table"], stdout=out) == 0
    text = out.getvalue()
    assert "POLICY CHANGE: update 'CA-TP01 Require token protection' by admin@contoso.com: report-only → on" in text
    assert "(token protection now enforced)" in text
