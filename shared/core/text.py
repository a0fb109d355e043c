"""Text from the logs, made safe to keep: lone surrogates replaced, every field capped, sizes in UTF-16 units.

Log fields are outside input. A lone UTF-16 surrogate (valid in JSON escapes, not in
UTF-8) cannot be encoded for storage or logs; a 40,000-character user name or a
field of emoji outgrows what Azure Table Storage holds in a property (64 KiB of
UTF-16, so 32,768 units; an emoji is two). So every text field is cleaned once,
where a request is judged, and nothing downstream has to be defensive about it.
"""

from __future__ import annotations

import hashlib
import re

MAX_TEXT = 1024  # characters kept of any name (user, app, resource, device, client, policy)
MAX_ID = 128  # an id longer than this is replaced by a hash of it (ids are keys: they must stay unique)
REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def clean(value: str, limit: int = MAX_TEXT) -> str:
    """Stripped, without lone surrogates, at most `limit` characters."""
    text = value.strip()
    if len(text) > limit:
        text = text[:limit]
    if not text.isascii():
        text = _SURROGATE.sub(REPLACEMENT, text)
    return text


def clean_id(value: str) -> str:
    """An id as a key: cleaned, and hashed when it is longer than any real one, so it stays unique and small."""
    text = value.strip()
    if not text.isascii():
        text = _SURROGATE.sub(REPLACEMENT, text)
    if len(text) > MAX_ID:
        return "~" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]
    return text


def utf16_units(text: str) -> int:
    """The length the storage service counts: UTF-16 code units (characters above U+FFFF take two)."""
    if text.isascii():
        return len(text)
    return len(text) + len(_ASTRAL.findall(text))
