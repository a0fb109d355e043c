"""Who runs a command: the author `python -m shared silence` records when `--author` is not given.

By identity (the storage account reached with Entra ID), the signed-in name from the token the command already
needs for Table Storage; by connection string (Azurite, an account key), the operating system's login name, which
says who typed it on that machine and no more.
"""

from __future__ import annotations

import base64
import getpass
import json
from typing import Any

from shared.settings import Settings
from shared.storage.account import account, credential

STORAGE_SCOPE = "https://storage.azure.com/.default"
NAME_CLAIMS = ("upn", "preferred_username", "unique_name", "email", "appid", "oid")


def signed_in_author(settings: Settings) -> str:
    if account(settings, "table").connection is not None:
        return f"{getpass.getuser()} (local login; pass --author to name yourself)"
    token = credential(settings).get_token(STORAGE_SCOPE).token
    return name_in_token(token) or "an unnamed identity (pass --author)"


def name_in_token(token: str) -> str:
    """The most readable name among a token's claims ("" when it has none). Not a validation: the storage service
    validates the token; this only labels what the holder did."""
    claims = _claims(token)
    return next((str(claims[c]) for c in NAME_CLAIMS if claims.get(c)), "")


def _claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}
