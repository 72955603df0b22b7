"""Compose a plate image from cached glyph masks with numpy and cv2 (no per-plate PIL text).

``PlateRenderer.render`` takes a raw text (with the markers of ``countries.py``: ``~`` emblem,
``#`` right box, ``|`` row break) and a ``Style`` and returns an RGB uint8 image: the plate,
its border, and a 0-3 px margin of "car" colour. Sizes are in pixels of the output; the
decorations that do not depend on the text (bands, flags, shields, captions) are drawn once
per size into a tile cache.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from data.formats import BOX, EMBLEM, ROW_BREAK
from data.synth.countries import (
    AT_RED, BLACK, BR_BLUE, CAR_COLOURS, EU_BLUE, EU_YELLOW, RGB, US_FG, WHITE, CountryLook, Style,
)
from data.synth import effects as fxm
from data.synth.effects import SynthEffects
from data.synth.fonts import (
    BAR_ONE, BOX_BOWLS, CV_FONTS, FORMS, MID_DOT, MONO_FONTS, STROKE_FONTS, WEIGHTS, FontGlyphs, all_fonts, fonts_for,
    glyphs_for,
)
from data.synth.strokefont import FORM_SETS
from data.synth.textgen import UniformStream

_SEAL_COLOURS: tuple[RGB, ...] = (
    (214, 120, 40), (40, 120, 200), (230, 200, 60), (120, 170, 80), (200, 110, 150), (140, 90, 60),
)
_CANTON_COLOURS: tuple[RGB, ...] = (
    (210, 20, 30), (250, 250, 250), (20, 60, 160), (20, 20, 20), (250, 200, 0), (0, 130, 60),
)
US_STATES = (
    "CALIFORNIA", "TEXAS", "FLORIDA", "NEW YORK", "OHIO", "ILLINOIS", "GEORGIA", "MICHIGAN",
    "ARIZONA", "OREGON", "NEVADA", "COLORADO", "VIRGINIA", "WASHINGTON", "INDIANA", "UTAH",
    "KANSAS", "IOWA", "MAINE", "ALABAMA", "KENTUCKY", "MONTANA", "NEW JERSEY", "VERMONT",
)
BR_CITIES = (
    "SP - SAO PAULO", "RJ - RIO DE JANEIRO", "MG - BELO HORIZONTE", "PR - CURITIBA", "RS - PORTO ALEGRE",
    "BA - SALVADOR", "SP - CAMPINAS", "SC - FLORIANOPOLIS", "DF - BRASILIA", "GO - GOIANIA",
)
_TILE_FONT = "dejavu_bold"
_GLYPH_CACHE_MAX = 30000
_TILE_CACHE_MAX = 6000
_RAMP = np.arange(256, dtype=np.float32)[:, None] / 255.0


def _jitter(c: RGB, u: UniformStream, amount: float) -> RGB:
    return tuple(min(255, max(0, int(v + (2.0 * u() - 1.0) * amount))) for v in c)  # type: ignore[return-value]


def _rect(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, colour: RGB) -> None:
    """Fill [x0, x1) x [y0, y1) (cv2 fills ~10x faster than a numpy broadcast of a colour)."""
    if x1 > x0 and y1 > y0:
        cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), colour, -1)


def _fill(img: np.ndarray, colour: RGB) -> None:
    """Fill all of ``img`` with ``colour`` (``img[:] = colour`` broadcasts ~15x slower)."""
    cv2.rectangle(img, (0, 0), (img.shape[1] - 1, img.shape[0] - 1), colour, -1)


def _fill_round_rect(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, r: int, colour: RGB) -> None:
    """Filled rectangle [x0, x1) x [y0, y1) with corners of radius r."""
    r = min(r, (x1 - x0) // 2, (y1 - y0) // 2)
    if r <= 1:
        _rect(img, x0, y0, x1, y1, colour)
        return
    _rect(img, x0, y0 + r, x1, y1 - r, colour)
    _rect(img, x0 + r, y0, x1 - r, y0 + r, colour)
    _rect(img, x0 + r, y1 - r, x1 - r, y1, colour)
    for cx, cy in ((x0 + r, y0 + r), (x1 - 1 - r, y0 + r), (x0 + r, y1 - 1 - r), (x1 - 1 - r, y1 - 1 - r)):
        cv2.circle(img, (cx, cy), r, colour, -1, cv2.LINE_AA)


def _shield_poly(x: float, y: float, w: float, h: float) -> np.ndarray:
    return np.array(
        [(x, y), (x + w, y), (x + w, y + 0.62 * h), (x + w / 2, y + h), (x, y + 0.62 * h)], np.float64
    )


def _blend(img: np.ndarray, x: int, y: int, rgb: np.ndarray, alpha: np.ndarray | None) -> None:
    """Paste ``rgb`` (h, w, 3) at (x, y), through ``alpha`` (h, w, 1 float32) when given; clipped."""
    h, w = rgb.shape[:2]
    H, W = img.shape[:2]
    xa, ya, xb, yb = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if xa >= xb or ya >= yb:
        return
    src = rgb[ya - y : yb - y, xa - x : xb - x]
    if alpha is None:
        img[ya:yb, xa:xb] = src
        return
    a = np.ascontiguousarray(alpha[ya - y : yb - y, xa - x : xb - x, 0])
    dst = img[ya:yb, xa:xb]
    dst[:] = cv2.blendLinear(np.ascontiguousarray(dst), np.ascontiguousarray(src), 1.0 - a, a)


# The glyph and tile caches, one per process: a generator made anew (each epoch's stream, a
# loader worker forked from a process that rendered) starts with them warm. What they hold
# depends on its key only, so a warm cache changes no pixel. Not thread-safe.
_FONTS: dict[str, FontGlyphs] = {}
_GLYPHS: dict[tuple, np.ndarray] = {}
_TILES: dict[tuple, tuple[np.ndarray, np.ndarray | None]] = {}


class PlateRenderer:
    """Draws plates, from the process's glyph and tile caches (not thread-safe)."""

    def __init__(self) -> None:
        self._fonts = _FONTS
        self._glyphs = _GLYPHS
        self._tiles = _TILES

    # Caches are not pickled (PIL fonts need not be picklable; a copy uses its process's).
    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    # --- caches ------------------------------------------------------------------------------
    def font(self, key: str) -> FontGlyphs:
        f = self._fonts.get(key)
        if f is None:
            f = self._fonts[key] = glyphs_for(key)
        return f

    def _scaled(self, f: FontGlyphs, ch: str, gw: int, gh: int) -> np.ndarray:
        key = (f.key, ch, gw, gh)
        m = self._glyphs.get(key)
        if m is None:
            g = f.glyph(ch)
            interp = cv2.INTER_AREA if gh <= g.shape[0] else cv2.INTER_LINEAR
            m = cv2.resize(g, (gw, gh), interpolation=interp)
            if len(self._glyphs) >= _GLYPH_CACHE_MAX:
                self._glyphs.clear()
            self._glyphs[key] = m
        return m

    def _tile(self, key: tuple, build) -> tuple[np.ndarray, np.ndarray | None]:
        t = self._tiles.get(key)
        if t is None:
            t = build()
            if len(self._tiles) >= _TILE_CACHE_MAX:
                self._tiles.clear()
            self._tiles[key] = t
        return t

    # --- text --------------------------------------------------------------------------------
    def text_into(
        self, alpha: np.ndarray, f: FontGlyphs, text: str, hc: float, x0: float, x1: float, yc: float,
        sx: float = 1.0, tracking: float = 0.1, space: float = 0.4, mono: bool = False, align: float = 0.5,
        min_sx: float = 0.6, vary: tuple[fxm.Spacing, UniformStream] | None = None,
        mix: Callable[[], FontGlyphs] | None = None, fit: bool = False,
    ) -> tuple[list[tuple[float, float]], tuple[int, int, int, int]]:
        """Draw ``text`` (cap height ``hc`` px) into ``alpha``, centred on ``yc`` within [x0, x1].

        ``sx`` is the preferred horizontal scale, reduced so the row fits; ``tracking`` and
        ``space`` are in units of ``hc``; ``align`` places the row in the free width (0.5: centre).
        A row that would need a scale under ``min_sx`` is drawn smaller instead. ``vary`` (the
        ``spacing`` effect's draws and the stream) varies each gap, each character's size and
        its baseline; the row then reaches up to ``Spacing.vertical_room`` x ``hc`` further up and down.
        ``mix`` (the ``mixed_fonts`` effect) gives each character's font in turn; each is drawn at the
        row's cap height (every font's frame puts its caps in the same rows), ``f`` sets the layout.
        ``mono`` gives every character at least a digit's cell; with ``fit`` (the ``fixed_pitch``
        effect) exactly that cell, glyphs wider than it (W, M) squeezed into it.
        Returns the emblem gaps (x, width) and the bounding box (x0, y0, x1, y1) drawn into.
        """
        s = hc / f.cap
        gh = max(1, int(round(f.frame_h * s)))
        track = tracking * hc
        cell = f.cell_w * s if mono else 0.0
        items: list[tuple[str, np.ndarray | None, float]] = []
        faces: list[FontGlyphs] = []  # each character's font
        total = 0.0
        for c in text:
            face = f
            if c == " ":
                w = space * hc
                g = None
            elif c == EMBLEM:
                w = 0.62 * hc
                g = None
            else:
                if mix is not None and c.isalnum():
                    face = mix()
                g = face.glyph(c)
                w = g.shape[1] * s * f.cap / face.cap
                if cell and c.isalnum():
                    w = cell if fit else max(w, cell)
            items.append((c, g, w))
            faces.append(face)
        n = len(items)
        sizes, lifts, gaps = [1.0] * n, [0.0] * n, [1.0] * n  # per character: size, baseline lift, gap after
        if vary is not None:
            spc, u = vary
            for i in range(n):
                sizes[i] = 1.0 + spc.size_spread * u.uniform(-0.5, 0.5)
                lifts[i] = spc.baseline_spread * u.uniform(-1.0, 1.0)
                gaps[i] = 1.0 + spc.gap_spread * u.uniform(-1.0, 1.0)
            items = [(c, g, w * k) for (c, g, w), k in zip(items, sizes)]
        for _, _, w in items:
            total += w
        total += track * (sum(gaps[:-1]) if vary is not None else n - 1)
        avail = x1 - x0
        if total * sx > avail:
            sx = avail / total
            if sx < min_sx:  # squeezing further distorts the font: make the row smaller instead
                shrink = sx / min_sx
                sx = min_sx
                hc *= shrink
                s *= shrink
                track *= shrink
                gh = max(1, int(round(f.frame_h * s)))
                items = [(c, g, w * shrink) for c, g, w in items]
                total *= shrink
        x_start = x0 + (avail - total * sx) * align
        # Lay the row out at its natural width (glyphs scaled by s only, so the glyph cache is
        # keyed by height and hits), then squeeze the whole row by sx with one resize.
        nat_w = int(math.ceil(total)) + 2
        # Rows of room above and below the frame for varied sizes and baselines (none without).
        room = int(math.ceil(vary[0].vertical_room * hc)) + 1 if vary is not None else 0
        bh = gh + 2 * room
        buf = np.zeros((bh, nat_w), np.uint8)
        emblems: list[tuple[float, float]] = []
        x = 1.0
        for i, (c, g, w) in enumerate(items):
            if g is None:
                if c == EMBLEM:
                    emblems.append((x_start + (x - 1.0 + w / 2) * sx, w * sx))
            else:  # this character's own size and baseline (without `vary`: the row's), centred on the row's
                k = sizes[i] * f.cap / faces[i].cap  # its font's frame at the row's cap height
                gw = max(1, int(round(g.shape[1] * s * k)))
                if fit and cell and c.isalnum():
                    gw = min(gw, max(1, int(round(w))))  # squeezed into its cell
                gh_i = max(1, int(round(faces[i].frame_h * s * k)))
                m = self._scaled(faces[i], c, gw, gh_i)
                gx = min(max(int(round(x + (w - gw) / 2)), 0), max(nat_w - gw, 0))
                gy = min(max(int(round(room + (gh - gh_i) / 2 - lifts[i] * hc)), 0), max(bh - gh_i, 0))
                dst = buf[gy : gy + gh_i, gx : gx + gw]
                np.maximum(dst, m[: dst.shape[0], : dst.shape[1]], out=dst)
            x += w + track * gaps[i]
        out_w = max(1, int(round(nat_w * sx)))
        if out_w != nat_w:
            buf = cv2.resize(buf, (out_w, bh), interpolation=cv2.INTER_AREA if out_w < nat_w else cv2.INTER_LINEAR)
        gh = bh
        px = int(round(x_start - sx))
        ytop = int(round(yc - gh / 2.0))
        H, W = alpha.shape
        xa, xb = max(px, 0), min(px + out_w, W)
        ya, yb = max(ytop, 0), min(ytop + gh, H)
        if xa >= xb or ya >= yb:
            return emblems, (W, H, 0, 0)
        dst = alpha[ya:yb, xa:xb]
        np.maximum(dst, buf[ya - ytop : yb - ytop, xa - px : xb - px], out=dst)
        return emblems, (xa, ya, xb, yb)

    def text_mask(self, text: str, hc: float, max_w: float, font: str = _TILE_FONT, sx: float = 1.0) -> np.ndarray:
        """Tight alpha mask of ``text`` (for captions and band letters), at most ``max_w`` wide."""
        f = self.font(font)
        hc = max(hc, 2.0)
        gh = int(round(f.frame_h * hc / f.cap))
        a = np.zeros((gh, int(max_w) + 2), np.uint8)
        _, (x0, y0, x1, y1) = self.text_into(a, f, text, hc, 1, max_w + 1, gh / 2, sx=sx, tracking=0.08,
                                             space=0.35, align=0.0)
        if x1 <= x0:
            return np.zeros((1, 1), np.uint8)
        rows = np.flatnonzero(a[:, x0:x1].max(axis=1))
        return a[rows[0] : rows[-1] + 1, x0:x1] if rows.size else a[:1, x0:x1]

    def _caption(self, text: str, hc: float, max_w: float, colour: RGB, font: str = _TILE_FONT, sx: float = 1.0):
        """A transparent tile of ``text`` in ``colour``."""
        m = self.text_mask(text, hc, max_w, font, sx)
        rgb = np.empty(m.shape + (3,), np.uint8)
        _fill(rgb, colour)
        return rgb, (m.astype(np.float32) / 255.0)[..., None]

    def _put_text(self, rgb: np.ndarray, text: str, hc: float, max_w: float, cx: float, cy: float, colour: RGB,
                  sx: float = 1.0) -> None:
        t, a = self._caption(text, hc, max_w, colour, sx=sx)
        _blend(rgb, int(round(cx - t.shape[1] / 2)), int(round(cy - t.shape[0] / 2)), t, a)

    # --- tiles -------------------------------------------------------------------------------
    def _band(self, kind: str, code: str, bw: int, bh: int):
        """The left band: EU stars (or a flag) above the country letters."""

        def build():
            k = 4
            transparent = kind in ("by", "kz", "ua_old")
            big = np.zeros((bh * k, bw * k, 3), np.uint8)
            _fill(big, WHITE if transparent else EU_BLUE)
            cx, cy = bw * k / 2, min(bw * 0.8, bh * 0.34) * k
            if kind in ("eu", "gb_eu"):
                r = bw * k * 0.3
                for i in range(12):
                    a = i * math.pi / 6
                    p = (int(cx + r * math.cos(a)), int(cy + r * math.sin(a)))
                    cv2.circle(big, p, max(2, int(r * 0.16)), EU_YELLOW, -1, cv2.LINE_AA)
            elif kind != "gb":
                fw, fh = bw * k * 0.72, bw * k * 0.48
                fx, fy = int(cx - fw / 2), int(cy - fh / 2)
                fx1, fy1 = int(cx + fw / 2), int(cy + fh / 2)
                if kind in ("ua", "ua_old"):
                    cv2.rectangle(big, (fx - k, fy - k), (fx1 + k, fy1 + k), WHITE, -1)
                    cv2.rectangle(big, (fx, fy), (fx1, (fy + fy1) // 2), (0, 87, 183), -1)
                    cv2.rectangle(big, (fx, (fy + fy1) // 2), (fx1, fy1), (255, 215, 0), -1)
                elif kind == "no":
                    cv2.rectangle(big, (fx, fy), (fx1, fy1), (186, 12, 47), -1)
                    vx = int(fx + fw * 0.36)
                    cv2.rectangle(big, (vx - int(fh * 0.16), fy), (vx + int(fh * 0.16), fy1), WHITE, -1)
                    cv2.rectangle(big, (fx, int(cy - fh * 0.16)), (fx1, int(cy + fh * 0.16)), WHITE, -1)
                    cv2.rectangle(big, (vx - int(fh * 0.08), fy), (vx + int(fh * 0.08), fy1), (0, 32, 91), -1)
                    cv2.rectangle(big, (fx, int(cy - fh * 0.08)), (fx1, int(cy + fh * 0.08)), (0, 32, 91), -1)
                elif kind == "by":
                    cv2.rectangle(big, (fx, fy), (fx1, int(fy + fh * 2 / 3)), (200, 16, 46), -1)
                    cv2.rectangle(big, (fx, int(fy + fh * 2 / 3)), (fx1, fy1), (0, 122, 61), -1)
                    cv2.rectangle(big, (fx, fy), (int(fx + fw * 0.12), fy1), (230, 230, 230), -1)
                elif kind == "kz":
                    cv2.rectangle(big, (fx, fy), (fx1, fy1), (0, 175, 202), -1)
                    cv2.circle(big, (int(cx), int(cy)), int(fh * 0.22), (254, 197, 0), -1, cv2.LINE_AA)
            tile = cv2.resize(big, (bw, bh), interpolation=cv2.INTER_AREA)
            colour = BLACK if transparent else WHITE
            text_h = bw * (0.42 if len(code) <= 2 else 0.36)
            self._put_text(tile, code, text_h, bw * 0.86, bw / 2, bh - min(bw * 0.72, bh * 0.3), colour)
            if not transparent:
                return tile, None
            alpha = (np.abs(tile.astype(np.int16) - np.array(WHITE, np.int16)).max(axis=2) > 6).astype(np.float32)
            alpha = cv2.GaussianBlur(alpha, (3, 3), 0)[..., None] if min(bw, bh) > 6 else alpha[..., None]
            return tile, alpha

        return self._tile(("band", kind, code, bw, bh), build)

    def _right_band(self, kind: str, text: str, bw: int, bh: int):
        """FR / IT blue band at the right (region logo and department number / year circle)."""

        def build():
            tile = np.empty((bh, bw, 3), np.uint8)
            _fill(tile, EU_BLUE)
            cy = min(bw * 0.7, bh * 0.32)
            if kind == "fr_right":
                lw, lh = bw * 0.62, bw * 0.5
                cv2.rectangle(tile, (int(bw / 2 - lw / 2), int(cy - lh / 2)), (int(bw / 2 + lw / 2), int(cy + lh / 2)),
                              (245, 245, 245), -1)
                cv2.circle(tile, (int(bw / 2), int(cy)), max(1, int(lh * 0.3)), (220, 40, 40), -1, cv2.LINE_AA)
                self._put_text(tile, text, bw * 0.38, bw * 0.84, bw / 2, bh - min(bw * 0.7, bh * 0.3), WHITE)
            else:
                cv2.circle(tile, (int(bw / 2), int(cy)), max(1, int(bw * 0.3)), EU_YELLOW, max(1, bw // 14),
                           cv2.LINE_AA)
                self._put_text(tile, text, bw * 0.26, bw * 0.5, bw / 2, cy, EU_YELLOW)
            return tile, None

        return self._tile(("rband", kind, text, bw, bh), build)

    def _mercosul(self, w: int, h: int):
        def build():
            tile = np.empty((h, w, 3), np.uint8)
            _fill(tile, BR_BLUE)
            self._put_text(tile, "BRASIL", h * 0.5, w * 0.5, w / 2, h / 2, WHITE)
            # Mercosur logo (left): four small stars
            for dx, dy in ((0.04, 0.3), (0.06, 0.62), (0.085, 0.38), (0.07, 0.78)):
                cv2.circle(tile, (int(w * dx) + 1, int(h * dy)), max(1, h // 9), WHITE, -1, cv2.LINE_AA)
            # flag (right)
            fh = max(3, int(h * 0.62))
            fw = int(fh * 1.4)
            fx, fy = w - fw - max(2, int(h * 0.3)), (h - fh) // 2
            cv2.rectangle(tile, (fx, fy), (fx + fw, fy + fh), (0, 151, 57), -1)
            pts = np.array([(fx + fw * 0.1, fy + fh / 2), (fx + fw / 2, fy + fh * 0.1), (fx + fw * 0.9, fy + fh / 2),
                            (fx + fw / 2, fy + fh * 0.9)], np.int32)
            cv2.fillPoly(tile, [pts], (254, 221, 0), cv2.LINE_AA)
            cv2.circle(tile, (fx + fw // 2, fy + fh // 2), max(1, int(fh * 0.22)), (0, 39, 118), -1, cv2.LINE_AA)
            return tile, None

        return self._tile(("mercosul", w, h), build)

    def _ru_flag_tile(self, w: int, h: int):
        def build():
            t, a = self._caption("RUS", h * 0.8, w * 0.55, BLACK)
            fh = max(3, int(h * 0.85))
            fw = max(4, int(fh * 1.5))
            tile = np.empty((h + 2, t.shape[1] + fw + max(2, h // 3), 3), np.uint8)
            _fill(tile, WHITE)
            alpha = np.zeros(tile.shape[:2] + (1,), np.float32)
            _blend(tile, 0, (h + 2 - t.shape[0]) // 2, t, a)
            alpha[(h + 2 - t.shape[0]) // 2 : (h + 2 - t.shape[0]) // 2 + t.shape[0], : t.shape[1]] = a
            fx, fy = tile.shape[1] - fw, (h + 2 - fh) // 2
            for i, col in enumerate(((250, 250, 250), (0, 57, 166), (213, 43, 30))):
                tile[fy + i * fh // 3 : fy + (i + 1) * fh // 3, fx:] = col
            alpha[fy : fy + 3 * (fh // 3), fx:] = 1.0
            cv2.rectangle(tile, (fx, fy), (tile.shape[1] - 1, fy + 3 * (fh // 3) - 1), (120, 120, 120), 1)
            return tile, alpha

        return self._tile(("rus", w, h), build)

    def _emblem_tile(self, kind: str, w: int, h: int):
        """Coats of arms at the '~' gap (AT, HR, SK) and the CH shields: transparent tiles."""

        def build():
            k = 4
            big = np.zeros((h * k, w * k, 3), np.uint8)
            mask = np.zeros((h * k, w * k), np.uint8)
            poly = _shield_poly(0, 0, w * k - 1, h * k - 1).astype(np.int32)
            cv2.fillPoly(mask, [poly], 255)
            if kind == "at":
                _fill(big, AT_RED)
                big[h * k // 3 : 2 * h * k // 3] = WHITE
            elif kind == "hr":
                n = 5
                for i in range(n):
                    for j in range(n):
                        col = (210, 20, 30) if (i + j) % 2 == 0 else (250, 250, 250)
                        big[i * h * k // n : (i + 1) * h * k // n, j * w * k // n : (j + 1) * w * k // n] = col
            elif kind == "sk":
                _fill(big, (220, 30, 40))
                big[int(h * k * 0.72) :] = (20, 70, 170)
                cx = w * k // 2
                big[int(h * k * 0.12) : int(h * k * 0.72), cx - w * k // 14 : cx + w * k // 14] = WHITE
                big[int(h * k * 0.28) : int(h * k * 0.36), int(w * k * 0.28) : int(w * k * 0.72)] = WHITE
                big[int(h * k * 0.46) : int(h * k * 0.54), int(w * k * 0.18) : int(w * k * 0.82)] = WHITE
            elif kind == "ch":
                _fill(big, (218, 41, 28))
                cx, cy = w * k // 2, int(h * k * 0.42)
                a, b = int(w * k * 0.12), int(w * k * 0.34)
                big[cy - b : cy + b, cx - a : cx + a] = WHITE
                big[cy - a : cy + a, cx - b : cx + b] = WHITE
            else:  # canton: "canton<i><j>" two colours split vertically
                c1, c2 = _CANTON_COLOURS[int(kind[-2])], _CANTON_COLOURS[int(kind[-1])]
                _fill(big, c1)
                big[:, w * k // 2 :] = c2
            cv2.polylines(big, [poly], True, (40, 40, 40), max(1, k // 2 + 1), cv2.LINE_AA)
            tile = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
            alpha = cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)[..., None] / 255.0
            return tile, alpha

        return self._tile(("emblem", kind, w, h), build)

    # --- the plate ---------------------------------------------------------------------------
    def render_with_box(self, look: CountryLook, style: Style, raw: str, rows: int, u: UniformStream,
                        fx: SynthEffects | None = None) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """The plate image and its characters' box (x0, y0, x1, y1), which effects drawn later
        (a plate frame) must leave free. ``fx``: realism effects (``None`` draws exactly what it
        always drew)."""
        if fx is not None and fx.separators and "-" in raw and fxm.record("separators", u() < fx.separators):
            raw = raw.replace("-", MID_DOT if u() < 0.6 else " ")
        row_texts = raw.split(ROW_BREAK)
        one = rows == 1
        H = int(u.uniform(32, 64.99)) if one else int(u.uniform(58, 108.99))
        unit = H if one else H * 0.55  # the height of a one-row plate of the same scale
        W = int(round(H * (style.aspect if one else style.aspect2) * u.uniform(0.96, 1.04)))
        bg = _jitter(u.choice(style.bg), u, 7)
        fg = _jitter(u.choice(style.fg), u, 10)
        car = _jitter(u.choice(CAR_COLOURS), u, 14)
        if fx is not None and fx.any_colours and fxm.record("any_colours", u() < fx.any_colours):
            bg, fg = fxm.any_colours(u)

        img = np.empty((H, W, 3), np.uint8)
        _rect(img, 0, 0, W, H, car)
        t = 0 if style.border <= 0 else max(1, int(round(unit * u.uniform(0.022, 0.036) * style.border)))
        r = int(round(unit * u.uniform(0.03, 0.11)))
        rim, inset = fg, 0  # the border's colour (the region box's line too) and its distance from the edge
        if fx is not None and fx.border and fxm.record("border", u() < fx.border):
            t, r, inset, rim = fxm.border(u, unit, fg)
        if inset:  # a rim line inside the plate's edge
            _fill_round_rect(img, 0, 0, W, H, r, bg)
            _fill_round_rect(img, inset, inset, W - inset, H - inset, max(r - inset, 0), rim)
            _fill_round_rect(img, inset + t, inset + t, W - inset - t, H - inset - t, max(r - inset - t, 0), bg)
        elif t:
            _fill_round_rect(img, 0, 0, W, H, r, rim)
            _fill_round_rect(img, t, t, W - t, H - t, max(r - t, 0), bg)
        else:
            _fill_round_rect(img, 0, 0, W, H, r, bg)
        tt = max(inset + t, 1)

        # --- reserved areas ----------------------------------------------------------------
        x0, x1, y0, y1 = tt, W - tt, tt, H - tt
        decor = style.decor
        band = style.band if style.band and (style.band_prob >= 1.0 or u() < style.band_prob) else None
        band_kind = style.band_kind
        if band:
            if band_kind == "gb" and u() < 0.4:
                band, band_kind = "GB", "gb_eu"
            bw = max(6, int(round(unit * (0.36 if band_kind in ("by", "kz", "ua_old") else 0.4))))
            x0 = tt + bw
        if "fr_right" in decor or "it_right" in decor:
            rbw = max(6, int(round(unit * 0.38)))
            x1 = W - tt - rbw
        if "at_stripes" in decor:
            sh = max(2, int(round(unit * 0.085)))
            y0, y1 = tt + sh, H - tt - sh
        top_h = 0
        if "mercosul" in decor:
            top_h = max(5, int(round(unit * 0.24)))
            y0 = tt + top_h
        elif "br_city" in decor:
            top_h = max(4, int(round(unit * 0.17)))
            y0 = tt + top_h
        elif "us_state" in decor:
            top_h = max(5, int(round(unit * 0.21)))
            y0 = tt + top_h
            y1 = H - tt - max(2, int(round(unit * 0.1)))
        shields = "ch_shields" in decor
        if shields and one:
            x0 += int(round(unit * 0.5))
            x1 -= int(round(unit * 0.5))
        pad = max(1, int(round(unit * 0.05)))
        x0 += pad
        x1 -= pad

        # --- text ----------------------------------------------------------------------------
        fkey = u.choice(fonts_for(look.fonts))
        if fx is not None:
            if fx.any_font and fxm.record("any_font", u() < fx.any_font):
                fkey = u.choice(all_fonts())
            if fx.extra_fonts and fxm.record("extra_fonts", u() < fx.extra_fonts):
                fkey = u.choice(tuple(CV_FONTS))
            if fx.stroke_font and fxm.record("stroke_font", u() < fx.stroke_font):
                fkey = u.choice(STROKE_FONTS)
                if u() < 0.4:
                    fkey += BOX_BOWLS
                if look.code == "BR" and u() < 0.5:
                    fkey += BAR_ONE
                if fx.glyph_forms and fxm.record("glyph_forms", u() < fx.glyph_forms):
                    fkey += f"{FORMS}{u.randint(FORM_SETS)}"
            if fx.font_weight and fxm.record("font_weight", u() < fx.font_weight) and fkey not in MONO_FONTS:
                fkey = f"{fkey}/{u.choice(tuple(WEIGHTS))}"
        f = self.font(fkey)
        mix = None  # mixed_fonts: each character in one of a few fonts of the whole set, the plate's among them
        if fx is not None and fx.mixed_fonts and fxm.record("mixed_fonts", u() < fx.mixed_fonts):
            choices = all_fonts() + STROKE_FONTS
            pool = [f] + [self.font(u.choice(choices)) for _ in range(1 + u.randint(3))]
            mix = lambda: pool[u.randint(len(pool))]  # noqa: E731
        mono = f.mono or u() < 0.15
        fit = fx is not None and fx.fixed_pitch > 0 and fxm.record("fixed_pitch", u() < fx.fixed_pitch)
        mono = mono or fit
        sx = u.uniform(0.78, 1.08)
        tracking = u.uniform(0.06, 0.15) if not mono else u.uniform(0.03, 0.08)
        space = u.uniform(0.28, 0.55)
        vary = None  # the spacing effect's draws, with the stream (text_into varies each character)
        if fx is not None:
            if fx.font_stretch and fxm.record("font_stretch", u() < fx.font_stretch):
                sx = math.exp(u.uniform(*(math.log(v) for v in fxm.STRETCH)))
            if fx.spacing and fxm.record("spacing", u() < fx.spacing):
                spc = fxm.spacing(u)
                tracking, space, vary = spc.tracking, spc.space, (spc, u)
        scene = (fx is not None and fx.us_scenes > 0 and "us_state" in decor
                 and fxm.record("us_scenes", u() < fx.us_scenes))
        tab = "us_tab" in decor  # a tab between the groups (a style of the effects' formats only)
        if tab or (scene and u() < 0.6):
            space = u.uniform(0.7, 1.2)  # room for an icon between the groups
        if scene and u() < 0.25:
            x0 += int(round(unit * u.uniform(0.3, 0.5)))  # room for a picture left of the text
        align = u.uniform(0.4, 0.6)
        alpha = np.zeros((H, W), np.uint8)
        boxes: list[tuple[int, int, int, int]] = []
        emblems: list[tuple[float, float, float, float]] = []  # x, width, yc, hc
        box_line: tuple[int, int, int] | None = None  # x, y_top, y_bottom
        rus_at: tuple[int, int, int, int] | None = None  # x0, x1, y, height
        ah = y1 - y0
        if one:
            text_h = style.real_text_h if fx is not None and style.real_text_h else style.text_h
            hc = min(H * u.uniform(*text_h), ah / (1.08 + (2 * vary[0].vertical_room if vary else 0.0)))
            bands = [(y0 + ah / 2 + u.uniform(-0.03, 0.03) * hc, hc)]
        else:
            hc = ah / 2 * u.uniform(0.7, 0.82)
            gap = ah * 0.03
            bands = [(y0 + (ah - gap) / 4, hc), (y1 - (ah - gap) / 4, hc)]
        drawn = None  # lookalikes: the glyph drawn for a character where it is another's
        if fx is not None and fx.lookalikes and fxm.record("lookalikes", u() < fx.lookalikes):
            drawn = fxm.lookalikes(u)
        for i, (row, (yc, rh)) in enumerate(zip(row_texts, bands)):
            if drawn is not None:
                row = row.translate(drawn)
            rx1 = x1
            if BOX in row:
                row, boxed = row.split(BOX)
                box_w = int(round(unit * 1.02)) if one else int(round((W - 2 * tt) * 0.36))
                bx = W - tt - box_w
                rx1 = bx - pad
                ry0 = tt if one else int(round(y0 + ah / 2))
                box_line = (bx, ry0, H - tt)
                if style.box == "ru":
                    span = H - tt - ry0
                    byc, bhc = ry0 + span * 0.37, min(rh * 0.8, span * 0.5)
                    rus_at = (bx + tt, W - tt, int(ry0 + span * 0.8), max(3, int(span * 0.15)))
                else:
                    byc, bhc = yc, rh * 0.92
                _, b = self.text_into(alpha, f, boxed, bhc, bx + tt + pad, W - tt - pad, byc, sx, tracking, space,
                                      mono, vary=vary, mix=mix, fit=fit)
                boxes.append(b)
            em, b = self.text_into(alpha, f, row.rstrip(" "), rh, x0, rx1, yc, sx, tracking, space, mono, align,
                                   vary=vary, mix=mix, fit=fit)
            boxes.append(b)
            emblems.extend((x, w, yc, rh) for x, w in em)

        bx0 = min(b[0] for b in boxes)
        by0 = min(b[1] for b in boxes)
        bx1 = max(b[2] for b in boxes)
        by1 = max(b[3] for b in boxes)
        if fx is not None and fx.glyph_warp and bx0 < bx1 and fxm.record("glyph_warp", u() < fx.glyph_warp):
            bx0, by0, bx1, by1 = fxm.glyph_warp(alpha, (bx0, by0, bx1, by1), hc, u)
        if bx0 < bx1 and by0 < by1:
            bg_a, fg_a = np.array(bg, np.float32), np.array(fg, np.float32)
            lut = (bg_a + (fg_a - bg_a) * _RAMP + 0.5).astype(np.uint8).reshape(256, 1, 3)
            a = alpha[by0:by1, bx0:bx1]
            img[by0:by1, bx0:bx1] = cv2.LUT(cv2.merge((a, a, a)), lut)

        # --- decorations ---------------------------------------------------------------------
        if band:
            tile, ta = self._band(band_kind, band, bw, H - 2 * tt)
            if ta is None:
                img[tt : H - tt, tt : tt + bw] = tile
            else:
                _blend(img, tt, tt, tile, ta)
        if "fr_right" in decor:
            dep = u.choice(("75", "13", "69", "33", "59", "31", "67", "06", "44", "35", "92", "93", "2A", "974"))
            tile, _ = self._right_band("fr_right", dep, rbw, H - 2 * tt)
            img[tt : H - tt, W - tt - rbw : W - tt] = tile
        elif "it_right" in decor:
            tile, _ = self._right_band("it_right", f"{u.randint(25):02d}", rbw, H - 2 * tt)
            img[tt : H - tt, W - tt - rbw : W - tt] = tile
        if "at_stripes" in decor:
            _rect(img, tt, tt, W - tt, tt + sh, AT_RED)
            _rect(img, tt, H - tt - sh, W - tt, H - tt, AT_RED)
            if band:
                img[tt : H - tt, tt : tt + bw] = tile
        if "mercosul" in decor:
            tile, _ = self._mercosul(W - 2 * tt, top_h)
            img[tt : tt + top_h, tt : W - tt] = tile
        elif "br_city" in decor:
            ci = u.randint(len(BR_CITIES))
            wq = W // 8  # tiles depend on their key only (same pixels whatever the cache held)
            cap_col = style.fg[0]
            t_, a_ = self._tile(("city", ci, top_h, wq, cap_col),
                                lambda: self._caption(BR_CITIES[ci], top_h * 0.62, wq * 8 * 0.62, cap_col))
            _blend(img, (W - t_.shape[1]) // 2, tt + max(1, (top_h - t_.shape[0]) // 2 + 1), t_, a_)
        elif "us_state" in decor:
            si, ci = u.randint(len(US_STATES)), u.randint(len(US_FG))
            wq = W // 8
            t_, a_ = self._tile(("state", si, ci, top_h, wq),
                                lambda: self._caption(US_STATES[si], top_h * 0.7, wq * 8 * 0.6, US_FG[ci],
                                                      font="fjalla" if si % 2 else _TILE_FONT))
            _blend(img, (W - t_.shape[1]) // 2, tt + max(1, (top_h - t_.shape[0]) // 2 + 1), t_, a_)
        if box_line is not None:
            x, ya, yb = box_line
            lt = max(t, 1)  # the border's line (tt without the border effect)
            _rect(img, x, ya, x + lt, yb, rim)
            if not one:  # the region box of a two-row plate is closed at the top
                _rect(img, x, ya, W - tt, ya + lt, rim)
        if rus_at is not None:
            rx0, rx1_, ry, rh_ = rus_at
            t_, a_ = self._ru_flag_tile(max(8, rx1_ - rx0), rh_)
            _blend(img, (rx0 + rx1_ - t_.shape[1]) // 2, ry - t_.shape[0] // 2, t_, a_)
        for x, w, yc, rh in emblems:
            self._emblem(img, style.emblem, x, w, yc, rh, u)
        if shields:
            sh_h = int(round(unit * 0.5)) if one else int(round(ah / 2 * 0.62))
            sh_w = max(4, int(round(sh_h * 0.8)))
            syc = H / 2 if one else bands[0][0]
            left = tt + pad + int(unit * 0.06) if one else int(W * 0.13)
            right = W - tt - pad - int(unit * 0.06) - sh_w if one else int(W * 0.87) - sh_w
            ci, cj = u.randint(6), u.randint(6)
            t_, a_ = self._emblem_tile("ch", sh_w, sh_h)
            _blend(img, left, int(syc - sh_h / 2), t_, a_)
            t_, a_ = self._emblem_tile(f"canton{ci}{cj if cj != ci else (ci + 1) % 6}", sh_w, sh_h)
            _blend(img, right, int(syc - sh_h / 2), t_, a_)
        if fx is not None and fx.any:
            self._plate_effects(img, alpha, fx, u, tt, top_h, (bx0, by0, bx1, by1), hc, scene, tab, look.code)
        return img, (bx0, by0, bx1, by1)

    def _plate_effects(self, img: np.ndarray, alpha: np.ndarray, fx: SynthEffects, u: UniformStream, tt: int,
                       top_h: int, text_box: tuple[int, int, int, int], hc: float, scene: bool = False,
                       tab: bool = False, country: str | None = None) -> None:
        """Surface and clutter effects (``data.synth.effects``), outside the characters' box; the
        small lines suit ``country`` (``effects.captions_for``)."""
        H, W = img.shape[:2]
        _, by0, _, by1 = text_box
        if scene:
            fxm.us_scene(img, alpha, u, tt + top_h, H - tt, tt, W - tt, text_box, hc, icon=not tab)
            if u() < 0.4:
                fxm.stacked_characters(img, u, tt, W - tt, text_box, hc, self.put_caption)
        if tab:
            fxm.gap_icon(img, alpha, u, text_box, hc, kind=fxm.TAB)
        if fx.gradient and fxm.record("gradient", u() < fx.gradient):
            fxm.gradient(img, alpha, u)
        if fx.pattern and fxm.record("pattern", u() < fx.pattern):
            fxm.pattern(img, alpha, hc, u)
        if fx.emboss and fxm.record("emboss", u() < fx.emboss):
            fxm.emboss(img, alpha, hc, u)
        top_a, top_b = tt + top_h, by0 - 1  # free strips above and below the characters
        bot_a, bot_b = by1 + 1, H - tt
        if fx.screws and fxm.record("screws", u() < fx.screws):
            if top_h >= 4 and u() < 0.5:  # in the caption strip (Brazilian and US plates)
                fxm.screws(img, tt + top_h / 2, top_h, u)
            elif top_b - top_a >= 3:
                fxm.screws(img, (top_a + top_b) / 2, top_b - top_a, u)
            if bot_b - bot_a >= 3 and u() < 0.5:
                fxm.screws(img, (bot_a + bot_b) / 2, bot_b - bot_a, u)
        if fx.stickers and fxm.record("stickers", u() < fx.stickers):
            side = int(W * u.uniform(0.12, 0.22))
            left = u() < 0.5
            sa = tt + 1 if scene or top_b - top_a < 4 else top_a  # US: in the caption strip's corners too
            if top_b - sa >= 4:
                xa = tt + 1 if left else W - tt - side
                fxm.sticker(img, xa, xa + side, sa, top_b, u, self.put_caption)
        if fx.small_text and fxm.record("small_text", u() < fx.small_text):
            lines = fxm.captions_for(country)
            ink = u.choice(US_FG) if u() < 0.6 else (int(u() * 90),) * 3
            if bot_b - bot_a >= 4:
                free = bot_b - bot_a
                self.put_caption(img, u.choice(lines), free * u.uniform(0.5, 0.8), W * 0.75, W / 2,
                                  (bot_a + bot_b) / 2, ink)
            if top_h == 0 and top_b - top_a >= 4 and u() < 0.5:
                free = top_b - top_a
                self.put_caption(img, u.choice(lines), free * u.uniform(0.5, 0.8), W * 0.6, W / 2,
                                  (top_a + top_b) / 2, ink)
        if fx.dirt and fxm.record("dirt", u() < fx.dirt):
            fxm.dirt(img, u)
        if fx.glare and fxm.record("glare", u() < fx.glare):
            fxm.glare(img, u)

    def put_caption(self, rgb: np.ndarray, text: str, hc: float, max_w: float, cx: float, cy: float,
                    colour: RGB) -> None:
        """A caption, its tile cached by text and whole-pixel size (slogans repeat)."""
        hc, max_w = max(2, int(round(hc))), int(max_w) // 4 * 4
        colour = tuple(int(c) for c in colour)
        t, a = self._tile(("caption", text, hc, max_w, colour), lambda: self._caption(text, hc, max_w, colour))
        _blend(rgb, int(round(cx - t.shape[1] / 2)), int(round(cy - t.shape[0] / 2)), t, a)

    def _emblem(self, img: np.ndarray, kind: str, x: float, w: float, yc: float, hc: float, u: UniformStream) -> None:
        if kind == "seals":  # DE: inspection sticker above the state seal
            r1 = max(1, int(round(min(w * 0.42, hc * 0.2))))
            cx = int(round(x))
            cv2.circle(img, (cx, int(yc - hc * 0.24)), r1, _SEAL_COLOURS[u.randint(len(_SEAL_COLOURS))], -1,
                       cv2.LINE_AA)
            cy2 = int(yc + hc * 0.22)
            cv2.circle(img, (cx, cy2), r1 + 1, (200, 200, 196), -1, cv2.LINE_AA)
            cv2.circle(img, (cx, cy2), max(1, r1 // 2), (60, 60, 60), -1, cv2.LINE_AA)
            return
        sh_h = max(4, int(round(hc * 0.78)))
        sh_w = max(3, int(round(min(w * 0.8, sh_h * 0.8))))
        tile, a = self._emblem_tile(kind, sh_w, sh_h)
        _blend(img, int(round(x - sh_w / 2)), int(round(yc - sh_h / 2)), tile, a)
