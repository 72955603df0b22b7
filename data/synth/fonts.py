"""Fonts of the synthetic plates (installed files only) and the glyph mask cache.

Fonts come from matplotlib's bundled DejaVu files and, when installed, the pip packages
``font_roboto``, ``font_fjallaone`` and ``font_source_sans_pro``. A missing package is
replaced by DejaVu without error.

Each glyph is drawn once per (font, character) with PIL into an 8-bit alpha mask
(``FontGlyphs.glyph``); plates are then composed from these masks with numpy/cv2.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# key -> (package whose files/ folder holds it, or "matplotlib"; file name)
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
}

# Plate-like families. A country lists groups (CountrySpec.fonts); a plate draws one font of them.
FONT_GROUPS: dict[str, tuple[str, ...]] = {
    "din": ("dejavu_bold", "roboto_medium", "roboto_bold", "source_semibold", "source_bold", "dejavu"),
    "narrow": ("fjalla", "roboto_bold", "source_bold", "roboto_black"),
    "mono": ("dejavu_mono_bold", "dejavu_bold", "source_black"),
}
FALLBACK_FONT = "dejavu_bold"
MONO_FONTS = frozenset({"dejavu_mono_bold"})  # always drawn in equal-width cells

CAP_PX = 72  # cap height of the cached masks; plates scale them down
PAD_FRAC = 0.16  # room above the cap line and below the baseline (overshoot, Q's tail)


def _package_dir(package: str) -> Path | None:
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
        self._masks: dict[str, np.ndarray] = {}
        self._cell_w: int | None = None

    def glyph(self, ch: str) -> np.ndarray:
        m = self._masks.get(ch)
        if m is None:
            m = self._masks[ch] = self._draw(ch)
        return m

    def _draw(self, ch: str) -> np.ndarray:
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
