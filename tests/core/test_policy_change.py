"""Conditional Access policy changes read from audit records (issue 17): each kind of change recognised, the rest
skipped with a reason, and no audit record (however malformed) raising anything but Skip."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.policy_change import PolicyChange, Skip, read_change
from shared.synth.audit import POLICY_ID, audit_record, changed, companion, policy


def change(record: dict[str, Any]) -> PolicyChange:
    return read_change(record)


def test_switching_report_only_to_on_is_the_change_that_enforces() -> None:
    before = policy()
    found = change(audit_record(before, changed(before, state="enabled")))
    assert (found.policy_id, found.policy, found.operation) == (POLICY_ID, "CA-TP01 Require token protection", "update")
    assert (found.state_before, found.state_after, found.actor) == ("report_only", "on", "admin@contoso.com")
    assert found.enforces_now and found.scope == ()
    assert found.summary == "update 'CA-TP01 Require token protection' by admin@contoso.com: report-only → on"


def test_a_new_policy_that_is_on_enforces_and_a_delete_names_the_old_state() -> None:
    added = change(audit_record(None, policy(state="enabled")))
    assert added.operation == "add" and added.state_before == "" and added.enforces_now
    deleted = change(audit_record(policy(state="enabled"), None))
    assert deleted.operation == "delete" and deleted.state_after == "" and not deleted.protection_after
    assert not deleted.enforces_now


def test_token_protection_added_to_a_policy_that_is_on_enforces() -> None:
    before = policy(state="enabled", protection=False)
    after = changed(before, sessionControls={"secureSignInSession": {"isEnabled": True}})
    found = change(audit_record(before, after))
    assert not found.protection_before and found.protection_after and found.enforces_now
    assert found.summary.startswith(
        "update 'CA-TP01 Require token protection' by admin@contoso.com: token protection added"
    )


def test_scope_changes_are_set_differences_case_folded() -> None:
    before = policy(state="enabled", platforms={"includePlatforms": ["iOS", "android"]})
    after = json.loads(json.dumps(before))
    after["conditions"]["users"]["excludeGroups"] = ["break-glass", "helpdesk"]
    after["conditions"]["platforms"]["includePlatforms"] = ["IOS", "android", "windows"]
    after["conditions"]["clientAppTypes"] = ["mobileAppsAndDesktopClients", "browser"]
    after["displayName"] = "CA-TP01 v2"
    found = change(audit_record(before, after))
    scope = {s.what: (s.added, s.removed) for s in found.scope}
    assert scope == {
        "groups excluded": (("break-glass", "helpdesk"), ()),
        "platforms included": (("windows",), ()),
        "client app types": (("browser",), ()),
    }
    assert found.renamed_from == "CA-TP01 Require token protection" and found.policy == "CA-TP01 v2"
    assert not found.enforces_now  # it was on and protected already: a widening, not a switch


def test_hazards_of_real_records_are_read() -> None:
    """The case of the activity varies, the policy property is found by name wherever it is, values may be
    objects rather than JSON text, platforms may be missing, and automation names an app, not a user."""
    before = policy()
    record = audit_record(
        before, changed(before, state="enabled"), actor={"app": {"displayName": "Terraform", "appId": "a-1"}}
    )
    record["properties"]["activityDisplayName"] = "Update Conditional Access policy"
    props = record["properties"]["targetResources"][0]["modifiedProperties"]
    props.insert(0, {"displayName": "Included Updated Properties", "oldValue": None, "newValue": '"State"'})
    props[1]["newValue"] = json.loads(props[1]["newValue"])
    found = change(record)
    assert found.actor == "Terraform" and found.enforces_now


def test_a_graph_directory_audit_reads_like_the_stream() -> None:
    before = policy()
    graph = audit_record(before, changed(before, state="enabled"))["properties"]  # no envelope
    assert change(graph).enforces_now


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda r: r["properties"].update(activityDisplayName="Add member to group"), "other audit activity"),
        (lambda r: r["properties"].update(result="failure"), "failed change"),
        (lambda r: r["properties"].update(targetResources=[]), "no policy in the record"),
        (lambda r: r["properties"].update(activityDateTime=None) or r.update(time=None), "no time"),
        (
            lambda r: r["properties"]["targetResources"][0]["modifiedProperties"][0].update(newValue="{not json"),
            "policy value is not JSON",
        ),
    ],
)
def test_everything_else_is_skipped_with_its_reason(mutate: Any, reason: str) -> None:
    before = policy()
    record = audit_record(before, changed(before, state="enabled"))
    mutate(record)
    with pytest.raises(Skip, match=reason):
        read_change(record)


def test_policies_without_token_protection_and_companion_records_are_skipped() -> None:
    mfa = policy(protection=False)
    with pytest.raises(Skip, match="not a token protection policy"):
        read_change(audit_record(mfa, changed(mfa, state="enabled")))
    before = policy()
    with pytest.raises(Skip, match="other audit activity"):  # its activity is "Update policy"
        read_change(companion(audit_record(before, changed(before, state="enabled"))))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


@given(JSON, JSON, st.sampled_from(["oldValue", "newValue", "targetResources", "initiatedBy", "activityDateTime"]))
def test_no_audit_record_raises_anything_but_skip(noise: Any, other: Any, key: str) -> None:
    before = policy()
    record = audit_record(before, changed(before, state="enabled"))
    if key in ("oldValue", "newValue"):
        record["properties"]["targetResources"][0]["modifiedProperties"][0][key] = (
            json.dumps(noise) if isinstance(other, bool) else noise
        )
    else:
        record["properties"][key] = noise
    try:
        found = read_change(record)
    except Skip:
        return
    assert isinstance(found.summary, str) and found.line()["type"] == "policy_change"
