"""Realism effects of the synthetic generator, each with its own probability (config: ``data.synth_effects``).

The fixed synthetic val/test sets are rendered without them (``SynthEffects()`` is all
off and draws nothing from the random stream, so those sets stay what they were); the
training stream gets the probabilities of ``data.synth_effects``. Effects come in groups,
which is how the README's ablation switches them off:

- ``fonts``: OpenCV's faces beside the country's fonts (``extra_fonts``), the condensed
  monoline stroke face of ``strokefont.py`` (``stroke_font``; of the plates drawn in it, ``glyph_forms``
  draws them in one of 16 faces of other forms of characters, as other typefaces draw them: a 1 with
  a foot or none, an open 4, a crossed 7, W and M with other vertices, ...), bolder/lighter cuts (``font_weight``),
  other separators (``separators``: a mid dot or a gap instead of a hyphen), look-alike characters
  (``lookalikes``: the digit 1 drawn as the letter I's plain bar, or 0 and O drawn alike, as the
  typefaces of many countries' plates draw them; the label keeps what the format says, so a reader
  learns to tell them apart by their place in the plate, not by their look alone), ``glyph_warp``
  (every character's shape smoothly and randomly distorted, an elastic warp of the drawn text: the
  faces of plates differ in more ways than any set of fonts spans), ``mixed_fonts`` (each character
  in one of two to four fonts of the whole set, the plate's own among them: a reader learns each
  character's forms apart from the face of its neighbours), ``fixed_pitch`` (every character in the
  same cell, a digit's width: narrow ones centred in it, wide ones such as W and M squeezed into it, as
  fixed-pitch plate faces draw them, in any font);
- ``clutter``: things on the plate that are not its text: ``screws``, registration
  ``stickers``, ``small_text`` (slogans, dealer lines) above/below the characters,
  ``us_scenes`` (US state designs: sky, hills, a picture, an icon between the groups);
- ``surface``: ``emboss`` (lit and shaded character edges), ``gradient`` backgrounds,
  ``pattern`` (a printed background on any country's plate: wavy guilloche lines, hatching, a
  mottled texture or a faint repeated print, in any colour), ``dirt``, ``glare`` (a reflection
  across the plate);
- ``surround``: the plate mounted on a car (``surround``: body, bumper lines, the
  recess's shadow, so a loose crop shows a car and not a smeared border) and a plate
  ``frame`` (often with a dealer's text); the other end of a detector's boxes, ``text_crop``:
  the crop hugs the characters (a character or text detector's box), each side a little out
  or a little in, so the first and last characters touch the crop's edges;
- ``plates``: what plates vary beyond the countries' looks, broadly (issue 24, "robustness by
  design", not imitating any one real set): ``any_font`` (any font of the whole set: the
  committed ``data/synth/font_files``, the installed ones, OpenCV's faces, on any country),
  ``font_stretch`` (glyphs condensed or stretched, 0.6-1.4), ``any_colours`` (any background and
  character colours with a minimum luminance contrast, either one the lighter), ``spacing``
  (tight or loose gaps, slightly varying character heights and baselines), ``border`` (a rim of
  random width, inset and colour, or none; rounded or square corners);
- ``formats``: ``state_formats`` draws a country's further real formats
  (``data.formats.CountryFormats.formats_more``: US state series such as Missouri's ``AB1 C2D`` with its
  tab between the groups, California's with ``I``, ``O`` and ``Q``); ``any_text`` writes a random
  text instead of a format's (4-9 characters in one to three groups of letters, digits or both,
  on any country's look), so a reader learns characters rather than the 27 countries' formats and
  lengths (plates of other countries, issue 24). Both change the text, so labels differ with them on.

Camera effects (night, low resolution, defocus, rain) are training augmentations
(``data.camera_effects`` in ``data.transforms``). Nothing here touches the label:
effects draw only outside the characters' boxes or change their look.
"""

from __future__ import annotations

import colorsys
import dataclasses
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np

from data.formats import LATIN, ROW_BREAK
from data.images import MIN_CONTRAST, colour_luma
from data.synth.countries import CAR_COLOURS, RGB, US_FG
from data.synth.textgen import UniformStream

EFFECT_GROUPS: dict[str, tuple[str, ...]] = {
    "fonts": ("extra_fonts", "stroke_font", "glyph_forms", "font_weight", "separators", "lookalikes", "glyph_warp",
              "mixed_fonts", "fixed_pitch"),
    "clutter": ("screws", "stickers", "small_text", "us_scenes"),
    "surface": ("emboss", "gradient", "pattern", "dirt", "glare"),
    "surround": ("surround", "frame", "text_crop"),
    "plates": ("any_font", "font_stretch", "any_colours", "spacing", "border"),
    "formats": ("state_formats", "any_text", "any_letters"),
}


# What an effect needs to show at all: the effects it acts on, and the countries it applies to.
EFFECT_NEEDS: dict[str, tuple[str, ...]] = {"frame": ("surround",),  # a frame is part of the mount
                                            "glyph_forms": ("stroke_font",)}  # forms of the stroke face
EFFECT_COUNTRIES: dict[str, tuple[str, ...]] = {"us_scenes": ("US",), "state_formats": ("US",)}


@dataclass(frozen=True)
class SynthEffects:
    """Probability per plate of each effect; 0 turns it off. The defaults are all off."""

    extra_fonts: float = 0.0
    stroke_font: float = 0.0
    glyph_forms: float = 0.0
    font_weight: float = 0.0
    separators: float = 0.0
    lookalikes: float = 0.0
    glyph_warp: float = 0.0
    mixed_fonts: float = 0.0
    fixed_pitch: float = 0.0
    screws: float = 0.0
    stickers: float = 0.0
    small_text: float = 0.0
    us_scenes: float = 0.0
    emboss: float = 0.0
    gradient: float = 0.0
    pattern: float = 0.0
    dirt: float = 0.0
    glare: float = 0.0
    surround: float = 0.0
    frame: float = 0.0
    text_crop: float = 0.0
    any_font: float = 0.0
    font_stretch: float = 0.0
    any_colours: float = 0.0
    spacing: float = 0.0
    border: float = 0.0
    state_formats: float = 0.0
    any_text: float = 0.0
    any_letters: float = 0.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ValueError(f"{f.name}: expected a probability in [0, 1], got {v!r}")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, float] | None, key: str = "data.synth_effects") -> SynthEffects:
        """From a config mapping; errors name ``key.<effect>``."""
        if mapping is None:
            return cls()
        if not isinstance(mapping, Mapping):
            raise ValueError(f"{key}: expected a mapping of effect names to probabilities, got {mapping!r}")
        names = [f.name for f in dataclasses.fields(cls)]
        for k in mapping:
            if k not in names:
                raise ValueError(f"unknown effect {key}.{k}; effects: {', '.join(names)}")
        try:
            return cls(**mapping)
        except ValueError as e:  # __post_init__ names the effect; add where it was set
            raise ValueError(f"{key}.{e}") from e

    def without(self, *groups: str) -> SynthEffects:
        """A copy with every effect of the named groups (or single effects) off."""
        off: list[str] = []
        for g in groups:
            if g in EFFECT_GROUPS:
                off.extend(EFFECT_GROUPS[g])
            elif g in {f.name for f in dataclasses.fields(self)}:
                off.append(g)
            else:
                raise ValueError(f"unknown effect group {g!r}; groups: {', '.join(EFFECT_GROUPS)}")
        return dataclasses.replace(self, **{k: 0.0 for k in off})

    def only(self, name: str) -> SynthEffects:
        """Every effect off except ``name`` (a group or one effect), which is always on (for previews),
        with what it needs to show (``EFFECT_NEEDS``: a frame comes with its mount)."""
        keys = EFFECT_GROUPS.get(name, (name,))
        keys = tuple(keys) + tuple(n for k in keys for n in EFFECT_NEEDS.get(k, ()))
        valid = {f.name for f in dataclasses.fields(self)}
        if any(k not in valid for k in keys):
            raise ValueError(f"unknown effect {name!r}; effects: {', '.join(valid)}; groups: {', '.join(EFFECT_GROUPS)}")
        return SynthEffects(**{k: 1.0 for k in keys})

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) > 0 for f in dataclasses.fields(self))

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


_RECORDERS: list[dict[str, list[int]]] = []


def record(name: str, applied: bool) -> bool:
    """Note one draw of effect ``name`` and whether it was applied (for :func:`recording`); returns ``applied``."""
    for counts in _RECORDERS:
        c = counts.setdefault(name, [0, 0])
        c[0] += 1
        c[1] += applied
    return applied


@contextmanager
def recording() -> Iterator[dict[str, list[int]]]:
    """Within the block, count each effect's draws: {name: [plates it was drawn for, plates it was applied to]}.

    An effect is drawn only where it can apply (``frame`` on mounted plates, ``us_scenes`` on US
    designs, ``separators`` on texts with a hyphen, ...), so applied / drawn is its probability."""
    counts: dict[str, list[int]] = {}
    _RECORDERS.append(counts)
    try:
        yield counts
    finally:
        _RECORDERS.remove(counts)


def solid(h: int, w: int, colour) -> np.ndarray:
    """An h x w x 3 uint8 image of one colour (cv2 fills it ~15x faster than a numpy broadcast)."""
    img = np.empty((h, w, 3), np.uint8)
    cv2.rectangle(img, (0, 0), (w - 1, h - 1), tuple(float(c) for c in colour), -1)
    return img


def blend_towards(img: np.ndarray, target: np.ndarray, weight: np.ndarray) -> None:
    """``img`` (uint8 HxWx3) moved towards ``target`` (same shape) by ``weight`` (HxW in [0, 1]), in place."""
    w = np.ascontiguousarray(weight, np.float32)
    img[:] = cv2.blendLinear(img, target, 1.0 - w, w)


def _rng(u: UniformStream) -> np.random.Generator:
    """A numpy generator seeded from the stream (array draws stay deterministic per plate)."""
    return np.random.default_rng(int(u() * 2**62))


# Small lines above and below the characters and on frame bars. State slogans on US plates only;
# dealer lines anywhere.
US_SLOGANS = (
    "GRAND CANYON STATE", "LAND OF LINCOLN", "SUNSHINE STATE", "THE LONE STAR STATE", "EMPIRE STATE",
    "GREAT LAKES", "PEACH STATE", "LIVE FREE OR DIE", "WILD WONDERFUL", "DRIVE SAFELY",
    "AMERICA THE BEAUTIFUL", "IN GOD WE TRUST",
)
DEALER_LINES = (
    "AUTO SALES", "MOTORS INC", "CITY TOYOTA", "HONDA OF THE VALLEY", "FORD DEALER", "VISIT OUR WEBSITE",
    "AUTOHAUS", "CONCESSIONNAIRE", "CONCESSIONARIA", "VEICULOS", "AUTO CENTER",
)


def captions_for(country: str | None) -> tuple[str, ...]:
    """The small lines a plate of ``country`` may carry (None: any)."""
    return DEALER_LINES if country is not None and country != "US" else US_SLOGANS + DEALER_LINES


STICKER_COLOURS: tuple[RGB, ...] = (
    (230, 60, 50), (250, 200, 40), (60, 160, 80), (50, 110, 210), (240, 130, 40), (200, 80, 170), (240, 240, 240),
)
GRADIENT_COLOURS: tuple[RGB, ...] = (
    (150, 190, 230), (250, 190, 120), (250, 230, 140), (170, 220, 170), (235, 170, 190), (200, 200, 205),
)
FRAME_COLOURS: tuple[RGB, ...] = ((18, 18, 20), (40, 40, 44), (170, 172, 176), (205, 206, 210), (120, 100, 60))
BODY_COLOURS: tuple[RGB, ...] = CAR_COLOURS + ((150, 20, 24), (30, 60, 120))


# --- plates -----------------------------------------------------------------------------------
STRETCH = (0.6, 1.4)  # font_stretch: horizontal scale of the glyphs (log-uniform: as many condensed as wide)


def _hsv(u: UniformStream, s_max: float, v: tuple[float, float]) -> np.ndarray:
    """A random colour: any hue, saturation up to ``s_max`` (often grey-ish), value in ``v``."""
    rgb = colorsys.hsv_to_rgb(u(), s_max * u() ** 1.5, u.uniform(*v))
    return np.array(rgb, np.float64) * 255.0


def any_colours(u: UniformStream) -> tuple[RGB, RGB]:
    """A random (background, characters) pair at least ``MIN_CONTRAST`` luma levels apart: any
    hues, dark characters on a light plate (60 %) or light on dark. The lighter colour is lifted
    towards white to a drawn luma, the darker one pulled towards black until the gap holds."""
    light = _hsv(u, 0.9, (0.55, 1.0))
    dark = _hsv(u, 1.0, (0.0, 0.75))
    target = u.uniform(MIN_CONTRAST + 40.0, 245.0)  # the lighter colour's luma
    y = colour_luma(light)
    if y < target:
        light = light + (255.0 - light) * (target - y) / (255.0 - y)
    room = colour_luma(light) - MIN_CONTRAST - u.uniform(0.0, 40.0)  # the darker colour's luma at most
    yd = colour_luma(dark)
    if yd > room:
        dark = dark * max(room, 0.0) / yd
    pair = (tuple(int(round(v)) for v in np.clip(light, 0, 255)), tuple(int(round(v)) for v in np.clip(dark, 0, 255)))
    return pair if u() < 0.6 else (pair[1], pair[0])  # type: ignore[return-value]


def rim_colour(u: UniformStream, fg: RGB) -> RGB:
    """A border's colour: the characters' (as most plates), a dark or light grey, or any colour."""
    k = u()
    if k < 0.5:
        return fg
    if k < 0.75:
        return (int(u.uniform(0, 255)),) * 3  # type: ignore[return-value]
    return tuple(int(v) for v in _hsv(u, 1.0, (0.2, 1.0)))  # type: ignore[return-value]


def border(u: UniformStream, unit: float, fg: RGB) -> tuple[int, int, int, RGB]:
    """A plate border (``border``): its width (0: none), corner radius (0: square), inset from
    the edge (a rim line inside it) and colour (:func:`rim_colour`); ``unit`` is the height of a
    one-row plate of the same scale."""
    t = 0 if u() < 0.2 else max(1, int(round(unit * u.uniform(0.01, 0.06))))
    r = 0 if u() < 0.35 else int(round(unit * u.uniform(0.02, 0.16)))
    inset = int(round(unit * u.uniform(0.01, 0.05))) if t and u() < 0.35 else 0
    return t, r, inset, rim_colour(u, fg)


@dataclass(frozen=True)
class Spacing:
    """Per-plate spacing draws (``spacing``): the gap between characters and between groups
    (in units of the character height), each gap's spread, and each character's size and
    baseline spread (relative, units of the character height)."""

    tracking: float
    space: float
    gap_spread: float
    size_spread: float
    baseline_spread: float

    @property
    def vertical_room(self) -> float:
        """How much taller than the character height a row can get (per side, in units of it)."""
        return self.size_spread / 2 + self.baseline_spread


def spacing(u: UniformStream) -> Spacing:
    """Tight (touching-close) or loose gaps, slightly varying sizes and baselines."""
    k = u()
    tracking = u.uniform(0.01, 0.06) if k < 0.35 else u.uniform(0.06, 0.16) if k < 0.7 else u.uniform(0.16, 0.4)
    return Spacing(tracking=tracking, space=u.uniform(0.12, 1.0), gap_spread=u.uniform(0.0, 0.5),
                   size_spread=u.uniform(0.0, 0.1), baseline_spread=u.uniform(0.0, 0.04))


def glyph_warp(alpha: np.ndarray, box: tuple[int, int, int, int], hc: float, u: UniformStream) -> tuple[int, int, int, int]:
    """Distort the drawn characters (``alpha``, in place, within ``box``) by a smooth random
    displacement field: strokes bend, bulge and thin a little, differently in each character, by
    up to ~0.08 of the character height ``hc`` (a field of unit spread, clipped at two, times
    0.01-0.04 of it) over distances of half to one character height. Returns the box grown by the
    margin the strokes may have moved into."""
    H, W = alpha.shape
    amp = hc * u.uniform(0.01, 0.04)
    cell = hc * u.uniform(0.5, 1.0)
    pad = int(math.ceil(2 * amp))
    x0, y0, x1, y1 = max(0, box[0] - pad), max(0, box[1] - pad), min(W, box[2] + pad), min(H, box[3] + pad)
    h, w = y1 - y0, x1 - x0
    if h < 4 or w < 4:
        return box
    rng = _rng(u)
    gh, gw = max(2, round(h / cell) + 1), max(2, round(w / cell) + 1)
    dx = cv2.resize(rng.standard_normal((gh, gw), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(rng.standard_normal((gh, gw), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    gx = np.arange(w, dtype=np.float32)[None, :] + np.clip(dx, -2, 2) * amp
    gy = np.arange(h, dtype=np.float32)[:, None] + np.clip(dy, -2, 2) * amp
    region = np.ascontiguousarray(alpha[y0:y1, x0:x1])
    alpha[y0:y1, x0:x1] = cv2.remap(region, gx, gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return x0, y0, x1, y1


# --- formats ----------------------------------------------------------------------------------

DIGITS = "0123456789"
# Groups of letters and digits together leave out the letters a font may draw as a digit
# (O, I, Q), so that no drawn character is ambiguous where nothing tells letters from digits.
MIXED = "".join(c for c in LATIN if c not in "OIQ") + DIGITS
GROUP_CHARS = (LATIN, DIGITS, MIXED)
GROUP_KIND_WEIGHTS = (0.45, 0.4, 0.15)  # letters, digits, both
# lookalikes: which characters a plate draws with another's glyph. The 1 as the I's bar is the
# commonest merge (grey Brazilian plates, many US states); 0 and O go either way.
LOOKALIKE_ONE = 0.7
LOOKALIKE_ZERO = (0.4, 0.3)  # 0 drawn as O, O drawn as 0 (else neither)


def lookalikes(u: UniformStream) -> dict[int, str]:
    """A ``str.translate`` table from a plate's characters to the glyphs drawn for them: the digit
    1 as the letter I, and 0 as O or O as 0 (never both ways: then neither would be told apart);
    at least one of them."""
    while True:
        table: dict[int, str] = {}
        if u() < LOOKALIKE_ONE:
            table[ord("1")] = "I"
        z = u()
        if z < LOOKALIKE_ZERO[0]:
            table[ord("0")] = "O"
        elif z < sum(LOOKALIKE_ZERO):
            table[ord("O")] = "0"
        if table:
            return table


GROUP_GAPS = (" ", " ", "-", "")  # between groups: a gap (most), a hyphen, or none


def any_text(u: UniformStream, rows: int, max_len: int = 9) -> str:
    """A random raw plate text (``any_text``): one row of 4-9 characters, or two rows of 2-4 over
    3-5, each row in one to three groups of letters, digits or both, the kind mostly alternating
    from group to group as on real plates; at most ``max_len`` characters in all."""
    if rows == 1:
        lens = [min(4 + u.randint(6), max_len)]
    else:
        top = min(2 + u.randint(3), max_len - 1)
        lens = [top, min(3 + u.randint(3), max_len - top)]
    out = []
    kind = _group_kind(u)
    for n in lens:
        groups = min(n, 1 + u.randint(3 if n >= 4 else 2))
        cuts = sorted(1 + u.randint(n - 1) for _ in range(groups - 1)) if n > 1 else []
        sizes = [b - a for a, b in zip([0] + cuts, cuts + [n]) if b > a]
        parts = []
        for size in sizes:
            chars = GROUP_CHARS[kind]
            parts.append("".join(u.choice(chars) for _ in range(size)))
            kind = _group_kind(u) if u() < 0.3 else (1 if kind == 0 else 0)
        text = parts[0]
        for p in parts[1:]:
            text += u.choice(GROUP_GAPS) + p
        out.append(text)
    return ROW_BREAK.join(out)


def _group_kind(u: UniformStream) -> int:
    x = u()
    return 0 if x < GROUP_KIND_WEIGHTS[0] else 1 if x < GROUP_KIND_WEIGHTS[0] + GROUP_KIND_WEIGHTS[1] else 2


# --- surface ----------------------------------------------------------------------------------
def gradient(img: np.ndarray, text_alpha: np.ndarray, u: UniformStream) -> None:
    """Tint the background (not the characters) with a colour ramp, top to bottom or bottom to top."""
    H, W = img.shape[:2]
    col = np.array(u.choice(GRADIENT_COLOURS), np.float32)
    s = u.uniform(0.3, 0.75)
    ramp = np.linspace(0.0, 1.0, H, dtype=np.float32)
    if u() < 0.5:
        ramp = ramp[::-1]
    if u() < 0.4:  # a band in the middle of the plate (scenic strips of US designs)
        ramp = np.exp(-((np.linspace(-1.0, 1.0, H, dtype=np.float32) - u.uniform(-0.4, 0.4)) / 0.35) ** 2)
    m = (s * ramp)[:, None] * (1.0 - text_alpha.astype(np.float32) / 255.0)
    blend_towards(img, solid(H, W, col), m)


PATTERN_PRINT = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"  # faint repeated print (security backgrounds)


def pattern(img: np.ndarray, text_alpha: np.ndarray, hc: float, u: UniformStream) -> None:
    """A printed background behind the characters (not on them), in any colour and strength: wavy
    guilloche lines, straight hatching, a mottled texture or a faint grid of small print. Many
    plates carry one (US designs, Mercosul, newer European series); broadly randomised, not any
    one design."""
    H, W = img.shape[:2]
    rng = _rng(u)
    kind = u.randint(4)
    thick = max(1, int(round(hc * u.uniform(0.015, 0.06))))
    if kind <= 1:  # lines: wavy (guilloche) or straight (hatching), at any angle
        ang = u.uniform(-math.pi / 2, math.pi / 2) if kind == 1 else u.uniform(-0.5, 0.5)
        c, s = math.cos(ang), math.sin(ang)
        gap = hc * u.uniform(0.12, 0.5)
        amp = hc * u.uniform(0.05, 0.4) if kind == 0 else 0.0
        period = hc * u.uniform(0.6, 3.0)
        diag = math.hypot(H, W)
        t = np.arange(-diag / 2, diag / 2, max(2.0, diag / 60), dtype=np.float32)  # along the lines
        layer = np.zeros((H, W), np.uint8)
        off = -diag / 2 + u.uniform(0, gap)
        while off < diag / 2:
            n = off + amp * np.sin(2 * math.pi * t / period + off * 0.3)  # across the lines
            xs = W / 2 + t * c - n * s
            ys = H / 2 + t * s + n * c
            pts = np.stack([xs, ys], 1).round().astype(np.int32)
            cv2.polylines(layer, [pts], False, 255, thick, cv2.LINE_AA)
            off += gap
        ink = layer.astype(np.float32) / 255.0
    elif kind == 2:  # mottled texture: smooth noise at a few scales
        ink = np.zeros((H, W), np.float32)
        for cells in (4, 12):
            small = rng.random((max(1, int(H / hc * cells / 4)) + 1, max(2, int(W / hc * cells / 4)) + 1), dtype=np.float32)
            ink += cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)
        ink = np.clip((ink - ink.mean()) / (ink.std() + 1e-6) * 0.35 + 0.5, 0, 1)
    else:  # a grid of small print
        layer = np.zeros((H, W), np.uint8)
        size = hc * u.uniform(0.12, 0.3)
        scale = size / 22.0  # FONT_HERSHEY_SIMPLEX: ~22 px cap height at scale 1
        step_x, step_y = size * u.uniform(2.5, 8.0), size * u.uniform(1.6, 3.0)
        y = u.uniform(0, step_y)
        while y < H + size:
            x = -u.uniform(0, step_x)
            word = "".join(PATTERN_PRINT[int(rng.integers(len(PATTERN_PRINT)))] for _ in range(2 + u.randint(4)))
            while x < W:
                cv2.putText(layer, word, (int(x), int(y)), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, max(1, thick // 2),
                            cv2.LINE_AA)
                x += step_x
            y += step_y
        ink = layer.astype(np.float32) / 255.0
    col = _hsv(u, 0.9, (0.15, 0.95)).astype(np.float32)
    m = ink * u.uniform(0.15, 0.5) * (1.0 - text_alpha.astype(np.float32) / 255.0)
    blend_towards(img, solid(H, W, col), m)


SCENE_SKIES: tuple[RGB, ...] = ((150, 200, 240), (250, 200, 150), (250, 236, 150), (240, 180, 200), (190, 230, 250))
SCENE_LAND: tuple[RGB, ...] = ((150, 110, 180), (190, 140, 90), (110, 170, 110), (100, 150, 210), (230, 150, 80))
ICON_COLOURS: tuple[RGB, ...] = ((240, 130, 20), (200, 30, 40), (30, 90, 170), (40, 130, 60), (230, 180, 30))


def us_scene(img: np.ndarray, text_alpha: np.ndarray, u: UniformStream, y0: int, y1: int, x0: int, x1: int,
             text_box: tuple[int, int, int, int], hc: float, icon: bool = True) -> None:
    """A US state design behind the characters: a sky ramp, a hill or mountain line, maybe a
    picture left of the text (a cactus, a tree; often right beside the first character, as on
    Arizona plates), maybe (``icon``) an icon in the gap between the groups (:func:`gap_icon`)."""
    H, W = img.shape[:2]
    if y1 - y0 < 4 or x1 - x0 < 8:
        return
    layer = np.zeros((H, W, 3), np.float32)
    la = np.zeros((H, W), np.float32)
    sky = np.array(u.choice(SCENE_SKIES), np.float32)
    ramp = np.linspace(u.uniform(0.5, 0.9), 0.0, y1 - y0, dtype=np.float32)
    layer[y0:y1, x0:x1] = sky
    la[y0:y1, x0:x1] = ramp[:, None]
    land = u.choice(SCENE_LAND)
    n = 4 + u.randint(6)
    xs = np.linspace(x0, x1, n)
    jag = u() < 0.5  # mountains (peaks) or rolling hills
    ys = [y0 + (y1 - y0) * u.uniform(0.55 if jag else 0.65, 0.9) for _ in range(n)]
    pts = [(x0, y1)] + [(int(x), int(y)) for x, y in zip(xs, ys)] + [(x1, y1)]
    if not jag:
        fine = np.linspace(x0, x1, 40)
        pts = [(x0, y1)] + [(int(x), int(np.interp(x, xs, ys))) for x in fine] + [(x1, y1)]
    hill = np.zeros((H, W), np.uint8)
    cv2.fillPoly(hill, [np.array(pts, np.int32)], 255, cv2.LINE_AA)
    h = hill.astype(np.float32) / 255.0 * u.uniform(0.45, 0.85)
    layer += (np.array(land, np.float32) - layer) * (hill[..., None] > 0)
    la = np.maximum(la, h)
    bx0, by0, bx1, by1 = text_box
    if u() < 0.5 and bx0 - x0 > 0.1 * H:  # a picture left of the characters
        pic = np.zeros((H, W), np.uint8)
        cx, w = (x0 + bx0) // 2, max(2, int((bx0 - x0) * 0.3))
        top = int(y0 + (y1 - y0) * u.uniform(0.1, 0.4))
        if u() < 0.5:  # beside the first character, as tall as the text: easy to take for one
            w = max(2, int(hc * u.uniform(0.1, 0.16)))
            cx = max(x0 + 2 * w, int(bx0 - hc * u.uniform(0.2, 0.45) - w))
            top = int(by0 + hc * u.uniform(-0.05, 0.2))
        if u() < 0.5:  # cactus: a trunk and two arms
            cv2.line(pic, (cx, y1), (cx, top), 255, w)
            ay = int((top + y1) / 2)
            cv2.line(pic, (cx, ay), (cx - w * 2, ay), 255, max(1, w * 2 // 3))
            cv2.line(pic, (cx - w * 2, ay), (cx - w * 2, ay - (y1 - top) // 4), 255, max(1, w * 2 // 3))
        else:  # a conifer
            tri = np.array([(cx, top), (cx - 2 * w, y1), (cx + 2 * w, y1)], np.int32)
            cv2.fillPoly(pic, [tri], 255, cv2.LINE_AA)
        p = pic.astype(np.float32) / 255.0
        layer += (np.array(u.choice(SCENE_LAND), np.float32) * 0.6 - layer) * p[..., None]
        la = np.maximum(la, p)
    m = la * (1.0 - text_alpha.astype(np.float32) / 255.0)
    out = img.astype(np.float32)
    out += (layer - out) * m[..., None]
    img[:] = out.astype(np.uint8)
    if icon and u() < 0.6:
        gap_icon(img, text_alpha, u, text_box, hc)


TAB = 3  # gap_icon kind: the small square tab


def gap_icon(img: np.ndarray, text_alpha: np.ndarray, u: UniformStream, text_box: tuple[int, int, int, int],
             hc: float, kind: int | None = None) -> None:
    """An icon in the widest gap between character groups (none if the gap is narrower than 0.3
    of the character height): a fruit, a star, a state outline or (``TAB``) a small square tab."""
    bx0, by0, bx1, by1 = text_box
    if bx1 - bx0 <= hc:
        return
    cols = text_alpha[by0:by1, bx0:bx1].max(axis=0) > 24
    best, run, start = (0, 0), 0, 0
    for i, ink in enumerate(cols):
        if ink:
            run = 0
        else:
            start = i if run == 0 else start
            run += 1
            if run > best[1]:
                best = (start, run)
    gx, gw = best
    if gw < 0.3 * hc:
        return
    r = int(min(gw * 0.4, hc * 0.38))
    cx, cy = bx0 + gx + gw // 2, (by0 + by1) // 2
    col = u.choice(ICON_COLOURS)
    kind = u.randint(4) if kind is None else kind
    if kind == TAB:  # a small square tab, often grey or dark (read as a 4, a 9 or a V if unseen)
        cy += int(round(hc * u.uniform(-0.08, 0.08)))
        if u() < 0.5:  # Missouri's: a light square in a dark outline, a dark shape inside
            a = max(2, min(int(round(hc * u.uniform(0.13, 0.22))), int(gw * 0.4)))
            b = max(2, int(round(a * u.uniform(0.9, 1.3))))
            ink = tuple(int(v) for v in np.full(3, u.uniform(20, 90)))
            cv2.rectangle(img, (cx - a, cy - b), (cx + a, cy + b), ink, -1, cv2.LINE_AA)
            e = max(1, int(round(a * u.uniform(0.15, 0.3))))
            light = tuple(int(v) for v in np.full(3, u.uniform(170, 240)))
            cv2.rectangle(img, (cx - a + e, cy - b + e), (cx + a - e, cy + b - e), light, -1, cv2.LINE_AA)
            s = max(1, int(round(a * u.uniform(0.3, 0.55))))
            shape = np.array([(cx - s, cy - s), (cx + s, cy - s // 2), (cx + s // 2, cy + s), (cx - s, cy + s // 2)],
                             np.int32)
            cv2.fillPoly(img, [shape], ink, cv2.LINE_AA)
            return
        a = max(1, int(round(hc * u.uniform(0.08, 0.17))))
        b = max(1, int(round(a * u.uniform(0.8, 1.4))))
        if u() < 0.4:
            col = tuple(int(v) for v in np.full(3, u.uniform(40, 150)))
        cv2.rectangle(img, (cx - a, cy - b), (cx + a, cy + b), col, -1, cv2.LINE_AA)
    elif kind == 0:  # a fruit with a leaf
        cv2.circle(img, (cx, cy), r, col, -1, cv2.LINE_AA)
        cv2.ellipse(img, (cx + r // 2, cy - r), (max(1, r // 2), max(1, r // 4)), -30, 0, 360,
                    (40, 130, 60), -1, cv2.LINE_AA)
    elif kind == 1:  # a star
        a = np.linspace(-math.pi / 2, 1.5 * math.pi, 11)[:-1]
        rr = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        star = np.stack([cx + rr * np.cos(a), cy + rr * np.sin(a)], 1).astype(np.int32)
        cv2.fillPoly(img, [star], col, cv2.LINE_AA)
    else:  # a state outline
        a = np.sort(np.array([u.uniform(0, 2 * math.pi) for _ in range(7)]))
        rr = np.array([r * u.uniform(0.6, 1.0) for _ in range(7)])
        poly = np.stack([cx + rr * np.cos(a), cy + rr * np.sin(a)], 1).astype(np.int32)
        cv2.fillPoly(img, [poly], col, cv2.LINE_AA)


STACKED_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"


def stacked_characters(img: np.ndarray, u: UniformStream, x0: int, x1: int, text_box: tuple[int, int, int, int],
                       hc: float, put_text) -> None:
    """Two small characters (or pairs) stacked beside the text, in the wider free side within
    [x0, x1], as US plates print them (not part of the label)."""
    bx0, by0, bx1, by1 = text_box
    free_l, free_r = bx0 - x0, x1 - bx1
    if max(free_l, free_r) <= 0.3 * hc:
        return
    cx = (x0 + bx0) / 2 if free_l > free_r else (bx1 + x1) / 2
    ink = u.choice(US_FG)
    for dy in (-0.25, 0.25):
        text = u.choice(STACKED_CHARS) + (u.choice(STACKED_CHARS) if u() < 0.3 else "")
        put_text(img, text, hc * 0.32, max(free_l, free_r) * 0.9, cx, (by0 + by1) / 2 + dy * hc, ink)


def emboss(img: np.ndarray, text_alpha: np.ndarray, hc: float, u: UniformStream) -> None:
    """Raised characters: a lit edge on one side of each stroke, a shadow on the other."""
    d = max(1, int(round(hc * u.uniform(0.03, 0.07))))
    a = text_alpha.astype(np.float32) / 255.0
    sh = np.zeros_like(a)
    sh[d:, d:] = a[:-d, :-d]
    light, shade = np.clip(a - sh, 0, 1), np.clip(sh - a, 0, 1)
    if u() < 0.5:
        light, shade = shade, light
    s = u.uniform(0.4, 1.0)
    delta = cv2.merge([s * 70.0 * light - s * 80.0 * shade] * 3)
    img[:] = cv2.add(img, delta, dtype=cv2.CV_8U)  # saturating


def dirt(img: np.ndarray, u: UniformStream) -> None:
    """Low-frequency grime (darker, browner patches) and a few specks."""
    H, W = img.shape[:2]
    rng = _rng(u)
    field = cv2.resize(rng.random((3, 6), dtype=np.float32), (W, H), interpolation=cv2.INTER_CUBIC)
    field = np.clip(field, 0, 1)
    s = u.uniform(0.2, 0.55)
    brown = np.array((70, 58, 40), np.float32)
    blend_towards(img, solid(H, W, brown), field * field * s)
    for _ in range(int(u.uniform(0, 12))):
        x, y = int(rng.integers(0, W)), int(rng.integers(0, H))
        r = max(1, int(H * rng.uniform(0.005, 0.02)))
        speck = np.clip(brown * rng.uniform(0.6, 1.2), 0, 255)
        cv2.circle(img, (x, y), r, tuple(float(v) for v in speck), -1, cv2.LINE_AA)


def glare(img: np.ndarray, u: UniformStream) -> None:
    """A soft bright band across the plate (sun or headlight reflection)."""
    H, W = img.shape[:2]
    ang = u.uniform(-1.2, 1.2)
    c, s = math.cos(ang), math.sin(ang)
    xx = np.arange(W, dtype=np.float32)[None, :]
    yy = np.arange(H, dtype=np.float32)[:, None]
    t = (xx - W * u.uniform(0.1, 0.9)) * c + (yy - H / 2) * s  # (H, W) by broadcasting
    g = np.exp(-((t / (W * u.uniform(0.05, 0.25))) ** 2)) * u.uniform(0.3, 0.8)
    blend_towards(img, solid(H, W, (255, 255, 255)), g)


# --- clutter ----------------------------------------------------------------------------------
def screws(img: np.ndarray, y: float, free: float, u: UniformStream) -> None:
    """Two screw heads on a horizontal line at ``y`` (in a strip ``free`` px high without characters)."""
    H, W = img.shape[:2]
    r = int(min(free * 0.42, H * u.uniform(0.03, 0.06)))
    if r < 1:
        return
    metal = tuple(int(v) for v in np.clip(np.array((170, 170, 168)) * u.uniform(0.5, 1.2), 0, 255))
    rust = u() < 0.3
    for fx in (u.uniform(0.12, 0.3), u.uniform(0.7, 0.88)):
        cx, cy = int(W * fx), int(y)
        cv2.circle(img, (cx, cy), r, (110, 70, 40) if rust else metal, -1, cv2.LINE_AA)
        cv2.circle(img, (cx + max(1, r // 3), cy + max(1, r // 3)), max(1, r // 2), (40, 40, 40), -1, cv2.LINE_AA)


def sticker(img: np.ndarray, x0: int, x1: int, y0: int, y1: int, u: UniformStream, put_text) -> None:
    """A registration sticker (coloured rectangle, maybe with a small number) inside the given box."""
    h = y1 - y0
    if h < 4 or x1 - x0 < 4:
        return
    w = min(x1 - x0, int(h * u.uniform(1.0, 1.8)))
    x = x0 if u() < 0.5 else x1 - w
    col = u.choice(STICKER_COLOURS)
    cv2.rectangle(img, (x, y0), (x + w - 1, y1 - 1), col, -1)
    if h >= 6 and u() < 0.7:
        put_text(img, f"{int(u.uniform(1, 99)):02d}", h * 0.55, w * 0.9, x + w / 2, y0 + h / 2, (20, 20, 20))


# --- surround ---------------------------------------------------------------------------------
# text_crop's sides, in row heights: out (positive) by up to about a third of a row, or in
# (negative) by a little. The characters' box includes their glyph frames' padding, so a side a
# few per cent in touches the ink at most.
TEXT_CROP_SIDES = (-0.05, 0.35)
TEXT_CROP_ENDS = (-0.03, 0.3)  # top and bottom


def text_crop(plate: np.ndarray, u: UniformStream, text_box: tuple[int, int, int, int], rows: int) -> np.ndarray:
    """The render cut to the characters' box (``text_box``, x0, y0, x1, y1), each side moved by a
    draw of ``TEXT_CROP_SIDES`` (left, right) or ``TEXT_CROP_ENDS`` (top, bottom) x a row's height:
    a detector's box around the text rather than the plate."""
    x0, y0, x1, y1 = text_box
    if x0 >= x1 or y0 >= y1:
        return plate
    H, W = plate.shape[:2]
    row = (y1 - y0) / rows
    left, right = (u.uniform(*TEXT_CROP_SIDES) * row for _ in range(2))
    top, bottom = (u.uniform(*TEXT_CROP_ENDS) * row for _ in range(2))
    cx0, cx1 = max(0, round(x0 - left)), min(W, round(x1 + right))
    cy0, cy1 = max(0, round(y0 - top)), min(H, round(y1 + bottom))
    if cx1 - cx0 < 2 or cy1 - cy0 < 2:
        return plate
    return np.ascontiguousarray(plate[cy0:cy1, cx0:cx1])


def mount(plate: np.ndarray, u: UniformStream, frame_p: float, put_text,
          text_box: tuple[int, int, int, int] | None = None, country: str | None = None) -> np.ndarray:
    """The plate on a car body: margins, body colour and shading, bumper lines, the recess's
    shadow, and with probability ``frame_p`` a plate frame whose bars may carry text.
    ``put_text(img, text, hc, max_w, cx, cy, colour)`` draws a caption. Given the characters'
    box, half the frames reach over the plate's top and bottom strips up to near the characters
    (as US dealer frames hide the state name and slogan), their text close to the characters.
    The frame's text suits ``country`` (:func:`captions_for`)."""
    H, W = plate.shape[:2]
    ml, mr = (int(H * u.uniform(0.04, 0.45)) for _ in range(2))
    mt, mb = (int(H * u.uniform(0.05, 0.55)) for _ in range(2))
    frame = record("frame", u() < frame_p)
    if frame:
        ft = max(1, int(H * u.uniform(0.04, 0.09)))
        fb = max(ft, int(H * u.uniform(0.06, 0.22)))
        ftop = max(ft, int(H * u.uniform(0.04, 0.16)))
        ml, mr, mt, mb = ml + ft, mr + ft, mt + ftop, mb + fb
    out_h, out_w = H + mt + mb, W + ml + mr
    body = np.array(u.choice(BODY_COLOURS), np.float32) * u.uniform(0.8, 1.15)
    shade = np.linspace(u.uniform(0.75, 1.2), u.uniform(0.6, 1.1), out_h, dtype=np.float32)
    column = np.clip(body[None, None, :] * shade[:, None, None], 0, 255).astype(np.uint8)  # out_h x 1 x 3
    canvas = cv2.resize(column, (out_w, out_h), interpolation=cv2.INTER_NEAREST)  # the column repeated
    for _ in range(int(u.uniform(0, 3))):  # body creases / bumper edges
        y = int(u() * out_h)
        col = tuple(float(v) for v in np.clip(body * u.uniform(0.3, 1.5), 0, 255))
        cv2.line(canvas, (0, y), (out_w - 1, y + int(u.uniform(-0.1, 0.1) * out_h)), col,
                 max(1, int(H * u.uniform(0.01, 0.05))), cv2.LINE_AA)
    # The recess: a darker, blurred rectangle a little larger than the plate.
    rec = np.zeros((out_h, out_w), np.float32)
    g = max(1, int(H * 0.06))
    cv2.rectangle(rec, (ml - g, mt - g), (ml + W + g, mt + H + 2 * g), 1.0, -1)
    k = 2 * max(1, int(H * 0.05)) + 1
    rec = cv2.GaussianBlur(rec, (k, k), 0) * u.uniform(0.2, 0.6)
    out = canvas
    blend_towards(out, np.zeros_like(out), rec)
    out[mt : mt + H, ml : ml + W] = plate
    if frame:
        col = u.choice(FRAME_COLOURS)
        lap = max(1, int(H * 0.015))  # the frame overlaps the plate's edge, never its characters
        lap_t = lap_b = lap
        if text_box is not None and u() < 0.5:  # a deep frame, up to near the characters
            _, by0, _, by1 = text_box
            keep = max(1, int(H * 0.03))
            lap_t = max(lap, int((by0 - keep) * u.uniform(0.4, 1.0)))
            lap_b = max(lap, int((H - by1 - keep) * u.uniform(0.4, 1.0)))
        x0, y0, x1, y1 = ml - ft, mt - ftop, ml + W + ft, mt + H + fb
        cv2.rectangle(out, (x0, y0), (x1 - 1, mt + lap_t - 1), col, -1)
        cv2.rectangle(out, (x0, mt + H - lap_b), (x1 - 1, y1 - 1), col, -1)
        cv2.rectangle(out, (x0, y0), (ml + lap - 1, y1 - 1), col, -1)
        cv2.rectangle(out, (ml + W - lap, y0), (x1 - 1, y1 - 1), col, -1)
        ink = (235, 235, 235) if sum(col) < 300 else (25, 25, 25)
        bot, top = fb + lap_b - lap, ftop + lap_t - lap  # visible bar heights
        if bot >= 5 and u() < 0.7:
            put_text(out, u.choice(captions_for(country)), bot * u.uniform(0.55, 0.75), W * 0.85, ml + W / 2,
                     mt + H - lap_b + (fb + lap_b) / 2, ink)
        if top >= 5 and u() < 0.4:
            put_text(out, u.choice(captions_for(country)), top * u.uniform(0.5, 0.7), W * 0.75, ml + W / 2,
                     y0 + (ftop + lap_t) / 2, ink)
    return out
