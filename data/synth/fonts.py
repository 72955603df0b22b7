"""Fonts of the synthetic plates (installed files only) and the glyph mask cache.

Fonts come from matplotlib's bundled DejaVu files, when installed the pip packages
``font_roboto``, ``font_fjallaone`` and ``font_source_sans_pro`` (a missing package is
replaced by DejaVu without error), and the project's own folder ``data/synth/font_files/``
(``PROJECT_FONTS``: about 40 openly licensed plate-like faces, each family's licence beside it,
listed in its README). The countries' font groups (``FONT_GROUPS``) use the first two only, so
the fixed val/test sets render as they did; the whole set is for the ``any_font`` effect
(:func:`all_fonts`).

Each glyph is drawn once per (font, character) with PIL into an 8-bit alpha mask
(``FontGlyphs.glyph``); plates are then composed from these masks with numpy/cv2.

With the ``fonts`` effects of ``data.synth.effects`` a plate may also use one of OpenCV's
built-in faces (``cv_simplex``, ``cv_duplex``: a plain ``1`` and serif-less ``I`` as on many
plates) or a bolder/lighter cut of any font, named ``"<font>/<weight>"``, e.g.
``"cv_simplex/bold"`` or ``"roboto_bold/heavy"``; see :func:`glyphs_for`.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from data.synth.strokefont import BOXY, STROKE_WEIGHTS, draw_glyph, glyph_set

PROJECT = "project"  # FONT_FILES source: the project's own folder, data/synth/font_files/
PROJECT_DIR = Path(__file__).resolve().parent / "font_files"

# The committed fonts: key -> file under PROJECT_DIR (a folder per family, its licence beside it).
PROJECT_FONTS: dict[str, str] = {
    "osp_din": "osp_din/OSP-DIN.ttf",  # DIN 1451
    "roadgeek_c": "roadgeek/RG2014C.ttf",  # US highway signs, series C (condensed)
    "roadgeek_e": "roadgeek/RG2014E.ttf",  # series E (wide)
    "liberation_sans_bold": "liberation/LiberationSans-Bold.ttf",
    "liberation_narrow_bold": "liberation/LiberationSansNarrow-Bold.ttf",
    "liberation_narrow": "liberation/LiberationSansNarrow-Regular.ttf",
    "liberation_mono_bold": "liberation/LiberationMono-Bold.ttf",
    "dejavu_condensed_bold": "dejavu_extra/DejaVuSansCondensed-Bold.ttf",
    "open_sans_cond_bold": "open_sans/OpenSans-CondBold.ttf",
    "pt_sans_narrow_bold": "pt_sans/PTN77F.ttf",
    "pt_sans_narrow": "pt_sans/PTN57F.ttf",
    "pt_mono": "pt_sans/PTM55F.ttf",
    "jetbrains_mono_extrabold": "jetbrains_mono/JetBrainsMono-ExtraBold.ttf",
    "b612_bold": "b612/B612-Bold.otf",
    "b612_mono_bold": "b612/B612Mono-Bold.otf",
    "ocr_b": "ocr_b/OCRB.otf",
    "comfortaa_bold": "comfortaa/Comfortaa-Bold.ttf",  # rounded
    "quicksand_bold": "quicksand/Quicksand-Bold.ttf",  # rounded
    "dosis_extrabold": "dosis/Dosis-ExtraBold.otf",  # rounded, narrow
    "osifont": "osifont/osifont.ttf",  # ISO 3098 engineering lettering
    "jura_bold": "jura/Jura-Bold.otf",
    "play_bold": "play/Play-Bold.ttf",
    "tiresias_sign_bold": "tiresias/tiresias_signfont_bold.ttf",
    "league_mono_narrow": "league_mono/LeagueMono-NarrowSemiBold.otf",
    "national_park_heavy": "national_park/NationalPark-Heavy.otf",
    "league_spartan_bold": "league_spartan/LeagueSpartan-Bold.otf",
    "oswald_medium": "oswald/Oswald-500.ttf",
    "oswald_bold": "oswald/Oswald-700.ttf",
    "league_gothic": "league_gothic/LeagueGothic-400.ttf",
    "archivo_narrow_bold": "archivo_narrow/ArchivoNarrow-700.ttf",
    "barlow_condensed_semibold": "barlow_condensed/BarlowCondensed-600.ttf",
    "barlow_condensed_extrabold": "barlow_condensed/BarlowCondensed-800.ttf",
    "saira_condensed_bold": "saira_condensed/SairaCondensed-700.ttf",
    "share_tech": "share_tech/ShareTech-400.ttf",
    "share_tech_mono": "share_tech_mono/ShareTechMono-400.ttf",
    "roboto_condensed_bold": "roboto_condensed/RobotoCondensed-700.ttf",
    "overpass_extrabold": "overpass/Overpass-800.ttf",
    "titillium_bold": "titillium_web/TitilliumWeb-700.ttf",
    "rajdhani_bold": "rajdhani/Rajdhani-700.ttf",
}

# key -> (source: a package whose files/ folder holds it, "matplotlib", or PROJECT; file name)
FONT_FILES: dict[str, tuple[str, str]] = {
    "dejavu_bold": ("matplotlib", "DejaVuSans-Bold.ttf"),
    "dejavu_mono_bold": ("matplotlib", "DejaVuSansMono-Bold.ttf"),
    "dejavu": ("matplotlib", "DejaVuSans.ttf"),
    "roboto_medium": ("font_roboto", "Roboto-Medium.ttf"),
    "roboto_bold": ("font_roboto", "Roboto-Bold.ttf"),
    "roboto_black": ("font_roboto", "Roboto-Black.ttf"),
    "fjalla": ("font_fjallaone", "FjallaOne-Regular.ttf"),
    "source_semibold": ("font_source_sans_pro", "SourceSansPro-Semibold.ttf"),
    "source_bold": ("font_source_sans_pro", "SourceSansPro-Bold.ttf"),
    "source_black": ("font_source_sans_pro", "SourceSansPro-Black.ttf"),
    **{k: (PROJECT, name) for k, name in PROJECT_FONTS.items()},
}

# Plate-like families. A country lists groups (countries.CountryLook.fonts); a plate draws one font of them.
FONT_GROUPS: dict[str, tuple[str, ...]] = {
    "din": ("dejavu_bold", "roboto_medium", "roboto_bold", "source_semibold", "source_bold", "dejavu"),
    "narrow": ("fjalla", "roboto_bold", "source_bold", "roboto_black"),
    "mono": ("dejavu_mono_bold", "dejavu_bold", "source_black"),
}
FALLBACK_FONT = "dejavu_bold"
MONO_FONTS = frozenset({  # always drawn in equal-width cells
    "dejavu_mono_bold", "liberation_mono_bold", "pt_mono", "jetbrains_mono_extrabold", "b612_mono_bold", "ocr_b",
    "league_mono_narrow", "share_tech_mono",
})

CAP_PX = 72  # cap height of the cached masks; plates scale them down
PAD_FRAC = 0.16  # room above the cap line and below the baseline (overshoot, Q's tail)


def _package_dir(package: str) -> Path | None:
    if package == PROJECT:
        return PROJECT_DIR
    if package == "matplotlib":
        import matplotlib

        return Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    try:
        mod = importlib.import_module(package)
    except ImportError:
        return None
    if getattr(mod, "__file__", None) is None:
        return None
    return Path(mod.__file__).parent / "files"


@lru_cache(maxsize=None)
def font_path(key: str) -> Path | None:
    """The file of font ``key``, or None when its package (or file) is not installed."""
    package, name = FONT_FILES[key]
    folder = _package_dir(package)
    if folder is None:
        return None
    path = folder / name
    return path if path.is_file() else None


@lru_cache(maxsize=None)
def fonts_for(groups: tuple[str, ...]) -> tuple[str, ...]:
    """Installed fonts of the given groups, without repeats; DejaVu Bold if none is installed."""
    keys = [k for g in groups for k in FONT_GROUPS[g]]
    found = tuple(k for k in dict.fromkeys(keys) if font_path(k) is not None)
    return found or (FALLBACK_FONT,)


@lru_cache(maxsize=None)
def all_fonts() -> tuple[str, ...]:
    """Every font a plate can be drawn in with the ``any_font`` effect: each installed font file
    (committed, pip, matplotlib) and OpenCV's faces."""
    return tuple(k for k in FONT_FILES if font_path(k) is not None) + tuple(CV_FONTS)


class FontGlyphs:
    """Alpha masks of one font's glyphs, all in the same vertical frame.

    A mask is ``frame_h`` rows high: ``pad`` rows above the cap line, ``cap`` rows of cap
    height, ``pad`` rows below the baseline; columns are cropped to the ink.
    """

    def __init__(self, key: str, cap_px: int = CAP_PX):
        path = font_path(key) or font_path(FALLBACK_FONT)
        self.key = key
        probe = ImageFont.truetype(str(path), 100)
        cap100 = -probe.getbbox("H", anchor="ls")[1]
        self.font = ImageFont.truetype(str(path), max(8, round(100 * cap_px / cap100)))
        self.cap = -self.font.getbbox("H", anchor="ls")[1]
        self.pad = int(round(PAD_FRAC * self.cap))
        self.frame_h = self.cap + 2 * self.pad
        self.mono = key in MONO_FONTS
        self.path = path
        self._masks: dict[str, np.ndarray] = {}
        self._cell_w: int | None = None
        self._cmap: set[int] | None = None

    def glyph(self, ch: str) -> np.ndarray:
        m = self._masks.get(ch)
        if m is None:
            m = self._masks[ch] = self._draw(ch)
        return m

    def covers(self, ch: str) -> bool:
        """Whether the font file has a glyph for ``ch`` (its character map, read once)."""
        if self._cmap is None:
            from fontTools.ttLib import TTFont  # matplotlib's dependency; only needed here

            self._cmap = set(TTFont(str(self.path), lazy=True).getBestCmap())
        return ord(ch) in self._cmap

    def _draw(self, ch: str) -> np.ndarray:
        if not ch.isalnum() and not self.covers(ch):  # a separator it lacks (a mid dot): DejaVu's, same frame
            g = glyphs_for(FALLBACK_FONT).glyph(ch)
            w = max(1, round(g.shape[1] * self.frame_h / g.shape[0]))
            return cv2.resize(g, (w, self.frame_h), interpolation=cv2.INTER_AREA)
        x0, _, x1, _ = self.font.getbbox(ch, anchor="ls")
        w = max(1, x1 - x0) + 4
        img = Image.new("L", (w, self.frame_h), 0)
        ImageDraw.Draw(img).text((2 - x0, self.pad + self.cap), ch, font=self.font, fill=255, anchor="ls")
        a = np.asarray(img, dtype=np.uint8)
        cols = np.flatnonzero(a.max(axis=0) > 24)
        if cols.size == 0:  # a blank glyph: keep a thin empty mask
            return np.zeros((self.frame_h, max(1, self.cap // 4)), np.uint8)
        return np.ascontiguousarray(a[:, cols[0] : cols[-1] + 1])

    @property
    def cell_w(self) -> int:
        """Width of the widest digit (the cell of an equal-width layout; M and W may be wider)."""
        if self._cell_w is None:
            self._cell_w = max(self.glyph(c).shape[1] for c in "0123456789")
        return self._cell_w


# --- variants: OpenCV's faces and weights -------------------------------------------------------
# OpenCV's built-in faces (plain sans, a "1" without a foot, an "I" without serifs: close to
# many plate typefaces); installed with opencv itself.
CV_FONTS: dict[str, int] = {
    "cv_simplex": cv2.FONT_HERSHEY_SIMPLEX,
    "cv_duplex": cv2.FONT_HERSHEY_DUPLEX,
}
# The stroke face (data.synth.strokefont) in its weights: a condensed monoline plate typeface.
STROKE_FONTS: tuple[str, ...] = tuple(f"stroke_{w}" for w in STROKE_WEIGHTS)
BAR_ONE = "_bar1"  # suffix of the grey Brazilian plates' stroke face: a plain-bar 1, curled 6 and 9
BOX_BOWLS = "_box"  # suffix of a stroke face with rounded-rectangle bowls (O, 0, D, 6, 8, ...)
FORMS = "_f"  # last suffix of a stroke face drawing other forms of characters: _f<number>, strokefont.FORM_SETS
# Weight change: dilation (+) or erosion (-) radius of the glyph masks, in units of the cap height.
WEIGHTS: dict[str, float] = {"thin": -0.025, "bold": 0.025, "heavy": 0.05}
MID_DOT = "\u00b7"  # a separator some plates print instead of a hyphen (old Brazilian plates)


def split_variant(key: str) -> tuple[str, str | None]:
    base, _, weight = key.partition("/")
    return base, (weight or None)


@lru_cache(maxsize=None)
def _cv_cap(face: int) -> float:
    """Cap height of an OpenCV face at fontScale 1, measured (getTextSize includes the descent)."""
    img = np.zeros((300, 300), np.uint8)
    cv2.putText(img, "H", (20, 250), face, 10.0, 255, 1, cv2.LINE_AA)
    rows = np.flatnonzero(img.max(axis=1) > 127)
    return (rows[-1] - rows[0] + 1) / 10.0


class CvGlyphs(FontGlyphs):
    """Glyphs of an OpenCV face (``cv2.putText``). Zero is drawn as a plain oval: OpenCV's is slashed."""

    def __init__(self, key: str, cap_px: int = CAP_PX):
        self.key = key
        self.face = CV_FONTS[key]
        self.scale = cap_px / _cv_cap(self.face)
        self.cap = cap_px
        self.pad = int(round(PAD_FRAC * self.cap))
        self.frame_h = self.cap + 2 * self.pad
        self.mono = False
        self.font = None
        self._masks = {}
        self._cell_w = None

    def _draw(self, ch: str) -> np.ndarray:
        h = self.frame_h
        img = np.zeros((h, self.cap * 2), np.uint8)
        o = self.glyph("O") if ch == "0" else None
        if o is not None:  # the O's ring, narrowed (stroke kept) into a zero
            pen = int(np.argmax(o[h // 2] > 127)) or max(2, self.cap // 9)
            rows = np.flatnonzero(o.max(axis=1) > 127)
            top, bottom = rows[0] + pen // 2, rows[-1] - pen // 2
            cw = int(self.cap * 0.62)
            cv2.ellipse(img, (pen + cw // 2, (top + bottom) // 2), ((cw - pen) // 2, (bottom - top) // 2),
                        0, 0, 360, 255, pen, cv2.LINE_AA)
        elif ch == MID_DOT:
            r = max(2, self.cap // 10)
            cv2.circle(img, (r + 2, self.pad + self.cap // 2), r, 255, -1, cv2.LINE_AA)
        else:
            cv2.putText(img, ch, (4, self.pad + self.cap), self.face, self.scale, 255, 1, cv2.LINE_AA)
        cols = np.flatnonzero(img.max(axis=0) > 24)
        if cols.size == 0:
            return np.zeros((h, max(1, self.cap // 4)), np.uint8)
        return np.ascontiguousarray(img[:, cols[0] : cols[-1] + 1])


class StrokeGlyphs(FontGlyphs):
    """The monoline stroke face of :mod:`data.synth.strokefont` (``stroke_<weight>``); characters it
    does not define (dots, other scripts) come from DejaVu Bold in the same frame."""

    def __init__(self, key: str, cap_px: int = CAP_PX):
        super().__init__(FALLBACK_FONT, cap_px)
        self.key = key
        base, forms = stroke_forms(key)
        weight, *variants = base.removeprefix("stroke_").split("_")
        self.pen = STROKE_WEIGHTS[weight]
        # The grey BR plates' cut: a 1 without its flag (a plain bar like the I), 6 and 9 with long hooks.
        self.bar_one = "bar1" in variants
        self.squareness = BOXY if "box" in variants else 2.0  # rounded-rectangle bowls
        self.forms = forms
        glyph_set(self.squareness, self.bar_one, forms)  # a bad face number fails here, not at a glyph

    def _draw(self, ch: str) -> np.ndarray:
        if ch == MID_DOT:
            r = max(2, round(self.cap * self.pen * 0.8))
            img = np.zeros((self.frame_h, 2 * r + 3), np.uint8)
            cv2.circle(img, (r + 1, self.pad + self.cap // 2), r, 255, -1, cv2.LINE_AA)
            return img
        bar = ch == "1" and self.bar_one  # the plain bar whatever the forms: that cut's point
        m = draw_glyph("I" if bar else ch, self.cap, self.pad, self.pen, self.squareness,
                       curled=self.bar_one, forms=None if bar else self.forms)
        return m if m is not None else super()._draw(ch)


class WeightedGlyphs:
    """A font made bolder or lighter by dilating or eroding its glyph masks (same interface)."""

    def __init__(self, key: str, cap_px: int = CAP_PX):
        base, weight = split_variant(key)
        self.inner = glyphs_for(base)
        self.key = key
        self.cap, self.pad, self.frame_h, self.mono = self.inner.cap, self.inner.pad, self.inner.frame_h, False
        r = WEIGHTS[weight] * self.cap
        self.grow = r > 0
        k = 2 * max(1, int(round(abs(r)))) + 1
        self.kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        self._masks: dict[str, np.ndarray] = {}
        self._cell_w: int | None = None

    glyph = FontGlyphs.glyph
    cell_w = FontGlyphs.cell_w

    def _draw(self, ch: str) -> np.ndarray:
        m = self.inner.glyph(ch)
        if self.grow:
            k = self.kernel.shape[1]
            m = cv2.dilate(np.pad(m, ((0, 0), (k, k))), self.kernel)
        else:
            m = cv2.erode(m, self.kernel)
        cols = np.flatnonzero(m.max(axis=0) > 24)
        return np.ascontiguousarray(m[:, cols[0] : cols[-1] + 1]) if cols.size else m[:, :1]


def stroke_forms(key: str) -> tuple[str, int | None]:
    """A stroke face's key without its ``_f<number>`` suffix, and that number (None without one)."""
    base, sep, number = key.rpartition(FORMS)
    if sep and number.isdigit() and base.startswith("stroke_"):
        return base, int(number)
    return key, None


def glyphs_for(key: str):
    """The glyph source of a font key: a font file's, an OpenCV face's (``cv_*``), the stroke face's
    (``stroke_*``), or any of them
    made bolder or lighter (``<font>/<weight>``, weights in ``WEIGHTS``)."""
    base, weight = split_variant(key)
    if weight is not None:
        if weight not in WEIGHTS:
            raise ValueError(f"unknown weight {weight!r} in font {key!r}; choices: {', '.join(WEIGHTS)}")
        return WeightedGlyphs(key)
    if base in CV_FONTS:
        return CvGlyphs(key)
    stroke, _ = stroke_forms(base)
    if stroke.removesuffix(BAR_ONE).removesuffix(BOX_BOWLS) in STROKE_FONTS:
        return StrokeGlyphs(key)
    if base not in FONT_FILES:
        raise ValueError(f"unknown font {base!r}; choices: {', '.join([*FONT_FILES, *CV_FONTS, *STROKE_FONTS])}")
    return FontGlyphs(key)
