"""Image pipelines for plate crops, chosen by name: ``"train"`` (augment + resize) or ``"eval"`` (resize only).

:func:`build_transform` returns a callable: RGB uint8 HxWx3 array -> float32
tensor 3xHxW in [-1, 1] (``(x/255 - 0.5)/0.5``).

Speed. The geometric part (crop jitter, scale, rotation, shear, perspective
and the resize to the model's input) is ONE ``cv2.warpPerspective`` straight
to the output size (:class:`PlateWarp`); all photometric effects then run on
the small output image (e.g. 32x128), where each costs a few tens of
microseconds. Large sources are first shrunk with ``INTER_AREA`` so the warp
does not alias. The realism configs' train transform costs ~0.5 ms per 64x128 sample on one
core (``python benchmarks/data_pipeline.py --profile`` times each op); noise maps are windows of
one pre-drawn normal field (drawing them was the dearest part).

Geometry is specified forward: the plate's four corners are placed in the
output frame (loose or tight crop, rotation, perspective) and the quad is then
shrunk if needed so that it never leaves the frame by more than a small
tolerance: characters are never cut badly.

To see what a pipeline does, ``python -m tools.augment_grid`` writes a grid of samples.
"""

from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # never call home

import functools
import math
import random
from statistics import NormalDist
from typing import Any

import albumentations as A
from albumentations.augmentations.blur import functional as fblur
import cv2
import numpy as np
import torch

from data.camera import Bend, Ghost, Invert, RandConv, Soft, robust_ops
from data.camera_effects import CAMERA_EFFECTS, LIGHT_LOOKS, check_camera_effects  # noqa: F401  (re-exported)
from data.images import PAD_VALUE, adjust_input, letterbox_rect, normalize, resize_plate, warp_corners
from data.images import as_rgb as _as_rgb

PIPELINES = ("train", "eval")
_NORMAL = NormalDist()


class PlateWarp(A.ImageOnlyTransform):
    """Resize to ``height x width`` with optional random plate geometry, as one warp.

    With ``jitter=False`` it is a plain resize (``INTER_AREA`` when shrinking),
    stretched, or letterboxed when ``keep_aspect``. With ``jitter=True`` the
    plate's corners are placed in the output frame with, per sample:

    - crop jitter: each side of the plate moves inward (loose crop, up to
      ``loose`` = (x, y) fractions of the frame's width and height, showing
      surroundings) or outward (tight crop, up to ``tight`` x the frame
      height on every side -- the synthetic renderer keeps a margin of a few
      per cent of the plate height free of characters);
    - rotation up to ``rotate`` degrees, horizontal shear up to ``shear``;
    - perspective: one side taller than the other (yaw) and top wider than
      bottom (pitch), up to ``perspective``, plus corner noise;
    - a final shrink so the quad exceeds the frame by at most ``tight``.

    Surroundings outside the source are filled by replicating its border or
    with a random flat colour (or the letterbox padding when ``keep_aspect``).
    """

    def __init__(
        self,
        height: int,
        width: int,
        keep_aspect: bool = False,
        jitter: bool = False,
        loose: tuple[float, float] = (0.08, 0.15),
        tight: float = 0.04,
        rotate: float = 4.0,
        shear: float = 0.15,
        perspective: float = 0.12,
        corner_noise: float = 0.015,
        geometry_p: float = 0.8,
        p: float = 1.0,
    ):
        super().__init__(p=p)
        self.height, self.width = int(height), int(width)
        self.keep_aspect = keep_aspect
        self.jitter = jitter
        self.loose, self.tight = loose, tight
        self.rotate, self.shear, self.perspective = rotate, shear, perspective
        self.corner_noise = corner_noise
        self.geometry_p = geometry_p

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("height", "width", "keep_aspect", "jitter", "loose", "tight", "rotate", "shear",
                "perspective", "corner_noise", "geometry_p")

    # The parameters depend on the image size, so they are drawn in apply().
    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        H, W = self.height, self.width
        sh, sw = img.shape[:2]
        if self.keep_aspect:
            fx, fy, fw, fh = letterbox_rect(sh, sw, H, W)
        else:
            fx, fy, fw, fh = 0.0, 0.0, float(W), float(H)
        if not self.jitter:
            return self._resize(img, fx, fy, fw, fh)
        if self.py_random.random() >= self.geometry_p:
            quad = np.array([[fx, fy], [fx + fw, fy], [fx + fw, fy + fh], [fx, fy + fh]], np.float32)
        else:
            quad = self._random_quad(fx, fy, fw, fh)
        return self._warp(img, quad)

    def _resize(self, img: np.ndarray, fx: float, fy: float, fw: float, fh: float) -> np.ndarray:
        return resize_plate(img, self.height, self.width, self.keep_aspect)  # the ONNX path's too

    def _random_quad(self, fx: float, fy: float, fw: float, fh: float) -> np.ndarray:
        u = self.py_random.uniform
        lx, ly = self.loose
        ty = self.tight
        tx = ty * fh / fw  # the same number of pixels on every side
        # Crop jitter: inset of each side (positive = loose, negative = tight).
        x0, x1 = fx + u(-tx, lx) * fw, fx + fw - u(-tx, lx) * fw
        y0, y1 = fy + u(-ty, ly) * fh, fy + fh - u(-ty, ly) * fh
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        hw, hh = (x1 - x0) / 2, (y1 - y0) / 2
        # Perspective: yaw makes one side taller, pitch makes the top wider than the bottom.
        yaw = u(-self.perspective, self.perspective)
        pitch = u(-self.perspective, self.perspective) * 0.6
        n = self.corner_noise
        nx, ny = n * fw, n * fh
        pts = [
            (-hw * (1 + pitch) + u(-nx, nx), -hh * (1 + yaw) + u(-ny, ny)),  # top-left
            (hw * (1 + pitch) + u(-nx, nx), -hh * (1 - yaw) + u(-ny, ny)),  # top-right
            (hw * (1 - pitch) + u(-nx, nx), hh * (1 - yaw) + u(-ny, ny)),  # bottom-right
            (-hw * (1 - pitch) + u(-nx, nx), hh * (1 + yaw) + u(-ny, ny)),  # bottom-left
        ]
        # Shear (slanted view), then rotation.
        s = u(-self.shear, self.shear)
        a = math.radians(u(-self.rotate, self.rotate))
        ca, sa = math.cos(a), math.sin(a)
        pts = [((x + s * y) * ca - y * sa, (x + s * y) * sa + y * ca) for x, y in pts]
        # Never let the plate leave the frame by more than the tight tolerance: shrink the
        # quad if it is too big, and pull its (jittered) centre back inside the limits.
        lim_x, lim_y = fw / 2 * (1 + 2 * tx), fh / 2 * (1 + 2 * ty)
        ext_x = max(abs(p[0]) for p in pts)
        ext_y = max(abs(p[1]) for p in pts)
        k = min(1.0, lim_x / max(ext_x, 1e-6), lim_y / max(ext_y, 1e-6))
        room_x, room_y = max(0.0, lim_x - ext_x * k), max(0.0, lim_y - ext_y * k)
        ox = min(max(cx - (fx + fw / 2), -room_x), room_x) + fx + fw / 2
        oy = min(max(cy - (fy + fh / 2), -room_y), room_y) + fy + fh / 2
        return np.array([[x * k + ox, y * k + oy] for x, y in pts], np.float32)

    def _warp(self, img: np.ndarray, quad: np.ndarray) -> np.ndarray:
        H, W = self.height, self.width
        sh, sw = img.shape[:2]
        # Shrink big sources first by an integer factor (exact INTER_AREA, cv2's fast path; at
        # most k-1 source pixels are dropped at the right/bottom) so the bilinear warp samples
        # at most 2 source pixels per output pixel and does not alias.
        (ax, ay), (bx, by), (cx, cy), (dx, dy) = quad.tolist()
        qw = max(math.hypot(bx - ax, by - ay), math.hypot(cx - dx, cy - dy))
        qh = max(math.hypot(dx - ax, dy - ay), math.hypot(cx - bx, cy - by))
        k = int(min(sw / max(qw, 1.0), sh / max(qh, 1.0)))
        if k >= 2:
            nw, nh = sw // k, sh // k
            img = cv2.resize(img[: nh * k, : nw * k], (nw, nh), interpolation=cv2.INTER_AREA)
            sh, sw = nh, nw
        src = np.array([[0, 0], [sw, 0], [sw, sh], [0, sh]], np.float32)
        M = cv2.getPerspectiveTransform(src, quad)
        if self.keep_aspect:
            border, value = cv2.BORDER_CONSTANT, PAD_VALUE
        elif self.py_random.random() < 0.6:
            border, value = cv2.BORDER_REPLICATE, 0
        else:
            g = self.py_random.randint(0, 255)
            border = cv2.BORDER_CONSTANT
            value = tuple(min(255, max(0, g + self.py_random.randint(-30, 30))) for _ in range(3))
        return warp_corners(img, M, (W, H), border, value)


# Standard normal draws cost ~5 ns each, more than the rest of a noise effect on a small image: each
# process draws one field of them once, and every noise map is a window of it at a random offset.
# Windows of i.i.d. draws are i.i.d.; two maps that overlap are shifted against each other.
_FIELD_SIZE = 1 << 21  # 8 MiB of float32, ~70 windows of a 64x224x3 image
_field: np.ndarray | None = None


def _normal_field() -> np.ndarray:
    global _field
    if _field is None:
        _field = np.random.default_rng(0x5E2503).standard_normal(_FIELD_SIZE, dtype=np.float32)
        _field.flags.writeable = False  # windows of it are handed out: none may change it
    return _field


def _standard_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """A read-only window of the normal field, ``shape`` (at most the field's size), at an offset drawn from ``rng``."""
    field = _normal_field()
    n = math.prod(shape)
    o = int(rng.integers(0, field.size - n + 1))
    return field[o:o + n].reshape(shape)


def _noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian noise of ``sigma`` in float32 (a new array)."""
    return _standard_normal(rng, shape) * np.float32(sigma)


def _plus_noise(out: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """``out`` (float32) += ``noise`` (float32; HxW: the same on every channel), in place."""
    if noise.ndim < out.ndim:
        noise = cv2.merge((noise,) * out.shape[2])
    return cv2.add(out, noise, dst=out)


def _add_noise(img: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """uint8 image + float32 noise (see :func:`_plus_noise`), clipped and rounded to uint8."""
    out = img.astype(np.float32)
    out += 0.5  # truncation after it rounds: no bias towards dark
    return _to_uint8(_plus_noise(out, noise))


class SensorNoise(A.ImageOnlyTransform):
    """Gaussian sensor noise, ``std_range`` a fraction of 255, one map for every channel or one each
    (as ``A.GaussNoise`` with ``mean_range`` 0), drawn from the normal field: a fifth of the cost."""

    def __init__(self, std_range: tuple[float, float] = (0.02, 0.08), per_channel: bool = False, p: float = 0.5):
        super().__init__(p=p)
        self.std_range, self.per_channel = tuple(std_range), per_channel

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("std_range", "per_channel")

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        sigma = self.py_random.uniform(*self.std_range) * 255.0
        shape = img.shape if self.per_channel or img.ndim == 2 else img.shape[:2]
        return _add_noise(img, _noise(self.random_generator, shape, sigma))


class SpeckleNoise(A.ImageOnlyTransform):
    """``A.ISONoise``'s sensor speckle: a pixel's lightness (HLS) moves ``intensity`` of the way to
    white where a Poisson draw of mean (the frame's lightness spread x ``intensity``) is not zero,
    a few per cent of the pixels. Drawn from the normal field: the Poisson draw per pixel was 90 %
    of ``A.ISONoise``'s ~900 us. Its hue noise (at most 0.016 degrees) is left out: invisible."""

    def __init__(self, intensity: tuple[float, float] = (0.1, 0.4), p: float = 0.5):
        super().__init__(p=p)
        self.intensity = tuple(intensity)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("intensity",)

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        k = self.py_random.uniform(*self.intensity)
        hls = cv2.cvtColor(img.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_RGB2HLS)
        light = hls[..., 1]
        none = math.exp(-float(np.std(light)) * k)  # P(Poisson draw = 0); a draw of 2+ is rarer than 1 in 500
        # A standard normal exceeds inv_cdf(P(0)) with probability 1 - P(0): the pixels with a draw.
        hit = _standard_normal(self.random_generator, light.shape) > _NORMAL.inv_cdf(min(max(none, 1e-9), 1 - 1e-9))
        light += hit * np.float32(k) * (1.0 - light)  # ISONoise: draw x intensity x (1 - L), the draw 1
        rgb = cv2.cvtColor(hls, cv2.COLOR_HLS2RGB)
        return _to_uint8(cv2.multiply(rgb, 255.0, dst=rgb) + 0.5)


class NightLook(A.ImageOnlyTransform):
    """A night capture: an infrared camera's grey, high-contrast frame, or a dark, noisy colour one
    under sodium or LED light."""

    # Per-channel arithmetic with cv2 scalars: numpy's broadcasts over the channel axis cost ~10x.
    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        r = self.py_random
        if r.random() < 0.5:
            g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
            g = (g - 128.0) * r.uniform(1.1, 1.7) + 128.0 + r.uniform(-20.0, 30.0)
            g += _noise(self.random_generator, g.shape, r.uniform(2.0, 8.0))  # the same on every channel
            return cv2.cvtColor(_to_uint8(g), cv2.COLOR_GRAY2RGB)
        tint = np.array((1.15, 0.95, 0.7) if r.random() < 0.5 else (0.9, 0.95, 1.15), np.float32)
        gain = (np.float32(r.uniform(0.45, 0.8)) * tint).tolist()
        out = cv2.multiply(img.astype(np.float32), (*gain, 0.0))
        return _to_uint8(_plus_noise(out, _noise(self.random_generator, out.shape[:2], r.uniform(2.0, 8.0))))


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """float -> uint8, clipped to [0, 255] and truncated (as ``np.clip(x, 0, 255).astype(np.uint8)``)."""
    np.clip(x, 0, 255, out=x)
    return x.astype(np.uint8)


class Defocus(A.Defocus):
    """``A.Defocus`` with its kernel cut to where it is non-zero: albumentations convolves with a
    17x17 kernel whatever the radius, all zeros beyond the disk and its alias blur (5x5 at
    radius 1). The same kernel; the image differs by rounding (at most 1 level), at a third of the cost."""

    def apply(self, img: np.ndarray, radius: int, alias_blur: float, **params: Any) -> np.ndarray:
        if radius > 6:  # the disk reaches the 17x17 grid's border: albumentations' own kernel
            return fblur.defocus(img, radius, alias_blur)
        return fblur.convolve(img, kernel=_defocus_kernel(int(radius), float(alias_blur)))


def _defocus_kernel(radius: int, alias_blur: float) -> np.ndarray:
    """albumentations' defocus kernel (``fblur.defocus``) on the smallest grid that holds it: the
    disk, plus the reach of the alias blur (1 px for its 3x3 window, 2 for 5x5), plus as much
    again of zeros so the blur's border reflection reads zeros as on the 17x17 grid."""
    ksize = 3  # albumentations' for radius <= 8
    reach = radius + ksize // 2
    length = np.arange(-(reach + ksize // 2), reach + ksize // 2 + 1)
    x, y = np.meshgrid(length, length)
    disk = np.array((x**2 + y**2) <= radius**2, dtype=np.float32)
    disk /= np.sum(disk)
    kernel = cv2.GaussianBlur(disk, (ksize, ksize), sigmaX=alias_blur)
    m = ksize // 2
    return np.ascontiguousarray(kernel[m:-m, m:-m])


class MotionBlur(A.MotionBlur):
    """``A.MotionBlur`` with its kernel built in plain Python: the same kernels from the same draws,
    at a twentieth of the cost (albumentations dedupes the line's points with ``np.unique``, ~0.4 ms)."""

    def get_params(self) -> dict[str, Any]:
        r = self.py_random
        ksize = fblur.sample_odd_from_range(r, self.blur_limit[0], self.blur_limit[1])
        angle = r.uniform(*self.angle_range)
        direction = r.uniform(*self.direction_range)
        return {"kernel": _motion_kernel(ksize, angle, direction, self.allow_shifted, r)}


def _motion_kernel(ksize: int, angle: float, direction: float, allow_shifted: bool, r: random.Random) -> np.ndarray:
    """``fblur.create_motion_kernel``'s kernel, normalised: a line of ``ksize`` points through the
    centre at ``angle`` degrees, its extent biased forward (``direction`` > 0) or backward, shifted
    by up to a quarter of its length when ``allow_shifted`` (two draws from ``r``, as there)."""
    direction = min(max(direction, -1.0), 1.0)
    half = ksize // 2
    start, end = float(-half), float(half)
    if direction < 0:
        end = half * (1 + direction)
    elif direction > 0:
        start = -half * (1 - direction)
    dx, dy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    sx = sy = 0.0
    if allow_shifted:
        sx = r.uniform(-1, 1) * half / 2
        sy = r.uniform(-1, 1) * half / 2
    kernel = np.zeros((ksize, ksize), np.float32)
    for t in np.linspace(start, end, ksize).tolist():
        x = min(max(round(half + dx * t + sx), 0), ksize - 1)  # round half to even, as np.round
        y = min(max(round(half + dy * t + sy), 0), ksize - 1)
        kernel[y, x] = 1.0
    return kernel / kernel.sum()


class OneOf(A.OneOf):
    """``A.OneOf`` choosing with Python's random: numpy's ``choice`` with
    ``p`` cost ~15 us a call, as much as most of the choices it picks from."""

    def __call__(self, *args: Any, force_apply: bool = False, **data: Any) -> dict[str, Any]:
        if args or self.replay_mode:
            return super().__call__(*args, force_apply=force_apply, **data)
        if self.transforms_ps and (force_apply or self.py_random.random() < self.p):
            t = self.py_random.choices(self.transforms, weights=self.transforms_ps)[0]
            data = t(force_apply=True, **data)
            self._track_transform_params(t, data)
        return data


class Shadow(A.RandomShadow):
    """``A.RandomShadow`` with each polygon's darkening as one table lookup copied in under the
    polygon's mask: the same images, byte for byte, in a fifth of the time (albumentations
    repeats the mask over the channels and indexes with it)."""

    def apply(self, img: np.ndarray, vertices_list: list[np.ndarray], intensities: np.ndarray,
              **params: Any) -> np.ndarray:
        if img.dtype != np.uint8 or img.ndim != 3:
            return super().apply(img, vertices_list, intensities, **params)
        out = img.copy()
        mask = np.empty(img.shape[:2], np.uint8)
        for vertices, intensity in zip(vertices_list, intensities):
            mask.fill(0)
            cv2.fillPoly(mask, [vertices], (255,))
            lut = np.clip(_LEVELS * (1 - intensity), 0, 255).astype(np.uint8)  # albumentations' rounding
            cv2.copyTo(cv2.LUT(out, lut), mask, out)
        return out


class HueSaturationValue(A.HueSaturationValue):
    """``A.HueSaturationValue`` as a table lookup per shifted HSV channel, the tables cached: the
    same images, byte for byte, in 0.7x the time. As there, the shifts act as whole numbers (the
    hue's floored, the others truncated) and grey pixels (saturation 0) stay grey."""

    def apply(self, img: np.ndarray, hue_shift: float, sat_shift: float, val_shift: float,
              **params: Any) -> np.ndarray:
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            return super().apply(img, hue_shift, sat_shift, val_shift, **params)
        if hue_shift == 0 and sat_shift == 0 and val_shift == 0:
            return img
        hsv = list(cv2.split(cv2.cvtColor(img, cv2.COLOR_RGB2HSV)))
        if hue_shift:
            hsv[0] = cv2.LUT(hsv[0], _hue_table(math.floor(hue_shift)))
        if sat_shift:
            hsv[1] = cv2.LUT(hsv[1], _shift_table(int(sat_shift), keep_zero=True))
        if val_shift:
            hsv[2] = cv2.LUT(hsv[2], _shift_table(int(val_shift), keep_zero=False))
        return cv2.cvtColor(cv2.merge(hsv), cv2.COLOR_HSV2RGB)


@functools.lru_cache(maxsize=None)
def _hue_table(shift: int) -> np.ndarray:
    return np.mod(_LEVELS + shift, 180).astype(np.uint8)  # OpenCV's hue: 0-179


@functools.lru_cache(maxsize=None)
def _shift_table(shift: int, keep_zero: bool) -> np.ndarray:
    table = np.clip(_LEVELS + shift, 0, 255).astype(np.uint8)
    if keep_zero:
        table[0] = 0
    return table


_LEVELS = np.arange(256, dtype=np.int16)


FADED_MIN_LEVEL = 45.0  # a dark plate fades to a dark grey (its text still there), not to black


class FadedLook(A.ImageOnlyTransform):
    """A washed-out frame: contrast squeezed to 12-40 %, the whole plate darker (dusk, a dirty
    lens) or lighter (haze, over-exposure), with sensor noise: faint plates that read as grey on grey."""

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        r = self.py_random
        mean = np.array(cv2.mean(img)[:3], np.float32)  # per channel
        target = mean.mean() + (r.uniform(-90.0, -30.0) if r.random() < 0.6 else r.uniform(10.0, 50.0))
        target = min(max(target, FADED_MIN_LEVEL), 255.0 - FADED_MIN_LEVEL)  # grey on grey, never black
        # (x - mean) * c + target + (mean - mean.mean()) * 0.3, as x * c + a per-channel offset
        c = r.uniform(0.12, 0.4)
        offset = (target + (mean - mean.mean()) * 0.3 - mean * c).tolist()
        out = cv2.add(img.astype(np.float32) * np.float32(c), (*offset, 0.0))
        return _to_uint8(_plus_noise(out, _noise(self.random_generator, out.shape[:2], r.uniform(1.5, 5.0))))


class ExposureFloor(A.ImageOnlyTransform):
    """A camera's auto exposure: a frame whose brightest pixels (99th percentile) fall below
    ``floor`` is brightened until they reach it. Stacked darkening (a night or faded look, then a
    darker, flatter brightness/contrast draw) otherwise leaves black frames that still carry a
    label: a crop no detector would give, and text the model is taught to invent."""

    def __init__(self, floor: float = 60.0, p: float = 1.0):
        super().__init__(p=p)
        self.floor = floor

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("floor",)

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        # np.percentile sorts (~20x the cost of a count): when the two values it interpolates
        # between are both at or above the floor, the percentile is too; the count tells.
        n = img.size
        if int(0.99 * (n - 1)) >= n - np.count_nonzero(img >= self.floor):
            return img
        hi = float(np.percentile(img, 99))
        if hi >= self.floor:
            return img
        return np.clip(img.astype(np.float32) * (self.floor / max(hi, 1.0)), 0, 255).astype(np.uint8)


def _camera_ops() -> dict[str, A.BasicTransform]:
    ops = {
        "low_res": A.Downscale(scale_range=(0.4, 0.65),
                               interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR}),
        "defocus": Defocus(radius=(1, 1), alias_blur=(0.1, 0.3)),
        "soft": Soft(),
        "motion": MotionBlur(blur_limit=(5, 9)),
        "rain": A.RandomRain(slant_range=(-15, 15), drop_length=6, drop_width=1, blur_value=1,
                             brightness_coefficient=0.85),
        "night": NightLook(),
        "faded": FadedLook(),
        "invert": Invert(),
        "bend": Bend(),
        "ghost": Ghost(),
        "rand_conv": RandConv(),
        **robust_ops(),  # data/camera.py: the capture effects of other cameras
    }
    for name, op in ops.items():
        op.camera_effect = name  # found by camera_effect_ops (tests count how often each fires)
    return ops


def camera_effect_ops(transform: PlateTransform) -> dict[str, A.BasicTransform]:
    """{camera effect name: its op} in a transform built with ``camera_effects``."""
    found: dict[str, A.BasicTransform] = {}

    def walk(ops) -> None:
        for op in ops:
            if getattr(op, "camera_effect", None):
                found[op.camera_effect] = op
            walk(getattr(op, "transforms", ()))

    walk(transform.compose.transforms)
    return found


def _camera_optics(ops: dict[str, A.BasicTransform], effects: dict[str, float]) -> list[A.BasicTransform]:
    """The camera effects other than the light looks, each at its probability."""
    out = []
    for name in CAMERA_EFFECTS:
        p = effects.get(name, 0.0)
        if p > 0 and name not in LIGHT_LOOKS:
            ops[name].p = p
            out.append(ops[name])
    return out


def _light_look(ops: dict[str, A.BasicTransform], effects: dict[str, float]) -> list[A.BasicTransform]:
    """At most one of the light looks (night, faded, false_colour), each at its probability. They come after the
    brightness/contrast draw: a faded frame shifted by it, or a night frame faded as well, was
    clipped to one flat colour (10 of 2,000 frames at the realism configs' probabilities), an image
    with a label and no text."""
    looks = [(ops[n], effects.get(n, 0.0)) for n in LIGHT_LOOKS if effects.get(n, 0.0) > 0]
    for op, p in looks:
        op.p = p  # inside OneOf: the relative weight
    if len(looks) <= 1:
        return [op for op, _ in looks]
    return [OneOf([op for op, _ in looks], p=min(1.0, sum(p for _, p in looks)))]


def _light() -> list[A.BasicTransform]:
    return [
        Shadow(
            shadow_roi=(0, 0, 1, 1), num_shadows_limit=(1, 1), shadow_dimension=4,
            shadow_intensity_range=(0.2, 0.5), p=0.12,
        ),
        A.RandomBrightnessContrast(brightness_limit=0.3, contrast_limit=(-0.4, 0.3), p=0.5),
        A.RandomGamma(gamma_limit=(70, 140), p=0.2),
        HueSaturationValue(hue_shift_limit=6, sat_shift_limit=25, val_shift_limit=0, p=0.2),
    ]


def _sensor() -> list[A.BasicTransform]:
    return [
        OneOf(
            [
                A.GaussianBlur(blur_limit=(3, 3), sigma_limit=(0.3, 1.0), p=1.0),
                MotionBlur(blur_limit=(3, 5), p=1.0),
                A.Downscale(
                    scale_range=(0.45, 0.8),
                    interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR},
                    p=1.0,
                ),
            ],
            p=0.35,
        ),
        OneOf(
            [
                # Inside OneOf, p is the relative weight of each choice.
                SensorNoise(std_range=(0.02, 0.08), per_channel=False, p=0.45),
                SensorNoise(std_range=(0.02, 0.06), per_channel=True, p=0.35),
                SpeckleNoise(intensity=(0.1, 0.4), p=0.2),
            ],
            p=0.3,
        ),
        A.ImageCompression(quality_range=(25, 90), p=0.25),
    ]


# Where each data/camera.py effect runs (false_colour is a light look, tiny is among the optics):
# scene (before the optics), polarity and exposure (after the light look, before the auto-exposure
# floor), processing after the sensor (field capture, sharpening, then the codec).
_SCENE, _EXPOSURE, _PROCESSING = ("occlusion", "geometry", "bend"), ("invert", "exposure"), ("interlace", "halo", "compression")


def _robust(ops: dict[str, A.BasicTransform], effects: dict[str, float], names: tuple[str, ...]) -> list:
    out = []
    for name in names:
        if effects.get(name, 0.0) > 0:
            ops[name].p = effects[name]
            out.append(ops[name])
    return out


def training_effects(camera: dict[str, float]) -> list[A.BasicTransform]:
    """The training augmentation after the warp, on the output-size image, in the order
    scene -> optics -> light -> light look (night, faded, false_colour) -> polarity, exposure ->
    auto-exposure floor -> sensor (noise, JPEG) -> processing (interlace, halo, heavy compression)."""
    ops = _camera_ops()
    optics = {k: v for k, v in camera.items() if k not in (*_SCENE, *_EXPOSURE, *_PROCESSING)}
    return [*_robust(ops, camera, _SCENE), *_camera_optics(ops, optics), *_light(), *_light_look(ops, camera),
            *_robust(ops, camera, _EXPOSURE), ExposureFloor(), *_sensor(), *_robust(ops, camera, _PROCESSING)]


class PlateTransform:
    """RGB uint8 HxWx3 -> float32 tensor 3xHxW in [-1, 1]; see :func:`build_transform`.

    ``augment(img)`` gives the uint8 image before normalisation (for
    inspection). ``set_seed(seed)`` makes the random draws reproducible. In a
    DataLoader worker process that never called ``set_seed`` the random state
    is reseeded from ``torch.initial_seed()`` on first use, so workers do not
    repeat each other's augmentations.
    """

    def __init__(self, name: str, height: int, width: int, keep_aspect: bool, compose: A.Compose,
                 plain: A.Compose | None = None, stretch: bool = False, dark: bool = False,
                 grey: bool = False):
        self.name = name
        self.height, self.width = height, width
        self.keep_aspect = keep_aspect
        self.stretch = stretch
        self.dark = dark
        self.grey = grey
        self.compose = compose
        # The same pipeline without the camera effects, for the share of images that skip them
        # while a training ramp (data.synth_effects_ramp_steps) sets effects_share below 1.
        self.plain = plain
        self.effects_share = 1.0
        self._share_rng = np.random.default_rng()
        self._pid = os.getpid()
        self._seed: int | None = None

    def __repr__(self) -> str:
        return (f"PlateTransform({self.name!r}, height={self.height}, width={self.width}, "
                f"keep_aspect={self.keep_aspect}, stretch={self.stretch}, dark={self.dark}, grey={self.grey})")

    def set_seed(self, seed: int) -> None:
        seed = int(seed) & ((1 << 63) - 1)
        # One shared generator pair for all transforms (albumentations' set_random_seed would
        # give each transform an identically seeded generator: correlated draws).
        self.compose.set_random_state(np.random.default_rng(seed), random.Random(seed))
        if self.plain is not None:
            self.plain.set_random_state(np.random.default_rng(seed ^ 0x9A1), random.Random(seed ^ 0x9A1))
        self._share_rng = np.random.default_rng([seed, 0x5A4E])
        self._seed = seed
        self._pid = os.getpid()

    def augment(self, img: np.ndarray) -> np.ndarray:
        if os.getpid() != self._pid:  # forked into a worker without an explicit seed
            self.set_seed(torch.initial_seed() ^ (self._seed or 0))
        compose = self.compose
        if self.plain is not None and self.effects_share < 1.0 and self._share_rng.random() >= self.effects_share:
            compose = self.plain
        return adjust_input(compose(image=_as_rgb(img))["image"], self.stretch, self.dark, self.grey)

    def __call__(self, img: np.ndarray) -> torch.Tensor:
        return to_tensor(self.augment(img))


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> float32 3xHxW in [-1, 1]: the numpy readers' :func:`data.images.normalize`,
    so training and inference share one normalisation. Not contiguous (the crop's memory order):
    the batch's stack reorders it, cheaper in all than a copy here (docs/experiments.md)."""
    return torch.from_numpy(normalize(img))


def to_image(t: torch.Tensor) -> np.ndarray:
    """Inverse of :func:`to_tensor`: 3xHxW in [-1, 1] -> uint8 HxWx3 RGB."""
    arr = ((t.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte()
    return arr.permute(1, 2, 0).contiguous().numpy()


def build_transform(name: str, height: int, width: int, keep_aspect: bool = False,
                    camera_effects: dict[str, float] | None = None, stretch: bool = False,
                    dark: bool = False, grey: bool = False) -> PlateTransform:
    """The named pipeline: ``"train"`` (geometry + photometric augmentation, then normalise) or
    ``"eval"`` (resize -- stretched, or letterboxed when ``keep_aspect`` -- then normalise).
    ``camera_effects`` ({name: probability}, see ``CAMERA_EFFECTS``) adds camera effects to
    the training pipeline. ``stretch`` (``data.stretch_contrast``) passes each image, last,
    through ``data.images.stretch_contrast``, in training after every effect; ``dark``
    (``data.dark_text``) then turns it to dark characters on a light plate (``data.images.dark_text``);
    ``grey`` (``data.grey``) first turns it to its luma (``data.images.to_grey``)."""
    camera = check_camera_effects(camera_effects, "camera_effects")
    if name not in PIPELINES:
        raise ValueError(f"unknown transform pipeline {name!r}; choices: {', '.join(PIPELINES)}")
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be positive, got {height}x{width}")
    plain = None
    if name == "train":
        ops: list[A.BasicTransform] = [PlateWarp(height, width, keep_aspect, jitter=True),
                                       *training_effects(camera)]
        if any(p > 0 for p in camera.values()):
            plain = A.Compose([PlateWarp(height, width, keep_aspect, jitter=True), *training_effects({})],
                              is_check_shapes=False, strict=False)
    else:
        ops = [PlateWarp(height, width, keep_aspect, jitter=False)]
    compose = A.Compose(ops, is_check_shapes=False, strict=False)
    return PlateTransform(name, height, width, keep_aspect, compose, plain, stretch, dark, grey)


def spec_transform(spec: Any, name: str = "eval", camera_effects: dict[str, float] | None = None) -> PlateTransform:
    """The named pipeline at a model's input spec (``models.interface.InputSpec``: size,
    letterbox, contrast stretch, polarity, grey), as a reader of that model preprocesses
    (``"eval"``) or as training feeds it (``"train"``, with ``camera_effects``)."""
    return build_transform(name, spec.height, spec.width, spec.keep_aspect, camera_effects,
                           stretch=spec.stretch_contrast, dark=spec.dark_text, grey=spec.grey)


# --------------------------------------------------------------------------- reading views


# Test-time views of a crop: the same plate a little looser, tighter or contrast-stretched, as
# another detector or exposure would have given it. A joint reader (inference.py) reads every
# view and keeps the reading the views score highest together. The default set was chosen on
# realplates-finetune (README "Reading each crop in several views"), not on the dev set it is reported on.
READING_VIEWS: dict[str, A.BasicTransform | None] = {
    "none": None,
    "stretch": A.AutoContrast(cutoff=1, method="pil", p=1.0),  # 1 % darkest/brightest clipped
    "pad5": A.CropAndPad(percent=0.05, keep_size=False, border_mode=cv2.BORDER_REPLICATE, p=1.0),
    "pad10": A.CropAndPad(percent=0.10, keep_size=False, border_mode=cv2.BORDER_REPLICATE, p=1.0),
    "crop5": A.CropAndPad(percent=-0.05, keep_size=False, p=1.0),
}
DEFAULT_READING_VIEWS = ("none", "stretch", "pad5", "pad10", "crop5")


def check_reading_views(views: Any, key: str = "views") -> tuple[str, ...]:
    """A non-empty sequence of distinct view names (or one comma-separated string) -> a tuple."""
    if isinstance(views, str):
        views = [v.strip() for v in views.split(",") if v.strip()]
    if not isinstance(views, (list, tuple)) or not views:
        raise ValueError(f"{key} must list one or more views of {', '.join(READING_VIEWS)}, got {views!r}")
    unknown = [v for v in views if v not in READING_VIEWS]
    if unknown:
        raise ValueError(f"{key}: unknown view {unknown[0]!r}; choices: {', '.join(READING_VIEWS)}")
    if len(set(views)) != len(views):
        raise ValueError(f"{key} names a view twice: {list(views)}")
    return tuple(views)


class ViewTransform:
    """A reading view, then a model's eval preprocessing: RGB uint8 -> the model's input tensor."""

    def __init__(self, view: str, transform: Any):
        self.view = check_reading_views([view])[0]
        self.transform = transform

    def __call__(self, img: np.ndarray) -> torch.Tensor:
        op = READING_VIEWS[self.view]
        if op is not None:
            img = op(image=_as_rgb(img))["image"]
        return self.transform(img)


# --------------------------------------------------------------------------- grid command


if __name__ == "__main__":  # the old command; the grid CLI is tools/augment_grid.py now
    import runpy
    import sys

    print("python -m data.transforms is deprecated: run python -m tools.augment_grid (same flags)", file=sys.stderr)
    runpy.run_module("tools.augment_grid", run_name="__main__")
