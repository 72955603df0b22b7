"""A monoline plate typeface drawn from strokes, in the manner of DIN 1451 and its cousins.

Many real plates (the grey Brazilian plates, most US states, several European countries) are
set in condensed monoline faces: round letters with straight sides (so ``O`` looks close to
``D`` and ``0``), a ``1`` with a flag and no foot, a ``6`` whose top is a hook. No installable
font package has such a face, so the glyphs are defined here as centre lines and drawn with a
round pen; the pen width gives the weight and the x scale the width, without a font file.

Coordinates: the cap height is 100 units, y grows downwards, x starts at 0 on the left.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

Path = list[tuple[float, float]]


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, e: float = 2.0) -> Path:
    """Points on an ellipse from angle a0 to a1 (degrees; 90 points down, as y grows downwards);
    with a squareness ``e`` above 2, on a superellipse: the boxy bowls of some plate faces."""
    out = []
    for a in np.linspace(a0, a1, max(3, int(abs(a1 - a0) / 6) + 1)):
        c, s = math.cos(math.radians(a)), math.sin(math.radians(a))
        k = (abs(c) ** e + abs(s) ** e) ** (-1.0 / e)
        out.append((cx + rx * c * k, cy + ry * s * k))
    return out


def _stadium(w: float, r: float, e: float) -> Path:
    """A closed round letter with straight sides (DIN's O and 0)."""
    return (_arc(w / 2, r, w / 2, r, 180, 360, e) + _arc(w / 2, 100 - r, w / 2, r, 0, 180, e)
            + [(0, r)])


def _flip(paths: list[Path], w: float) -> list[Path]:
    """Rotated by 180 degrees (a 9 from a 6)."""
    return [[(w - x, 100 - y) for x, y in p] for p in paths]


def _six(w: float, e: float, curled: bool = False) -> list[Path]:
    """A 6 (a 9 flipped); ``curled``: the hook comes further round, down the other side (the grey
    Brazilian plates' 6 and 9, close to a 5 and an 8 when blurred)."""
    r = w / 2
    return [[*_arc(r, 28, r, 28, 355 if curled else 315, 180, e), (0, 70)], _arc(r, 70, r, 30, 0, 360, e)]


_W = 56.0  # the width of most letters and digits, in cap-height units
_P = [(0.0, 48.0), (30.0, 48.0)]  # P, R: the bowl's bottom bar


def _glyphs(e: float, curled: bool = False) -> dict[str, tuple[float, list[Path]]]:
    """character -> (advance width, centre-line paths), round strokes at squareness ``e``."""

    def arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float) -> Path:
        return _arc(cx, cy, rx, ry, a0, a1, e)

    return {
        "0": (50, [_stadium(50, 25, e)]),
        "1": (28, [[(2, 20), (28, 0), (28, 100)]]),
        "2": (_W, [[*arc(28, 27, 27, 27, 195, 370), (0, 100), (56, 100)]]),
        "3": (_W, [arc(27, 25, 25, 25, 200, 450), [(22, 50), (28, 50)], arc(28, 73, 28, 27, 270, 520)]),
        "4": (_W, [[(42, 100), (42, 0), (0, 68), (56, 68)]]),
        "5": (_W, [[(52, 0), (6, 0), (3, 47), *arc(28, 70, 28, 30, 215, 520)]]),
        "6": (_W, _six(_W, e, curled)),
        "7": (_W, [[(0, 0), (56, 0), (16, 100)]]),
        "8": (_W, [arc(28, 24, 24, 24, 0, 360), arc(28, 73, 28, 27, 0, 360)]),
        "9": (_W, _flip(_six(_W, e, curled), _W)),
        "A": (58, [[(0, 100), (29, 0), (58, 100)], [(9, 68), (49, 68)]]),
        "B": (_W, [[(0, 48), (28, 48), *arc(28, 24, 24, 24, 90, -90), (0, 0), (0, 100), (30, 100),
                    *arc(30, 74, 26, 26, 90, -90), (28, 48)]]),
        "C": (_W, [[*arc(28, 28, 28, 28, 330, 180), (0, 72), *arc(28, 72, 28, 28, 180, 30)]]),
        "D": (_W, [[(0, 0), (26, 0), *arc(26, 30, 30, 30, 270, 360), (56, 70), *arc(26, 70, 30, 30, 0, 90),
                    (0, 100), (0, 0)]]),
        "E": (50, [[(50, 0), (0, 0), (0, 100), (50, 100)], [(0, 48), (42, 48)]]),
        "F": (48, [[(48, 0), (0, 0), (0, 100)], [(0, 48), (40, 48)]]),
        "G": (_W, [[*arc(28, 28, 28, 28, 330, 180), (0, 72), *arc(28, 72, 28, 28, 180, 0), (56, 52), (30, 52)]]),
        "H": (_W, [[(0, 0), (0, 100)], [(56, 0), (56, 100)], [(0, 48), (56, 48)]]),
        "I": (0, [[(0, 0), (0, 100)]]),
        "J": (48, [[(48, 0), *arc(24, 74, 24, 26, 0, 165)]]),
        "K": (_W, [[(0, 0), (0, 100)], [(54, 0), (0, 62)], [(18, 44), (56, 100)]]),
        "L": (48, [[(0, 0), (0, 100), (48, 100)]]),
        "M": (68, [[(0, 100), (0, 0), (34, 72), (68, 0), (68, 100)]]),
        "N": (_W, [[(0, 100), (0, 0), (56, 100), (56, 0)]]),
        "O": (58, [_stadium(58, 29, e)]),
        "P": (_W, [[(0, 100), (0, 0), (30, 0), *arc(30, 24, 26, 24, -90, 90), *_P[::-1]]]),
        "Q": (58, [_stadium(58, 29, e), [(34, 72), (60, 104)]]),
        "R": (_W, [[(0, 100), (0, 0), (30, 0), *arc(30, 24, 26, 24, -90, 90), *_P[::-1]], [(26, 48), (56, 100)]]),
        "S": (_W, [[*arc(28, 26, 26, 26, 340, 130), *arc(28, 74, 28, 26, 310, 520)]]),
        "T": (_W, [[(0, 0), (56, 0)], [(28, 0), (28, 100)]]),
        "U": (_W, [[(0, 0), (0, 72), *arc(28, 72, 28, 28, 180, 0), (56, 0)]]),
        "V": (_W, [[(0, 0), (28, 100), (56, 0)]]),
        "W": (74, [[(0, 0), (17, 100), (37, 22), (57, 100), (74, 0)]]),
        "X": (_W, [[(0, 0), (56, 100)], [(56, 0), (0, 100)]]),
        "Y": (_W, [[(0, 0), (28, 52), (56, 0)], [(28, 52), (28, 100)]]),
        "Z": (_W, [[(2, 0), (56, 0), (0, 100), (56, 100)]]),
        "-": (30, [[(0, 52), (30, 52)]]),
    }


def _forms(e: float) -> dict[str, list[tuple[float, list[Path]]]]:
    """Other forms of characters, as other typefaces draw them: a 1 as a plain bar or with a foot,
    an open 4, a crossed 7 or Z, a flat-topped 3, straight-tailed 6 and 9, W and M with shallow or
    deep vertices, a G without its bar or with a spur, other Q tails, a J with a top bar, a flat-topped
    A, a serifed I, a K whose arms meet, a U with a stem (the ``glyph_forms`` effect draws them)."""

    def arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float) -> Path:
        return _arc(cx, cy, rx, ry, a0, a1, e)

    six = [[(46, 4), (4, 60)], arc(28, 70, 28, 30, 0, 360)]  # the hook as a straight stroke
    g_bowl = [*arc(28, 28, 28, 28, 330, 180), (0, 72), *arc(28, 72, 28, 28, 180, 0)]
    return {
        "1": [(0, [[(0, 0), (0, 100)]]), (44, [[(4, 22), (24, 0), (24, 100)], [(4, 100), (44, 100)]]),
              (28, [[(0, 36), (28, 0), (28, 100)]])],
        "3": [(_W, [[(4, 0), (52, 0), (22, 42), *arc(28, 72, 28, 28, 260, 520)]])],
        "4": [(_W, [[(30, 0), (0, 70), (56, 70)], [(42, 40), (42, 100)]]),
              (_W, [[(4, 0), (4, 66), (56, 66)], [(42, 30), (42, 100)]])],
        "6": [(_W, six)],
        "7": [(_W, [[(0, 0), (56, 0), (16, 100)], [(14, 52), (46, 52)]]), (_W, [[(0, 0), (56, 0), (30, 50), (26, 100)]])],
        "9": [(_W, _flip(six, _W))],
        "A": [(58, [[(0, 100), (22, 0), (36, 0), (58, 100)], [(9, 68), (49, 68)]])],
        "G": [(_W, [g_bowl + [(56, 52)]]), (_W, [g_bowl + [(56, 52), (30, 52)], [(56, 52), (56, 100)]])],
        "I": [(24, [[(12, 0), (12, 100)], [(0, 0), (24, 0)], [(0, 100), (24, 100)]])],
        "J": [(48, [[(16, 0), (48, 0), *arc(24, 74, 24, 26, 0, 165)]])],
        "K": [(_W, [[(0, 0), (0, 100)], [(54, 0), (0, 58), (56, 100)]])],
        "M": [(68, [[(0, 100), (0, 0), (34, 100), (68, 0), (68, 100)]]),
              (68, [[(0, 100), (0, 0), (34, 46), (68, 0), (68, 100)]]),
              (68, [[(0, 100), (10, 0), (34, 70), (58, 0), (68, 100)]])],
        "Q": [(58, [_stadium(58, 29, e), [(28, 84), (56, 104)]]), (58, [_stadium(58, 29, e), [(40, 88), (62, 100)]])],
        "U": [(_W, [[(0, 0), (0, 72), *arc(28, 72, 28, 28, 180, 0), (56, 0), (56, 100)]])],
        "W": [(74, [[(0, 0), (17, 100), (37, 0), (57, 100), (74, 0)]]),
              (74, [[(0, 0), (17, 100), (37, 50), (57, 100), (74, 0)]]),
              (74, [[(0, 0), (20, 100), (40, 0)], [(34, 0), (54, 100), (74, 0)]])],
        "Z": [(_W, [[(2, 0), (56, 0), (0, 100), (56, 100)], [(12, 50), (44, 50)]])],
    }


FORM_SETS = 16  # the faces of the glyph_forms effect: each draws every character in one of its forms


@lru_cache(maxsize=None)
def glyph_set(squareness: float = 2.0, curled: bool = False, forms: int | None = None
              ) -> dict[str, tuple[float, list[Path]]]:
    """The glyphs with round strokes as ellipses (2.0) or boxier superellipses (e.g. 3.5);
    ``curled``: the 6 and 9 with longer hooks; ``forms`` (0 to ``FORM_SETS`` - 1): face number
    ``forms`` of the alternate forms, each character that has them in one form (the usual one among
    them) drawn by a generator seeded with that number, so a face is the same wherever it is drawn."""
    glyphs = _glyphs(squareness, curled)
    if forms is None:
        return glyphs
    if not 0 <= forms < FORM_SETS:
        raise ValueError(f"glyph forms {forms}: expected 0 to {FORM_SETS - 1}")
    rng = np.random.default_rng(forms)
    for ch, alternates in sorted(_forms(squareness).items()):
        pick = int(rng.integers(len(alternates) + 1))
        if pick and not (curled and ch in "69"):  # the curled 6 and 9 are that face's point
            glyphs[ch] = alternates[pick - 1]
    return glyphs


BOXY = 3.5  # squareness of the boxy variant (the grey Brazilian plates' rounded-rectangle O, 0, D)

# Pen widths (fraction of the cap height) of the weights: "light", "regular", "bold".
STROKE_WEIGHTS: dict[str, float] = {"light": 0.1, "regular": 0.135, "bold": 0.17}


def draw_glyph(ch: str, cap: int, pad: int, pen_frac: float, squareness: float = 2.0,
               curled: bool = False, forms: int | None = None) -> np.ndarray | None:
    """Alpha mask (``cap + 2 * pad`` rows, cropped to the ink) of ``ch``; None if not defined."""
    g = glyph_set(squareness, curled, forms).get(ch)
    if g is None:
        return None
    width, paths = g
    pen = max(2.0, pen_frac * cap)
    k = (cap - pen) / 100.0  # the centre lines span the cap height less one pen width
    ox, oy = pen, pad + pen / 2
    w = int(math.ceil(width * k + 2 * pen)) + 2
    img = np.zeros((cap + 2 * pad, w), np.uint8)
    shift = 4
    thick = max(1, int(round(pen)))
    for p in paths:
        pts = np.array([[(ox + x * k) * (1 << shift), (oy + y * k) * (1 << shift)] for x, y in p], np.int32)
        cv2.polylines(img, [pts], False, 255, thick, cv2.LINE_AA, shift)
    cols = np.flatnonzero(img.max(axis=0) > 24)
    return np.ascontiguousarray(img[:, cols[0] : cols[-1] + 1])
