"""Images in, model input out, without torch: reading files, converting what callers pass
(numpy arrays, PIL images, paths) to RGB uint8, and the eval preprocessing.

The eval preprocessing (:func:`resize_plate` + :func:`normalize`) is the one the training-time
eval transform runs (``data.transforms.build_transform("eval", ...)`` calls
:func:`resize_plate`; ``tests/test_onnx_reader.py`` checks the two agree), so the ONNX reading
path (``inference.onnx``) reads plates exactly as training evaluated them, in numpy and OpenCV
alone.
"""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})


def image_files(root: str | os.PathLike, extensions=IMAGE_EXTENSIONS) -> list[str]:
    """The image files under folder ``root``, recursively: each folder's files sorted by name, then its
    sub-folders in name order; hidden files and folders (``.name``) left out. ``extensions`` are lower case."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [os.path.join(dirpath, name) for name in sorted(filenames)
                  if not name.startswith(".") and os.path.splitext(name)[1].lower() in extensions]
    return found


def warp_corners(img: np.ndarray, M: np.ndarray, size: tuple[int, int], border: int,
                 value: tuple[int, ...] | int = 0) -> np.ndarray:
    """Bilinear warp by ``M``, a perspective map between pixel *corners* (a plate's quad: (0, 0)
    is the top-left corner of the top-left pixel, not its centre), to ``size`` (w, h).

    cv2 maps pixel centres, so ``M`` is conjugated by a half-pixel shift. RGB goes through an
    unused fourth channel: cv2's warp of 4 channels has a vector path that 3 lack (the same
    pixels in 0.8x the time, both conversions included)."""
    M = _UNSHIFT @ M @ _SHIFT
    if img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8:
        value = (*value, 0) if isinstance(value, tuple) else value
        out = cv2.warpPerspective(cv2.cvtColor(img, cv2.COLOR_RGB2RGBA), M, size, flags=cv2.INTER_LINEAR,
                                  borderMode=border, borderValue=value)
        return cv2.cvtColor(out, cv2.COLOR_RGBA2RGB)
    return cv2.warpPerspective(img, M, size, flags=cv2.INTER_LINEAR, borderMode=border, borderValue=value)


_SHIFT = np.array([[1.0, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
_UNSHIFT = np.array([[1.0, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])


# Padding value (RGB) of the letterbox when keep_aspect=True.
PAD_VALUE = (0, 0, 0)


class DatasetError(ValueError):
    """A dataset cannot be read: the message names the file, row and column."""


class ImageReadError(DatasetError):
    """An image file is missing, unreadable or corrupt: the message names the file."""


CHECK_HINT = "python -m data.check DATASET lists every unreadable image"


# The least luma gap between a plate's background and characters that the generator's any_colours
# and the camera's false colours draw: 90 of 255 levels keep a plate readable in grey too.
MIN_CONTRAST = 90.0


def colour_luma(rgb) -> float:
    """The luma of one RGB colour (the BT.601 weights of cv2's RGB2GRAY): how light it looks."""
    return float(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])


def error_line(e: BaseException) -> str:
    """The message of ``e`` on one line. An exception re-raised by a DataLoader worker carries the
    worker's whole traceback in its message; the original message is its last line."""
    lines = [line for line in str(e).splitlines() if line.strip()]
    if len(lines) <= 1:
        return str(e).strip()
    prefix = type(e).__name__ + ": "
    return lines[-1].split(prefix, 1)[1] if prefix in lines[-1] else lines[-1]


# --------------------------------------------------------------------------- files


def to_rgb_uint8(img: np.ndarray) -> np.ndarray:
    """An image as cv2 decodes it with IMREAD_UNCHANGED (BGR order) -> RGB uint8 HxWx3."""
    if img.dtype != np.uint8:
        if img.dtype == np.uint16:
            img = (img >> 8).astype(np.uint8)
        elif np.issubdtype(img.dtype, np.floating):
            hi = 1.0 if float(np.nanmax(img)) <= 1.0 else 255.0
            img = np.clip(np.nan_to_num(img) * (255.0 / hi), 0, 255).astype(np.uint8)
        else:
            info = np.iinfo(img.dtype)
            img = np.clip(img, 0, 255 if info.bits <= 8 else info.max).astype(np.float64)
            if info.bits > 8:
                img = img * (255.0 / info.max)
            img = img.astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.ndim == 3:
        c = img.shape[2]
        if c == 1:
            return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
        if c == 2:  # gray + alpha
            return cv2.cvtColor(np.ascontiguousarray(img[:, :, 0]), cv2.COLOR_GRAY2RGB)
        if c == 3:
            return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        if c == 4:
            return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    raise ValueError(f"unsupported image shape {img.shape}")


def read_image_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB uint8 HxWx3.

    Grayscale, RGBA, 16-bit and palette images are converted. Decoding is done
    by cv2 (from bytes, so non-ASCII paths work everywhere) with a PIL
    fallback for what cv2 cannot read. EXIF orientation is not applied.
    Raises :class:`ImageReadError` naming the file if it is missing,
    unreadable or corrupt.
    """
    path = os.fspath(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise ImageReadError(f"{path}: cannot read image file: {e}") from e
    if data.size == 0:
        raise ImageReadError(f"{path}: image file is empty")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        try:
            from PIL import Image

            with Image.open(path) as im:
                im.load()
                if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                    arr = np.asarray(im).astype(np.float64)
                    arr = (arr * (255.0 / max(1.0, float(arr.max())))).astype(np.uint8)
                    img = np.ascontiguousarray(np.repeat(arr[:, :, None], 3, axis=2))
                else:
                    img = np.ascontiguousarray(np.asarray(im.convert("RGB")))
        except Exception as e:  # noqa: BLE001 - any decoder failure means a corrupt file
            raise ImageReadError(f"{path}: cannot decode image (corrupt or unsupported format): {e}") from e
        if img.size == 0:
            raise ImageReadError(f"{path}: image has zero size")
        return img
    try:
        return to_rgb_uint8(img)
    except ValueError as e:
        raise ImageReadError(f"{path}: {e}") from e


# --------------------------------------------------------------------------- what callers pass


def array_to_rgb(image: np.ndarray, bgr: bool = False) -> np.ndarray:
    """A numpy image (RGB, or BGR with ``bgr=True``; gray/3/4 channels; uint8/uint16/float) -> RGB uint8 HxWx3."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(image).__name__}")
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise ValueError(f"unsupported image dtype {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)):
        raise ValueError(
            f"unsupported image shape {image.shape}: expected HxW (gray), HxWx1, HxWx3 or HxWx4"
        )
    if image.size == 0 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"empty image of shape {image.shape}")
    if image.ndim == 3 and image.shape[2] in (3, 4) and not bgr:
        # to_rgb_uint8 takes what cv2 decodes (BGR/BGRA): swap RGB(A) into that order first.
        order = [2, 1, 0] + ([3] if image.shape[2] == 4 else [])
        image = image[:, :, order]
    return to_rgb_uint8(np.ascontiguousarray(image))


def pil_to_rgb(image: Any) -> np.ndarray:
    """A PIL image of any mode -> RGB uint8 HxWx3 (16-bit gray scaled by 1/256, like files)."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return array_to_rgb(np.asarray(image).astype(np.uint16))
    if mode == "I":  # 32-bit integer: 16-bit PNGs often open in this mode
        arr = np.asarray(image)
        if arr.size and arr.min() >= 0 and arr.max() <= 65535:
            return array_to_rgb(arr.astype(np.uint16))
        return array_to_rgb(arr.astype(np.float64) / max(1.0, float(arr.max())))
    if mode == "F":
        return array_to_rgb(np.asarray(image, dtype=np.float32))
    if mode != "RGB":
        image = image.convert("RGB")  # L, LA, P (palette, with or without transparency), RGBA, CMYK, ...
    arr = np.asarray(image)
    if arr.size == 0:
        raise ValueError(f"empty image of size {image.size}")
    return np.ascontiguousarray(arr)


def is_pil_image(x: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return False
    return isinstance(x, Image.Image)


def to_rgb(image: Any, bgr: bool = False) -> np.ndarray:
    """Any supported input (array, PIL image, path) -> RGB uint8 HxWx3. Raises on unreadable input."""
    if isinstance(image, (str, os.PathLike)):
        return read_image_rgb(image)
    if isinstance(image, np.ndarray):
        return array_to_rgb(image, bgr=bgr)
    if is_pil_image(image):
        return pil_to_rgb(image)
    raise TypeError(
        f"unsupported input type {type(image).__name__}: expected a numpy array, a PIL image or a file path"
    )


def source_name(image: Any) -> str | None:
    """The file an input came from (a path, or a PIL image opened from a file), else None."""
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    name = getattr(image, "filename", None) if is_pil_image(image) else None
    return name or None


# --------------------------------------------------------------------------- eval preprocessing


def as_rgb(img: np.ndarray) -> np.ndarray:
    """A uint8 image in RGB order with 1, 3 or 4 channels (alpha dropped), or gray -> RGB HxWx3."""
    if img.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got dtype {img.dtype}")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.ndim == 3 and img.shape[2] == 3:
        return img
    if img.ndim == 3 and img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_RGBA2RGB)
    raise ValueError(f"expected an RGB image HxWx3, got shape {img.shape}")


def letterbox_rect(src_h: int, src_w: int, height: int, width: int) -> tuple[float, float, float, float]:
    """(x0, y0, w, h) of a ``src_h x src_w`` image fitted, centred, into ``height x width``."""
    s = min(width / src_w, height / src_h)
    w, h = src_w * s, src_h * s
    return (width - w) / 2, (height - h) / 2, w, h


def resize_plate(img: np.ndarray, height: int, width: int, keep_aspect: bool = False) -> np.ndarray:
    """RGB uint8 -> ``height x width``: stretched, or letterboxed (centred on :data:`PAD_VALUE`)
    when ``keep_aspect``; ``INTER_AREA`` when shrinking, else ``INTER_LINEAR``."""
    sh, sw = img.shape[:2]
    if not keep_aspect:
        interp = cv2.INTER_AREA if (sw > width or sh > height) else cv2.INTER_LINEAR
        return cv2.resize(img, (width, height), interpolation=interp)
    _, _, fw, fh = letterbox_rect(sh, sw, height, width)
    w, h = max(1, round(fw)), max(1, round(fh))
    interp = cv2.INTER_AREA if (sw > w or sh > h) else cv2.INTER_LINEAR
    small = cv2.resize(img, (w, h), interpolation=interp)
    out = np.empty((height, width, 3), np.uint8)
    out[:] = PAD_VALUE
    x0, y0 = (width - w) // 2, (height - h) // 2
    out[y0 : y0 + h, x0 : x0 + w] = small
    return out


# stretch_contrast: the luma percentiles mapped to 0 and 255, and the least range it stretches.
STRETCH_PERCENTILES = (1.0, 99.0)
STRETCH_MIN_RANGE = 8


def stretch_contrast(img: np.ndarray) -> np.ndarray:
    """RGB uint8 with its luma's 1st to 99th percentile stretched to 0-255, the same linear map on
    every channel (colours keep their hue). Undoes a camera's exposure and contrast (night,
    infrared, haze, glare) before the model sees the plate; a near-flat image is left as it is."""
    luma = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
    cum = cv2.calcHist([luma], [0], None, [256], [0, 256]).ravel().cumsum()
    lo_p, hi_p = STRETCH_PERCENTILES
    lo = int(np.searchsorted(cum, cum[-1] * lo_p / 100.0, side="right"))
    hi = int(np.searchsorted(cum, cum[-1] * hi_p / 100.0, side="left"))
    if hi - lo < STRETCH_MIN_RANGE:
        return img
    lut = np.clip((np.arange(256, dtype=np.float32) - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)
    return cv2.LUT(img, lut)


# light_text: the share of the plate's middle (rows and columns as fractions) the polarity is
# judged on (a loose crop's car body and frame lie outside it), and the height it is judged at.
LIGHT_TEXT_REGION = ((0.2, 0.8), (0.08, 0.92))
LIGHT_TEXT_HEIGHT = 32


def light_text(img: np.ndarray) -> bool:
    """Whether a plate image shows light characters on a darker plate (infrared night frames, many
    plate designs). The middle of the plate is split into its dark and light pixels (Otsu's
    threshold on the luma); characters are the minority, so a light minority means light text.
    A near-flat middle (less than ``STRETCH_MIN_RANGE`` levels) is taken as dark text."""
    luma = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
    h, w = luma.shape
    if h > LIGHT_TEXT_HEIGHT:  # judged at one scale: the same answer for a crop and its resize
        w = max(1, round(w * LIGHT_TEXT_HEIGHT / h))
        h = LIGHT_TEXT_HEIGHT
        luma = cv2.resize(luma, (w, h), interpolation=cv2.INTER_AREA)
    (r0, r1), (c0, c1) = LIGHT_TEXT_REGION
    middle = np.ascontiguousarray(luma[int(h * r0):max(int(h * r1), int(h * r0) + 1),
                                       int(w * c0):max(int(w * c1), int(w * c0) + 1)])
    if int(middle.max()) - int(middle.min()) < STRETCH_MIN_RANGE:
        return False
    threshold, _ = cv2.threshold(middle, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return np.count_nonzero(middle > threshold) * 2 < middle.size


def dark_text(img: np.ndarray) -> np.ndarray:
    """The plate image with dark characters on a lighter plate: inverted (255 - x) where
    :func:`light_text` says its characters are light, else the image itself."""
    return 255 - img if light_text(img) else img


def to_grey(img: np.ndarray) -> np.ndarray:
    """RGB uint8 -> its luma in all three channels (the model's input keeps its shape)."""
    return cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


def adjust_input(img: np.ndarray, stretch: bool = False, dark: bool = False, grey: bool = False) -> np.ndarray:
    """The steps after the resize that a model's input may ask for, in the one order training and
    reading share: the turn to grey (:func:`to_grey`), the contrast stretch (:func:`stretch_contrast`),
    then the turn to dark text (:func:`dark_text`)."""
    if grey:
        img = to_grey(img)
    if stretch:
        img = stretch_contrast(img)
    return dark_text(img) if dark else img


_SCALE, _ONE = np.float32(2.0 / 255.0), np.float32(1.0)


def normalize(img: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 -> float32 3xHxW in [-1, 1] (as ``data.transforms.to_tensor``, in numpy)."""
    x = img.transpose(2, 0, 1).astype(np.float32)
    x *= _SCALE
    x -= _ONE
    return x


def preprocess_eval(img: np.ndarray, height: int, width: int, keep_aspect: bool = False,
                    stretch: bool = False, dark: bool = False, grey: bool = False) -> np.ndarray:
    """The eval preprocessing in numpy: RGB uint8 (gray, RGBA too) -> float32 3 x height x width in [-1, 1]
    (``stretch``, ``dark``, ``grey``: then :func:`adjust_input`)."""
    return normalize(adjust_input(resize_plate(as_rgb(img), height, width, keep_aspect), stretch, dark, grey))
