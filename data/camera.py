"""Capture effects of other cameras, for robustness by design (issue 24, item 3).

Each is an albumentations ``ImageOnlyTransform`` on the training pipeline's output-size image
(e.g. 32x128), switched on by its probability in ``data.camera_effects`` (data/transforms.py
places them). They randomise broadly what real cameras vary instead of imitating one real set:

- ``false_colour``: the frame remapped through its luminance to a random colour pair (any
  background/character pair, light characters on dark included), inverted, green/amber
  infrared, greyscale or a strong colour cast;
- ``tiny``: a far camera's crop, 14-24 px high, upscaled back (nearest, linear or cubic);
- ``compression``: heavy JPEG (quality 5-30) and/or video-like 8x8 block quantisation after a
  chroma subsample;
- ``interlace``: one field shifted sideways (combing) or line-doubled;
- ``halo``: strong unsharp-mask halos and/or halation (bloom) around bright areas;
- ``occlusion``: a thin bar, a small blob, a piece of frame or car at an edge, or neighbouring
  small text at the top or bottom edge; never more than a small part of any character;
- ``exposure``: strong over- or under-exposure with clipped highlights or shadows, backed off
  until the frame keeps at least a third of its contrast (the text stays);
- ``geometry``: rotation up to 15 degrees, shear and perspective, the whole frame kept and
  stretched back to the input size, as a detector's axis-aligned box of a tilted plate is.

Five more are effects of their own, outside that mix: ``invert`` (reversed polarity), ``bend``
(a bowed plate or a wide lens's radial distortion), ``ghost`` (a faint shifted copy of the frame),
``soft`` (strong blur, often with the contrast lowered) and ``rand_conv`` (the frame through a random
convolution: textures and colour mixes no camera list names).

Every effect keeps the shape (HxWx3 uint8) and takes its random draws from the pipeline's
seeded generator (``self.py_random``). On a 64x224 image each of the mix costs 0.01-0.28 ms of CPU
time on one core, geometry (one warp) and compression the dearest (docs/synth.md, "Camera effects
of other cameras"); ``rand_conv`` (nine filters) 0.6 ms.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import albumentations as A
import cv2
import numpy as np

from data.images import MIN_CONTRAST, colour_luma, warp_corners

_INTERPOLATIONS = (cv2.INTER_NEAREST, cv2.INTER_LINEAR, cv2.INTER_CUBIC)


def _luma(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def _std(img: np.ndarray) -> float:
    """The standard deviation over all pixels and channels (cv2: a tenth of numpy's time)."""
    return float(cv2.meanStdDev(img.reshape(-1, 1))[1][0, 0])


class FalseColour(A.ImageOnlyTransform):
    """The frame through a camera's colour processing: a duotone (the luminance mapped onto a
    random pair of colours at least ``min_gap`` luminance levels apart, either one the darker),
    inverted polarity, green or amber infrared, greyscale, or a strong per-channel colour cast."""

    MODES = ("duotone", "inverted", "infrared", "grey", "cast")
    WEIGHTS = (0.35, 0.15, 0.2, 0.15, 0.15)

    def __init__(self, min_gap: float = MIN_CONTRAST, p: float = 1.0):
        super().__init__(p=p)
        self.min_gap = min_gap

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("min_gap",)

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        r = self.py_random
        mode = r.choices(self.MODES, self.WEIGHTS)[0]
        if mode == "inverted":
            return 255 - img
        if mode == "cast":
            gains = np.array([r.uniform(0.55, 1.35) for _ in range(3)], np.float32)
            offsets = np.array([r.uniform(-25, 25) for _ in range(3)], np.float32)
            return np.clip(img.astype(np.float32) * gains + offsets, 0, 255).astype(np.uint8)
        luma = _luma(img)
        lo, hi = 0.0, 255.0
        if mode != "grey" and r.random() < 0.5:  # a camera's auto gain: the frame's range stretched
            lo, hi = float(luma.min()), max(float(luma.max()), float(luma.min()) + 1.0)
        t = np.clip((np.arange(256, dtype=np.float32) - lo) / (hi - lo), 0.0, 1.0)
        if mode == "grey":
            dark, light = np.zeros(3, np.float32), np.full(3, 255.0, np.float32)
        elif mode == "infrared":  # a monochrome sensor shown through a green or amber tint
            tint = np.array((0.55, 1.0, 0.55) if r.random() < 0.6 else (1.0, 0.75, 0.35), np.float32)
            dark, light = tint * r.uniform(0, 40), tint * r.uniform(190, 255)
            t = t ** r.uniform(0.6, 1.4)
        else:
            dark, light = self._colour_pair()
        lut = dark[None, :] + (light - dark)[None, :] * t[:, None]  # 256 x 3
        lut = np.clip(lut, 0, 255).astype(np.uint8).reshape(1, 256, 3)
        return cv2.LUT(cv2.merge([luma] * 3), lut)

    def _colour_pair(self) -> tuple[np.ndarray, np.ndarray]:
        """(what the dark end maps to, what the light end maps to): any two colours, far enough
        apart in luminance to keep the text; half of the time the light end is the darker colour,
        so dark characters on a light plate become light characters on a dark one."""
        r = self.py_random
        for _ in range(20):
            a = np.array([r.uniform(0, 255) for _ in range(3)], np.float32)
            b = np.array([r.uniform(0, 255) for _ in range(3)], np.float32)
            if abs(colour_luma(a) - colour_luma(b)) >= self.min_gap:
                break
        else:  # rare: fall back to a grey pair
            a, b = np.full(3, 30.0, np.float32), np.full(3, 220.0, np.float32)
        return (a, b) if r.random() < 0.5 else (b, a)


class TinyCapture(A.ImageOnlyTransform):
    """A far camera's crop: the frame shrunk (``INTER_AREA``) to ``height`` rows (its width by
    the same factor, +-15 %), then upscaled back with nearest, linear or cubic interpolation."""

    def __init__(self, height: tuple[int, int] = (14, 24), p: float = 1.0):
        super().__init__(p=p)
        self.height = height

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("height",)

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        r = self.py_random
        H, W = img.shape[:2]
        h = min(H, r.randint(*self.height))
        w = min(W, max(8, round(W * h / H * r.uniform(0.85, 1.15))))
        small = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (W, H), interpolation=r.choice(_INTERPOLATIONS))


def _dct_matrix(n: int = 8) -> np.ndarray:
    k = np.arange(n)[:, None]
    m = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m.astype(np.float32)


_DCT8 = _dct_matrix()
# JPEG's luminance table (ITU T.81, Annex K): coarse steps for high frequencies.
_QUANT = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], np.float32)


@functools.lru_cache(maxsize=32)
def _quant_grid(bh: int, bw: int) -> np.ndarray:
    return np.tile(_QUANT, (bh, bw))


def _blockwise(y: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``d @ block @ d.T`` for every 8x8 block of ``y`` (its sides multiples of 8), as two
    matrix products over the whole image rather than hundreds of small ones."""
    h, w = y.shape
    rows = (y.reshape(-1, 8) @ d.T).reshape(h // 8, 8, w)  # along x, then along y:
    return np.matmul(d, rows).reshape(h, w)


def block_quantise(img: np.ndarray, scale: float, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """A video codec's blocks: chroma at half resolution, luma quantised in 8x8 DCT blocks (JPEG's
    table times ``scale``) on a grid shifted by ``offset`` (a crop rarely starts on a block)."""
    H, W = img.shape[:2]
    ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)
    small = cv2.resize(ycc, (max(1, W // 2), max(1, H // 2)), interpolation=cv2.INTER_AREA)
    out = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)  # chroma subsampled; luma next
    oy, ox = offset
    ph, pw = (-(H + oy)) % 8, (-(W + ox)) % 8
    y = cv2.copyMakeBorder(ycc[..., 0], oy, ph, ox, pw, cv2.BORDER_REPLICATE).astype(np.float32) - 128.0
    q = _quant_grid(y.shape[0] // 8, y.shape[1] // 8) * np.float32(scale)
    y = _blockwise(np.round(_blockwise(y, _DCT8) / q) * q, _DCT8.T)
    out[..., 0] = np.clip(y[oy:oy + H, ox:ox + W] + 128.0, 0, 255)
    return cv2.cvtColor(out, cv2.COLOR_YCrCb2RGB)


class HeavyCompression(A.ImageOnlyTransform):
    """Heavy JPEG (quality 5-30), video-like block quantisation after a chroma subsample (blocks
    of 8 or, for a crop upscaled from the video frame, 12-16 output pixels), or both; skipped
    where it would leave under ``keep`` of the frame's contrast (standard deviation)."""

    def __init__(self, keep: float = 0.6, p: float = 1.0):
        super().__init__(p=p)
        self.keep = keep

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("keep",)

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        r = self.py_random
        mode = r.random()
        out = img
        if mode >= 0.45:  # blocks alone (0.35) or blocks then JPEG (0.2)
            H, W = img.shape[:2]
            s = r.choice((1.0, 1.0, 1.5, 2.0))
            small = out if s == 1.0 else cv2.resize(out, (round(W / s), round(H / s)), interpolation=cv2.INTER_AREA)
            small = block_quantise(small, r.uniform(1.5, 5.0), (r.randrange(8), r.randrange(8)))
            out = small if s == 1.0 else cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
        if mode < 0.45 or mode >= 0.8:
            ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, r.randint(5, 30)])
            out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else out
        # A faint plate quantised flat has no text left: keep the frame as it came then.
        return out if _std(out) >= self.keep * _std(img) else img


class Interlace(A.ImageOnlyTransform):
    """A field-captured video frame: one field (every other row) shifted 1-4 px sideways (at 128 px wide) (the
    plate moved between fields), or the frame line-doubled from one field."""

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        r = self.py_random
        start = r.randint(0, 1)
        if r.random() < 0.6:
            dx = r.choice((-1, 1)) * r.randint(1, max(1, round(img.shape[1] / 32)))  # 1-4 px at 128 wide
            field = img[start::2]
            out = img.copy()
            out[start::2] = np.roll(field, dx, axis=1)
            if dx > 0:  # the rolled-in columns: the edge repeated, not the other side
                out[start::2, :dx] = field[:, :1]
            else:
                out[start::2, dx:] = field[:, -1:]
        else:  # every row taken from the nearest row of one field above it
            src = (np.arange(img.shape[0]) - start) // 2 * 2 + start
            last = start + (img.shape[0] - 1 - start) // 2 * 2
            out = img[np.clip(src, start, last)]
        return out


class Halo(A.ImageOnlyTransform):
    """A camera's processing around edges and light: strong unsharp-mask sharpening (bright and dark
    halos along strokes), halation (bright areas bloom into their surroundings), or both."""

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        # uint8 throughout (cv2 saturates): a third of the float version's time.
        r = self.py_random
        mode = r.random()
        H = img.shape[0]
        out = img
        if mode < 0.7:  # sharpening alone (0.4) or with bloom (0.3)
            amount = r.uniform(1.0, 3.0)
            blur = cv2.GaussianBlur(out, (0, 0), r.uniform(0.8, 2.0) * H / 32)
            out = cv2.addWeighted(out, 1 + amount, blur, -amount, 0)
        if mode >= 0.4:
            # Only what stands out blooms: never a frame that is bright all over (over-exposed).
            mean, std = (float(v[0, 0]) for v in cv2.meanStdDev(_luma(out)))
            t = max(r.uniform(150, 210), mean + std)
            bright = cv2.subtract(out, (t, t, t, 0))
            # The wide blur at a quarter of the size (the same look, a tenth of the time).
            W4, H4 = max(1, img.shape[1] // 4), max(1, H // 4)
            small = cv2.resize(bright, (W4, H4), interpolation=cv2.INTER_AREA)
            small = cv2.GaussianBlur(small, (0, 0), r.uniform(0.5, 1.25) * H / 32)
            bloom = cv2.resize(small, (img.shape[1], H), interpolation=cv2.INTER_LINEAR)
            bloomed = cv2.addWeighted(out, 1.0, bloom, r.uniform(0.8, 2.0), 0)
            if _std(bloomed) >= 0.5 * _std(out):  # the bloom must not wash the text out
                out = bloomed
        return out


class PartialOcclusion(A.ImageOnlyTransform):
    """Something in front of the plate or beside it, hiding at most a small part of any character:
    a thin bar (a tow hitch, a wire), a small blob (mud, a leaf), a piece of frame or car along one
    edge, or neighbouring small text cut by the top or bottom edge (loose crops)."""

    KINDS = ("bar", "blob", "edge", "text")
    _GLYPHS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        r = self.py_random
        H, W = img.shape[:2]
        out = img.copy()
        colour = tuple(float(r.randint(0, 255)) for _ in range(3))
        kind = r.choice(self.KINDS)
        if kind == "bar":  # thin: under a fifth of a character's width, or a line across
            t = max(1, round(r.uniform(0.01, 0.025) * W))
            if r.random() < 0.6:
                x = r.randint(0, W - 1)
                tilt = r.uniform(-0.15, 0.15) * H
                cv2.line(out, (round(x - tilt), 0), (round(x + tilt), H - 1), colour, t, cv2.LINE_AA)
            else:
                y = r.randint(0, H - 1)
                t = max(1, round(r.uniform(0.03, 0.07) * H))
                cv2.line(out, (0, y), (W - 1, round(y + r.uniform(-0.1, 0.1) * H)), colour, t, cv2.LINE_AA)
        elif kind == "blob":  # at most ~a third of one character's area
            cx, cy = r.randint(0, W - 1), r.randint(0, H - 1)
            axes = (max(1, round(r.uniform(0.04, 0.12) * H)), max(1, round(r.uniform(0.04, 0.12) * H)))
            cv2.ellipse(out, (cx, cy), axes, r.uniform(0, 180), 0, 360, colour, -1, cv2.LINE_AA)
        elif kind == "edge":  # top/bottom up to 12 % of the height, sides up to 4 % of the width
            side = r.choice(("top", "bottom", "left", "right"))
            d = r.uniform(0.04, 0.12) * H if side in ("top", "bottom") else r.uniform(0.01, 0.04) * W
            bulge = r.uniform(-0.5, 0.5) * d  # a curved frame or bumper edge
            if side in ("top", "bottom"):
                y0 = 0 if side == "top" else H
                s = 1 if side == "top" else -1
                pts = [(0, y0), (W, y0), (W, y0 + s * d), (W // 2, y0 + s * (d + bulge)), (0, y0 + s * d)]
            else:
                x0 = 0 if side == "left" else W
                s = 1 if side == "left" else -1
                pts = [(x0, 0), (x0, H), (x0 + s * d, H), (x0 + s * (d + bulge), H // 2), (x0 + s * d, 0)]
            cv2.fillPoly(out, [np.round(np.array(pts)).astype(np.int32)], colour, cv2.LINE_AA)
        else:  # neighbouring small text, its centre at the top or bottom edge
            text = "".join(r.choice(self._GLYPHS) for _ in range(r.randint(3, 12)))
            size = r.uniform(0.18, 0.3) * H / 22.0  # glyphs ~18-30 % of the frame height
            y = round(size * 11 * r.uniform(0.3, 0.6)) if r.random() < 0.5 else H + round(size * 11 * r.uniform(0.0, 0.4))
            cv2.putText(out, text, (r.randint(-W // 4, W // 2), y), cv2.FONT_HERSHEY_SIMPLEX, size, colour,
                        max(1, round(size * 1.5)), cv2.LINE_AA)
        return out


class Invert(A.ImageOnlyTransform):
    """``invert`` (a camera effect of its own, not of the robust mix): the frame in reversed
    polarity (``255 - img``), light characters on a dark plate as infrared cameras and many plate
    designs show them, whatever colours it had, so that a reader does not depend on which of
    plate and characters is the lighter."""

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return cv2.bitwise_not(img)


class Bend(A.ImageOnlyTransform):
    """``bend`` (a camera effect of its own, not of the robust mix): smooth non-linear geometry
    that a perspective warp cannot make. A bowed or dented plate (its rows curve up or down, by up
    to ``bow`` of the frame's height, at a random place along the plate), a wide lens's barrel or
    pincushion distortion (radial, up to ``radial``), or both. The frame's edges are replicated, so
    the image keeps its size and the characters stay inside it."""

    def __init__(self, bow: float = 0.1, radial: float = 0.12, p: float = 1.0):
        super().__init__(p=p)
        self.bow, self.radial = bow, radial

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("bow", "radial")

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        r = self.py_random
        H, W = img.shape[:2]
        x = np.linspace(-1.0, 1.0, W, dtype=np.float32)[None, :]
        y = np.linspace(-1.0, 1.0, H, dtype=np.float32)[:, None]
        kind = r.random()
        dx = np.zeros((H, W), np.float32)
        dy = np.zeros((H, W), np.float32)
        if kind < 0.7:  # a bow: rows displaced by a smooth bump along the plate
            c, w = r.uniform(-0.6, 0.6), r.uniform(0.5, 1.5)
            dy += r.uniform(-self.bow, self.bow) * H * np.exp(-(((x - c) / w) ** 2))
        if kind > 0.4:  # radial lens distortion about a point near the centre, in pixels
            k = r.uniform(-self.radial, self.radial)
            R = math.hypot(W / 2, H / 2)  # the half diagonal: a corner moves by up to k * R
            px = (x * (W / 2) - r.uniform(-0.2, 0.2) * W / 2) / R
            py = (y * (H / 2) - r.uniform(-0.2, 0.2) * H / 2) / R
            rr = px * px + py * py
            dx += k * rr * px * R
            dy += k * rr * py * R
        gx = np.arange(W, dtype=np.float32)[None, :] + dx
        gy = np.arange(H, dtype=np.float32)[:, None] + dy
        return cv2.remap(img, gx, gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class Ghost(A.ImageOnlyTransform):
    """``ghost`` (a camera effect of its own, not of the robust mix): a faint shifted copy of the
    frame laid over it, as a second reflection in a windscreen or a plate cover, a video frame
    blended with its neighbour, or a moving car under a slow shutter with a flash make. The copy
    is shifted in any direction by ``shift`` of the frame's height and weighted by ``weight``; the
    frame's edges are replicated, so the image keeps its size."""

    def __init__(self, shift: tuple[float, float] = (0.03, 0.15), weight: tuple[float, float] = (0.2, 0.45),
                 p: float = 1.0):
        super().__init__(p=p)
        self.shift, self.weight = shift, weight

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("shift", "weight")

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        r = self.py_random
        H, W = img.shape[:2]
        d, a = r.uniform(*self.shift) * H, r.uniform(0.0, 2.0 * math.pi)
        M = np.float32([[1, 0, d * math.cos(a)], [0, 1, d * math.sin(a)]])
        copy = cv2.warpAffine(img, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        w = r.uniform(*self.weight)
        return cv2.addWeighted(img, 1.0 - w, copy, w, 0.0)


class Soft(A.ImageOnlyTransform):
    """``soft`` (a camera effect of its own, not of the robust mix): the soft end of focus and
    resolution that ``defocus`` (a 1-pixel disc) and the base blur (sigma up to 1) stop short of:
    a Gaussian blur of ``sigma`` pixels at 64 pixels high (scaled with the frame's height), as a
    far camera's video upscaled or a lens out of focus gives, and on half of the frames the contrast
    squeezed to ``contrast`` about the frame's mean (haze, a dirty lens or cover)."""

    def __init__(self, sigma: tuple[float, float] = (1.0, 2.0), contrast: tuple[float, float] = (0.3, 0.7),
                 p: float = 1.0):
        super().__init__(p=p)
        self.sigma, self.contrast = sigma, contrast

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("sigma", "contrast")

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        r = self.py_random
        out = cv2.GaussianBlur(img, (0, 0), r.uniform(*self.sigma) * img.shape[0] / 64.0)
        if r.random() < 0.5:
            c = r.uniform(*self.contrast)
            mean = [m * (1.0 - c) for m in cv2.mean(out)[:3]]
            out = cv2.add(out.astype(np.float32) * np.float32(c), (*mean, 0.0))
            out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
        return out


class RandConv(A.ImageOnlyTransform):
    """``rand_conv`` (a camera effect of its own, not of the robust mix): the frame through a
    random convolution, the domain-generalisation randomisation of Xu et al. (ICLR 2021,
    "Random Convolutions"): a k x k kernel (k from ``sizes``, scaled with the frame's height from
    64 pixels) mixing the three colour channels, with He-scaled Gaussian weights, so each frame gets
    local textures, edges and colour mixes of its own while shapes stay where they were. The result
    is brought to the frame's mean and contrast (one scale over all channels) and mixed with the
    frame by a weight drawn from ``mix``, so the characters always keep part of their own look."""

    def __init__(self, sizes: tuple[int, ...] = (1, 3, 5, 7), mix: tuple[float, float] = (0.0, 0.8),
                 p: float = 1.0):
        super().__init__(p=p)
        self.sizes, self.mix = sizes, mix

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("sizes", "mix")

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        r = self.py_random
        k = max(1, round(r.choice(self.sizes) * img.shape[0] / 64.0)) | 1  # odd: the kernel has a centre
        g = np.random.default_rng(r.getrandbits(32))
        weights = g.normal(0.0, 1.0 / math.sqrt(3 * k * k), (3, 3, k, k)).astype(np.float32)
        x = img.astype(np.float32)
        out = np.empty_like(x)
        for o in range(3):
            out[..., o] = sum(cv2.filter2D(x[..., i], -1, weights[o, i], borderType=cv2.BORDER_REFLECT)
                              for i in range(3))
        # The frame's mean and spread, so a kernel that happens to be weak or strong leaves a visible frame.
        out = (out - out.mean()) * (x.std() / max(float(out.std()), 1e-3)) + x.mean()
        m = r.uniform(*self.mix)
        return np.clip(out * (1.0 - m) + x * m + 0.5, 0, 255).astype(np.uint8)


class StrongExposure(A.ImageOnlyTransform):
    """Strong over-exposure (highlights clipped) or under-exposure (shadows crushed, the rest dim).
    The strength is halved until the frame keeps at least ``keep`` of its contrast (standard
    deviation): a plate and its characters never clip to the same colour. A frame that is faint
    already (standard deviation under ``faint``) is left as it is."""

    def __init__(self, keep: float = 0.35, faint: float = 20.0, p: float = 1.0):
        super().__init__(p=p)
        self.keep, self.faint = keep, faint

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("keep", "faint")

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        r = self.py_random
        std0 = _std(img)
        if std0 < self.faint:  # a faint frame already (faded, flat): clipping it would leave nothing
            return img
        over = r.random() < 0.5
        if over:
            gain, shift = r.uniform(1.6, 3.5), r.uniform(0, 60)
        else:
            gain = r.uniform(0.25, 0.6)
            shift = -r.uniform(20, 90) * gain  # (x - black level) * gain: the shadows crushed
        levels = np.arange(256, dtype=np.float32)
        for s in (1.0, 0.5, 0.25, 0.125):  # the strength, halved while too much contrast is clipped away
            g = 1 + (gain - 1) * s
            lut = np.clip(levels * g + shift * s, 0, 255).astype(np.uint8)
            out = cv2.LUT(img, lut)
            if _std(out) >= self.keep * std0 * min(g, 1.0):
                return out
        return img


class StrongGeometry(A.ImageOnlyTransform):
    """A strongly tilted plate: rotation up to ``rotate`` degrees, shear up to ``shear`` and
    perspective up to ``perspective``, after which the whole frame's bounding box is stretched back
    to the output size (with up to ``margin`` of it as border), as a detector's axis-aligned box of
    a tilted plate is resized to the model's input: nothing of the plate leaves the frame."""

    def __init__(self, rotate: float = 15.0, shear: float = 0.35, perspective: float = 0.25,
                 margin: float = 0.06, min_height: float = 0.5, p: float = 1.0):
        super().__init__(p=p)
        self.rotate, self.shear, self.perspective, self.margin = rotate, shear, perspective, margin
        self.min_height = min_height

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("rotate", "shear", "perspective", "margin", "min_height")

    def quad(self, H: int, W: int) -> np.ndarray:
        """Where the frame's corners go (TL, TR, BR, BL), centred on 0, before fitting. Angles are drawn from a triangle peaking at 0
        (mean 5 degrees of 15): strong tilts stay the rarer ones."""
        u = self.py_random.uniform
        hw, hh = W / 2, H / 2
        yaw, pitch = u(-self.perspective, self.perspective), u(-self.perspective, self.perspective) * 0.6
        pts = [(-hw * (1 + pitch), -hh * (1 + yaw)), (hw * (1 + pitch), -hh * (1 - yaw)),
               (hw * (1 - pitch), hh * (1 - yaw)), (-hw * (1 - pitch), hh * (1 + yaw))]
        s = u(-self.shear, self.shear)
        a = math.radians(self.py_random.triangular(-self.rotate, self.rotate, 0.0))
        return _tilt(pts, s, a)

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        r = self.py_random
        H, W = img.shape[:2]
        q = self.quad(H, W)
        mx, my = (r.uniform(0, self.margin) for _ in range(2))
        # A wide frame tilted strongly is squeezed in height when fitted back: past ``min_height``
        # of the frame's height the characters get too small to read, so the tilt is halved then.
        unit = np.array([[-W / 2, -H / 2], [W / 2, -H / 2], [W / 2, H / 2], [-W / 2, H / 2]], np.float32)
        for _ in range(4):
            if H * (1 - 2 * my) / float(np.ptp(q[:, 1])) >= self.min_height:
                break
            q = (q + unit) / 2
        lo, hi = q.min(axis=0), q.max(axis=0)
        # Fit the quad's bounding box into the frame, inset by the margin on each side.
        sx, sy = W * (1 - 2 * mx) / (hi[0] - lo[0]), H * (1 - 2 * my) / (hi[1] - lo[1])
        fit = np.stack([(q[:, 0] - lo[0]) * sx + W * mx, (q[:, 1] - lo[1]) * sy + H * my], axis=1)
        src = np.array([[0, 0], [W, 0], [W, H], [0, H]], np.float32)
        M = cv2.getPerspectiveTransform(src, fit.astype(np.float32))
        return warp_corners(img, M, (W, H), cv2.BORDER_REPLICATE)


def _tilt(pts: list[tuple[float, float]], shear: float, angle: float) -> np.ndarray:
    ca, sa = math.cos(angle), math.sin(angle)
    return np.array([((x + shear * y) * ca - y * sa, (x + shear * y) * sa + y * ca) for x, y in pts], np.float32)


def robust_ops() -> dict[str, A.BasicTransform]:
    """A fresh transform per effect name (each at p=1; the pipeline sets the probability)."""
    return {
        "false_colour": FalseColour(), "tiny": TinyCapture(), "compression": HeavyCompression(),
        "interlace": Interlace(), "halo": Halo(), "occlusion": PartialOcclusion(),
        "exposure": StrongExposure(), "geometry": StrongGeometry(),
    }
