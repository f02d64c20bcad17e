"""Text values to raw ids: the reserved missing id, stable string hashes, bags of tokens."""

from __future__ import annotations

__all__ = ["MISSING_ID"]

MISSING_ID = -1  # raw id of an empty / missing categorical value in every source
