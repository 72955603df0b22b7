"""Random plate texts drawn from the countries' formats (``data.formats``), and their rendered rows."""

from __future__ import annotations

import numpy as np

from data.formats import BOX, EMBLEM, ROW_BREAK, CompiledFormat, compiled
from data.synth.countries import LOOKS
from data.text import normalize_plate_text


class UniformStream:
    """Uniform floats in [0, 1) drawn from a numpy Generator in blocks (one numpy call per block).

    Python-level draws from ``np.random.Generator`` cost about a microsecond each; a plate needs
    a few dozen, so they come from a buffer. Deterministic given the generator's state.
    """

    __slots__ = ("rng", "block", "buf", "i")

    def __init__(self, rng: np.random.Generator, block: int = 256):
        self.rng = rng
        self.block = block
        self.buf: list[float] = []
        self.i = 0

    def __call__(self) -> float:
        i = self.i
        if i >= len(self.buf):
            self.buf = self.rng.random(self.block).tolist()
            i = 0
        self.i = i + 1
        return self.buf[i]

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self()

    def randint(self, n: int) -> int:
        """0 .. n-1."""
        return min(int(self() * n), n - 1)

    def choice(self, seq):
        return seq[self.randint(len(seq))]


def render_rows(raw: str, emblem_text: str) -> list[str]:
    """Rendered rows (what a person would write) of a raw text with markers."""
    rows = raw.replace(EMBLEM, emblem_text).replace(BOX, " ").split(ROW_BREAK)
    return [r.strip(" -") for r in rows]


def generate_raw(country: str, u: UniformStream, rows: int = 1) -> tuple[str, CompiledFormat]:
    cf = compiled(country)
    fmt = cf.pick(rows, u)
    return fmt.generate_raw(u), fmt


def generate_text(country: str, rng: np.random.Generator, rows: int = 1) -> tuple[str, list[str]]:
    """A random plate text of ``country``: (label, rendered rows).

    >>> generate_text("FR", np.random.default_rng(0))   # doctest: +SKIP
    ('AB123CD', ['AB-123-CD'])
    """
    if rows not in (1, 2):
        raise ValueError(f"rows must be 1 or 2, got {rows!r}")
    cf = compiled(country)
    raw, fmt = generate_raw(cf.spec.code, UniformStream(rng, block=32), rows)
    row_texts = render_rows(raw, LOOKS[cf.spec.code].styles[fmt.fmt.style].emblem_text)
    return normalize_plate_text("".join(row_texts)), row_texts
