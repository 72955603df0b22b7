"""The fixed degradation of the written synthetic val/test sets.

``degrade`` turns a clean render into something that looks like a plate crop from a
detector: small perspective and rotation, a loose or tight crop around the plate, a size
change, blur, noise, brightness/contrast and JPEG. Only numpy/cv2, seeded by the caller's rng.
The tight crop never goes further in than a few per cent of the plate height, which the
renderer keeps free of characters, so the label stays correct.
"""

from __future__ import annotations

import cv2
import numpy as np

MAX_TIGHT = 0.04  # at most this fraction of the plate height is cropped off a side


def degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A degraded copy of ``image`` (HxWx3 uint8 RGB); deterministic given ``rng``'s state."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 image, got {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    r = rng.random(12)

    # --- geometry: rotation, perspective, scale, margins ---------------------------------------
    angle = np.deg2rad((r[0] * 2 - 1) * 4.0)
    scale = 0.7 + 0.6 * r[1]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    c, s = np.cos(angle), np.sin(angle)
    centred = src - (w / 2, h / 2)
    dst = centred @ np.array([[c, s], [-s, c]], np.float32)
    dst += rng.uniform(-0.05, 0.05, size=(4, 2)).astype(np.float32) * h  # perspective / shear
    dst *= scale
    x_min, y_min = dst.min(axis=0)
    x_max, y_max = dst.max(axis=0)
    hs = h * scale
    tight = r[2] < 0.3
    lo, hi = (-MAX_TIGHT, 0.02) if tight else (0.0, 0.25)
    ml, mr = rng.uniform(lo, hi, size=2) * hs
    mt, mb = rng.uniform(lo, hi, size=2) * hs
    dst -= (x_min - ml, y_min - mt)
    out_w = max(8, int(round(x_max - x_min + ml + mr)))
    out_h = max(8, int(round(y_max - y_min + mt + mb)))
    edge = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    fill = np.median(edge, axis=0) if r[3] < 0.6 else rng.integers(0, 256, size=3)
    fill = tuple(int(v) for v in fill)
    m = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    interp = cv2.INTER_AREA if scale < 0.9 else cv2.INTER_LINEAR
    out = cv2.warpPerspective(image, m, (out_w, out_h), flags=interp, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=fill)

    # --- optics and sensor -------------------------------------------------------------------
    if r[4] < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), 0.3 + 0.9 * r[5])
    elif r[4] < 0.65:  # slight horizontal motion blur
        k = 3 if r[5] < 0.7 else 5
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2] = 1.0 / k
        out = cv2.filter2D(out, -1, kernel)
    alpha = 0.7 + 0.55 * r[6]
    beta = (r[7] * 2 - 1) * 35.0
    out = cv2.convertScaleAbs(out, alpha=alpha, beta=beta)
    if r[8] < 0.7:
        sigma = 1.0 + 6.0 * r[9]
        noise = rng.normal(0.0, sigma, size=out.shape).astype(np.float32)
        out = np.clip(out.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if r[10] < 0.7:
        q = int(35 + 60 * r[11])
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            out = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
    return np.ascontiguousarray(out)
