"""The torch-free half of the model interface: what a model takes (:class:`InputSpec`), what it
gives (:class:`PlatePrediction`), the files of its folder, and its classification head's
outputs read in numpy.

The ONNX reading path (``inference.onnx``) needs these and nothing that imports torch; the
PyTorch models (``models.base``) use the same definitions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from data.text import COUNTRIES, UNKNOWN_COUNTRY
from data.tokenizers import softmax

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT_VERSION = 1

# Class indices of the classification head: countries follow ``data.text.COUNTRIES``, then
# ``unknown``; rows are 1 and 2 (see ``models.heads``).
COUNTRY_CLASSES: tuple[str, ...] = COUNTRIES + (UNKNOWN_COUNTRY,)
ROW_CLASSES: tuple[int, ...] = (1, 2)


@dataclass(frozen=True)
class InputSpec:
    """What the model expects: images resized to height x width (with ``stretch_contrast``, their
    luma's 1st-99th percentile then stretched to 0-255: ``data.images.stretch_contrast``; with
    ``dark_text``, then inverted where the characters are light: ``data.images.dark_text``; with
    ``grey``, first turned to their luma in all three channels: ``data.images.to_grey``), RGB scaled to
    [-1, 1]."""

    height: int
    width: int
    keep_aspect: bool = False
    stretch_contrast: bool = False
    dark_text: bool = False
    grey: bool = False


@dataclass
class PlatePrediction:
    text: str
    confidence: float
    char_confidences: list[float] = field(default_factory=list)
    # Filled by models with a classification head (None where the model has none).
    country: str | None = None
    country_confidence: float | None = None
    rows: int | None = None  # text rows on the plate


def as_numpy(x) -> np.ndarray:
    """A torch tensor (any device or dtype) or array-like -> float32 numpy."""
    if hasattr(x, "detach"):  # a torch tensor, without importing torch
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def class_predictions(outputs: dict) -> list[dict]:
    """Per sample: ``country``, ``country_confidence``, ``rows`` from the head's logits (numpy or torch)."""
    n = None
    cols: dict[str, list] = {}
    if outputs.get("country_logits") is not None:
        p = softmax(as_numpy(outputs["country_logits"]))
        idx = p.argmax(-1)
        cols["country"] = [COUNTRY_CLASSES[i] for i in idx]
        cols["country_confidence"] = [float(p[k, i]) for k, i in enumerate(idx)]
        n = len(idx)
    if outputs.get("rows_logits") is not None:
        idx = softmax(as_numpy(outputs["rows_logits"])).argmax(-1)
        cols["rows"] = [ROW_CLASSES[i] for i in idx]
        n = len(idx)
    if n is None:
        return []
    return [{k: v[i] for k, v in cols.items()} for i in range(n)]


def add_class_predictions(preds: list, outputs: dict) -> list:
    """Set ``country``, ``country_confidence`` and ``rows`` of each prediction from ``outputs``."""
    for p, extra in zip(preds, class_predictions(outputs)):
        for k, v in extra.items():
            setattr(p, k, v)
    return preds
