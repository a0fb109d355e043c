"""Rule kinds, one module each behind one interface (`base.Kind`); `KINDS` is the one list of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import new, ratio, spike, threshold, unusual
from .base import Finding, Kind, Moment, span_text

if TYPE_CHECKING:
    from ..rules import Rule

KINDS: dict[str, Kind] = {kind.name: kind for kind in (threshold.KIND, spike.KIND, ratio.KIND, new.KIND, unusual.KIND)}


def kind_of(rule: Rule) -> Kind:
    return KINDS[rule.kind]


__all__ = ["KINDS", "Finding", "Kind", "Moment", "kind_of", "span_text"]
