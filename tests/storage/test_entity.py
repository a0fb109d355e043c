"""The entity helper measures what the service measures: UTF-16 units per property, not Python characters."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shared.core.text import utf16_units
from shared.storage.entity import TEXT_CHUNK, pack_text, split_text, unpack_text


def test_emoji_are_two_units_each() -> None:
    text = "😀" * 20_000  # 20,000 characters, 40,000 UTF-16 units: more than one property holds
    packed = pack_text(text)
    assert packed["n"] == 2
    assert all(utf16_units(packed[f"d{i}"]) <= TEXT_CHUNK for i in range(packed["n"]))
    assert unpack_text(packed) == text


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=3000), st.integers(2, 700))
def test_pieces_fit_and_join_back(text: str, units: int) -> None:
    parts = split_text(text, units)
    assert "".join(parts) == text
    assert all(utf16_units(part) <= units for part in parts)
    assert all(part for part in parts) or text == ""


def test_a_piece_of_two_units_never_comes_out_empty() -> None:
    """Found by the property above: two characters above U+FFFF at a piece's start once made an empty piece
    forever (and memory grew until the run was killed)."""
    assert split_text("😀😀a", 2) == ["😀", "😀", "a"]


def test_a_piece_of_astral_characters_is_never_emptied() -> None:
    """Cutting a piece of emoji by its whole excess emptied it, and the split looped forever (seen with units=3)."""
    assert split_text("😀" * 10, 3) == ["😀"] * 10
    assert split_text("😀" * 9 + "a", 5) == ["😀😀", "😀😀", "😀😀", "😀😀", "😀a"]
