"""The correlation ID: what ties the requests of one sign-in together, and what people look a sign-in up by.

An ID that arrives from outside (a URL, a pasted error page) is checked against a
strict pattern before anything is built from it, so no quote, space, slash, '#',
'?' or '%' can reach an OData filter or a Table key.
"""

from __future__ import annotations

import re

# GUIDs and the other ids Entra writes: letters, digits, '.', '_' and '-', at most 128.
_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
ID_RULE = "a GUID or 1-128 characters of A-Z, a-z, 0-9, '.', '_' and '-'"


def valid_correlation_id(value: object) -> bool:
    """True only for a GUID-like id; anything else is refused before a store query is built."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None
