"""The lookup as on-call opens it: a page for browsers, JSON when asked, pasted IDs forgiven, and only for the
signed-in principals the settings name (App Service Authentication in front, the principal header checked again)."""

from __future__ import annotations

import base64
import html
import re
from typing import Any

import azure.functions as func
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.correlation import normalise_correlation_id, valid_correlation_id
from shared.core.message import Message, Origin
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.synth.records import body, policy, record
from shared.views.access import PRINCIPAL_HEADER, LookupAccess, check, read_principal
from shared.views.lookup import MemoryDetails
from shared.views.lookup_html import CSP, prefers_json, render
from tests.support.http import GROUP, ROLE, http_lookup, principal_header, request

CID = "6f1c2a9e-0b1d-4c55-9a0e-3e8f1d2c4b5a"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
HOSTILE = "<script>alert('x')</script>\"'&"


def fed(records: list[dict[str, Any]]) -> MemoryDetails:
    details = MemoryDetails()
    pipeline = Pipeline(MemoryStore(), 600.0, observers=[details])
    pipeline.ingest([Message(body(records), Origin(source="test"))])
    pipeline.drain()
    return details


def store() -> MemoryDetails:
    blocked = policy(
        "CA-TP01 Require token protection", result="reportOnlyFailure", not_satisfied=["SignInTokenProtection"]
    )
    return fed(
        [
            record(correlation_id=CID, status="bound", code=0, app="Microsoft Outlook", user="ann@contoso.com"),
            record(
                correlation_id=CID, status="unbound", code=1008, app="Microsoft Teams", user="ann@contoso.com",
                resource="Microsoft Teams Services", policies=[blocked],
            ),
        ]
    )  # fmt: skip


def lookup(
    cid: str, accept: str | None = BROWSER_ACCEPT, principal: str | None = None, **kwargs: Any
) -> func.HttpResponse:
    headers = {PRINCIPAL_HEADER: principal if principal is not None else principal_header()}
    if accept:
        headers["accept"] = accept
    return http_lookup(
        request(f"/api/signins/{cid}", {"correlation_id": cid}, headers), kwargs.pop("details", store()), **kwargs
    )


def test_a_browser_gets_a_locked_down_page_with_the_verdict_and_every_request() -> None:
    response = lookup(CID)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == CSP
    assert "script-src" not in CSP and "default-src 'none'" in CSP
    page = response.get_body().decode()
    assert "Unbound: at least one request was not bound" in page
    assert "would be blocked once the policy is enforced" in page
    assert page.count("<tr>") == 1 + 2 + 1 + 1  # requests head + 2 rows, policies head + 1 row
    assert "Code 1008" in page and "not evidence of token theft" in page
    assert "CA-TP01 Require token protection" in page
    assert "entra.microsoft.com" in page
    assert f"| where CorrelationId == &quot;{CID}&quot;" in page


def test_json_for_scripts_and_for_format_json() -> None:
    as_param = func.HttpRequest(
        method="GET", url=f"/api/signins/{CID}?format=json", route_params={"correlation_id": CID},
        params={"format": "json"}, headers={PRINCIPAL_HEADER: principal_header(), "accept": BROWSER_ACCEPT}, body=b"",
    )  # fmt: skip
    for response in (lookup(CID, accept="application/json"), http_lookup(as_param, store())):
        assert response.status_code == 200
        assert response.mimetype == "application/json"
        document = orjson.loads(response.get_body())
        assert document["verdict"] == "unbound"
        assert "union SigninLogs, AADNonInteractiveUserSignInLogs" in document["kql"]
        assert document["links"]["Entra sign-in logs"].startswith("https://entra.microsoft.com/")
    assert prefers_json("application/json")
    assert prefers_json(BROWSER_ACCEPT, "json")
    assert not prefers_json(BROWSER_ACCEPT)
    assert not prefers_json(None)
    assert not prefers_json("*/*")
    assert prefers_json("application/json, text/html;q=0.5")
    assert not prefers_json("text/html, application/json;q=0.5")


@pytest.mark.parametrize(
    "pasted",
    [CID, CID.upper(), "{" + CID + "}", "{" + CID.upper() + "}", f"  {CID}  ", f" {{ {CID} }} ", f"\t{CID}\n"],
)
def test_the_forms_users_paste_find_the_signin(pasted: str) -> None:
    assert normalise_correlation_id(pasted) == CID
    response = lookup(pasted, accept="application/json")
    assert response.status_code == 200
    assert orjson.loads(response.get_body())["correlation_id"] == CID


@given(st.uuids(), st.sampled_from(["{}", "  ", "UPPER", ""]))
def test_normalising_a_pasted_guid_is_idempotent_and_valid(guid: Any, form: str) -> None:
    text = str(guid).upper() if form == "UPPER" else str(guid)
    pasted = f"{{{text}}}" if form == "{}" else f"  {text}  " if form == "  " else text
    once = normalise_correlation_id(pasted)
    assert once == str(guid)
    assert normalise_correlation_id(once) == once and valid_correlation_id(once)


@given(st.text(max_size=60))
def test_normalising_never_lets_an_operator_through(text: str) -> None:
    once = normalise_correlation_id(text)
    assert normalise_correlation_id(once) == once
    if valid_correlation_id(once):
        assert not set(once) & set("'\"{} /#?%")


def test_hostile_log_values_are_escaped_in_the_page() -> None:
    details = fed(
        [record(correlation_id=CID, status="unbound", code=1002, app=HOSTILE, user=HOSTILE, resource=HOSTILE,
                policies=[policy(HOSTILE, result="failure", not_satisfied=["SignInTokenProtection"])])]
    )  # fmt: skip
    page = lookup(CID, details=details).get_body().decode()
    assert "<script>" not in page
    assert html.escape(HOSTILE, quote=True) in page
    assert page.count("<script") == 0 and "onerror" not in page


def test_render_escapes_every_field_of_the_body() -> None:
    detail = {
        "correlation_id": HOSTILE, "verdict": HOSTILE, "enforcement": HOSTILE, "user": HOSTILE, "apps": [HOSTILE],
        "codes": [{"code": HOSTILE, "meaning": HOSTILE, "fix": HOSTILE}], "kql": HOSTILE, "device_os": HOSTILE,
        "request_details": [{k: HOSTILE for k in ("time", "app", "resource", "binding", "code", "meaning", "fix",
                                                   "os", "trust_type", "device_id", "client_app", "browser")}
                            | {"policies": [{"name": HOSTILE, "result": HOSTILE, "not_satisfied": True}]}],
    }  # fmt: skip
    page = render(detail)
    assert "<script>" not in page and "'x'" not in page
    assert re.findall(r"<[a-z]+[^>]*\son[a-z]+=", page) == []


# --- who may see it ---


def principal(**claims: Any) -> str:
    return principal_header(**claims)


def test_without_app_service_authentication_the_lookup_is_closed_even_with_a_forged_header() -> None:
    """Outside App Service Authentication anyone can send X-MS-CLIENT-PRINCIPAL: it must not be trusted."""
    response = lookup(CID, access=LookupAccess(auth_enabled=False, role=ROLE))
    assert response.status_code == 403
    assert "App Service Authentication" in response.get_body().decode()


def test_without_a_role_or_group_setting_the_lookup_is_closed() -> None:
    assert lookup(CID, access=LookupAccess(auth_enabled=True)).status_code == 403


def test_no_principal_means_sign_in_first() -> None:
    response = lookup(CID, principal="")
    assert response.status_code == 401
    assert "sign in" in response.get_body().decode().lower()
    assert lookup(CID, principal="not base64!").status_code == 401
    assert lookup(CID, principal=base64.b64encode(b"[1,2]").decode()).status_code == 401


def test_a_principal_without_the_role_or_group_is_refused_and_nothing_is_read() -> None:
    class Untouchable:
        def get_signin_detail(self, correlation_id: str) -> None:
            raise AssertionError("the store must not be read for a refused caller")

    response = lookup(CID, principal=principal(roles=("Other.Role",)), details=Untouchable())
    assert response.status_code == 403
    page = response.get_body().decode()
    assert "ann@contoso.com" not in page


def test_the_group_setting_admits_members_of_that_group() -> None:
    access = LookupAccess(auth_enabled=True, group=GROUP.upper())
    assert lookup(CID, principal=principal(roles=(), groups=(GROUP,)), access=access).status_code == 200
    assert lookup(CID, principal=principal(roles=(ROLE,)), access=access).status_code == 403


def test_the_role_claim_can_come_under_the_long_claim_type() -> None:
    document = {
        "auth_typ": "aad",
        "claims": [{"typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role", "val": ROLE}],
        "name_typ": "name",
        "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
    }
    header = base64.b64encode(orjson.dumps(document)).decode()
    parsed = read_principal(header)
    assert parsed is not None and ROLE in parsed.roles
    assert check(LookupAccess(True, role=ROLE), header) is None


@given(st.binary(max_size=300))
def test_any_header_bytes_are_refused_or_parsed_never_raise(raw: bytes) -> None:
    header = base64.b64encode(raw).decode()
    refusal = check(LookupAccess(True, role=ROLE), header)
    assert refusal is not None and refusal.status in (401, 403)
