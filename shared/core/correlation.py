"""The correlation ID: what ties the requests of one sign-in together, and what people look a sign-in up by.

An ID that arrives from outside (a URL, a pasted error page) is first put in the
form Entra writes (`normalise_correlation_id`: surrounding spaces and braces off,
a GUID in lower case), then checked against a strict pattern before anything is
built from it, so no quote, space, slash, '#', '?' or '%' can reach an OData
filter or a Table key.
"""

from __future__ import annotations

import re

# GUIDs and the other ids Entra writes: letters, digits, '.', '_' and '-', at most 128.
_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_PASTED_GUID = re.compile(r"\{?\s*([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})\s*\}?")
ID_RULE = "a GUID (braces, spaces and case are forgiven) or 1-128 characters of A-Z, a-z, 0-9, '.', '_' and '-'"


def normalise_correlation_id(value: object) -> object:
    """The id as Entra writes it, from the forms people paste: ' {6F1C...} ' -> '6f1c...'.

    Entra's error page (AADSTS530084) and the portal show correlation IDs as GUIDs; helpdesk
    copies them with braces, surrounding spaces or in upper case. Only those are forgiven: a
    GUID is lower-cased (Entra writes them so, and Table keys are case-sensitive); any other id
    keeps its case (only surrounding spaces go). Idempotent. Anything that is not text is returned
    as it is, for the validator to refuse.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    pasted = _PASTED_GUID.fullmatch(text)
    return pasted.group(1).lower() if pasted else text


def valid_correlation_id(value: object) -> bool:
    """True only for a GUID-like id; anything else is refused before a store query is built."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None
