"""Plate labels: one normalisation function, the charset, and the country codes.

Every label that enters the project (CSV, file name, generator, prediction
under evaluation) goes through :func:`normalize_plate_text`, so that "ab-123",
"AB 123" and the Cyrillic "АВ123" are all the same plate.
"""

from __future__ import annotations

from dataclasses import dataclass

# Cyrillic letters whose printed shape is a Latin letter (the set Russian,
# Ukrainian, Belarusian and Kazakh plates use).
_CYRILLIC_TO_LATIN = {
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H",
    "О": "O", "Р": "P", "С": "C", "Т": "T", "У": "Y", "Х": "X",
}
# Ukrainian І and Belarusian/Ukrainian Ї are also printed as Latin I.
_CYRILLIC_TO_LATIN["І"] = "I"

SEPARATORS = frozenset(" \t\u00a0-\u2010\u2011\u2012\u2013\u2014.\u00b7\u2022\u2027\u30fb")
_TRANSLATION = {ord(k): v for k, v in _CYRILLIC_TO_LATIN.items()}
_TRANSLATION.update({ord(s): None for s in SEPARATORS})

MASK_CHAR = "*"  # a masked (unreadable) character in a label: matches any one character

DEFAULT_CHARSET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# The countries of the synthetic generator, in a fixed order (class indices of
# a country head follow it).
COUNTRIES: tuple[str, ...] = (
    "DE", "FR", "IT", "ES", "PL", "NL", "BE", "AT", "CH", "GB", "CZ", "SK", "HR", "SE",
    "FI", "NO", "LT", "LV", "EE", "RO", "RU", "UA", "BY", "KZ", "US", "BR", "VN",
)
UNKNOWN_COUNTRY = "unknown"  # a label: the plate is known to be from none of COUNTRIES
# No country label (an empty cell, a file-name dataset): the plate is unlabelled, and left
# out of the country loss and the country scores -- not the label "unknown".
NO_COUNTRY = ""
# A dataset may carry any code of two or three letters besides these (ISO 3166
# alpha-2/alpha-3: "EU" for an EU plate of unstated country, "ID" for a country the
# generator does not make), and "unknown". Such plates are scored per country as given;
# a country head, which cannot name them, is not scored on them.


def normalize_plate_text(text: str) -> str:
    """Upper-case, map look-alike Cyrillic letters to Latin, drop separators."""
    return text.upper().translate(_TRANSLATION)


def normalize_country(code: str | None) -> str:
    """Canonical country code: any two or three letters, upper-cased, or "unknown";
    "" and None read as :data:`NO_COUNTRY` (unlabelled).

    Raises ValueError for anything that is not a country code (digits, words, punctuation).
    """
    if code is None or not code.strip():
        return NO_COUNTRY
    code = code.strip()
    if code.lower() == UNKNOWN_COUNTRY:
        return UNKNOWN_COUNTRY
    if len(code) in (2, 3) and code.isascii() and code.isalpha():
        return code.upper()
    raise ValueError(
        f"{code!r} is not a country code: expected two or three letters (e.g. DE, BR, ID), "
        f"'unknown' or an empty cell (no label); the generator's countries are {', '.join(COUNTRIES)}"
    )


@dataclass(frozen=True)
class Charset:
    """The ordered set of characters a model reads. Class indices follow this order."""

    chars: str = DEFAULT_CHARSET

    def __post_init__(self) -> None:
        if not self.chars:
            raise ValueError("charset is empty")
        if len(set(self.chars)) != len(self.chars):
            dup = sorted({c for c in self.chars if self.chars.count(c) > 1})
            raise ValueError(f"charset has repeated characters: {''.join(dup)!r}")
        if MASK_CHAR in self.chars:
            raise ValueError(f"charset may not contain the mask character {MASK_CHAR!r}")
        bad = [c for c in self.chars if normalize_plate_text(c) != c]
        if bad:
            raise ValueError(
                f"charset characters {''.join(bad)!r} change under normalize_plate_text "
                "(lower-case, separators or Cyrillic look-alikes); use their normalised form"
            )

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, ch: str) -> bool:
        return ch in self.chars

    def index(self, ch: str) -> int:
        return self.chars.index(ch)

    def invalid_chars(self, text: str, allow_mask: bool = False) -> str:
        """Characters of ``text`` outside the charset (in order, without repeats)."""
        seen: list[str] = []
        for c in text:
            if c in self.chars or (allow_mask and c == MASK_CHAR):
                continue
            if c not in seen:
                seen.append(c)
        return "".join(seen)

    def check(self, text: str, allow_mask: bool = False) -> None:
        """Raise ValueError if ``text`` is empty or has characters outside the charset."""
        if not text:
            raise ValueError("empty label")
        bad = self.invalid_chars(text, allow_mask)
        if bad:
            hint = " (masked labels are for evaluation only)" if MASK_CHAR in bad else ""
            raise ValueError(f"label {text!r} has characters outside the charset: {bad!r}{hint}")
