"""Folding of text for accent- and case-insensitive matching of Vietnamese (and any) strings."""

from __future__ import annotations

import unicodedata

# đ/Đ is a letter of its own, not d with a combining mark, so NFD does not strip it.
_EXTRA = str.maketrans({"đ": "d", "Đ": "d", "ð": "d", "ø": "o", "ł": "l", "ß": "ss"})


def fold(text: str) -> str:
    """Lower case, accents removed, `đ` -> `d`: `Nguyễn Văn Đức` -> `nguyen van duc`."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFD", text.translate(_EXTRA))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped).lower()


def nfc(text: str) -> str:
    """Unicode NFC, the form Vietnamese text is stored and compared in."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)
