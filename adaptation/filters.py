"""Pseudo-label filters: which of a model's own readings of unlabelled crops to train on.

Each filter is a small pure function of one :class:`Reading`; :func:`rejection` applies them in
order and names the first that fails, so a round can say why crops were left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from data.formats import plate_regex
from data.text import COUNTRIES


@dataclass(frozen=True)
class Reading:
    """A model's reading of one crop: the pseudo-label candidate."""

    filename: str
    text: str
    confidence: float
    country: str | None = None  # the country head's prediction (None: no head)
    rows: int | None = None
    other_texts: tuple[str, ...] = ()  # the same crop read in the other views (or by other models)


# Why a reading is left out, in the order the filters run (the keys of a round's log).
REASONS = {
    "low_confidence": "confidence below --min-confidence",
    "not_a_plate_format": "not a plate of the country's formats",
    "views_disagree": "the views read different texts",
}


def confident(r: Reading, min_confidence: float) -> bool:
    return bool(r.text) and r.confidence >= min_confidence


def plate_country(r: Reading, country: str) -> str | None:
    """The country whose grammar the reading must follow: ``country``, or with ``auto`` the
    predicted one (None where the head predicts none, or a group such as ``EU``)."""
    c = r.country if country == "auto" else country
    return c if c in COUNTRIES else None


def fits_format(r: Reading, country: str) -> bool:
    """Whether the text is a plate of the given (or, with ``auto``, the predicted) country."""
    c = plate_country(r, country)
    return c is not None and plate_regex(c).fullmatch(r.text) is not None


def views_agree(r: Reading) -> bool:
    return all(t == r.text for t in r.other_texts)


def rejection(r: Reading, *, min_confidence: float, country: str) -> str | None:
    """The first filter ``r`` fails (a key of :data:`REASONS`), or None: a pseudo-label to keep."""
    if not confident(r, min_confidence):
        return "low_confidence"
    if not fits_format(r, country):
        return "not_a_plate_format"
    if not views_agree(r):
        return "views_disagree"
    return None
