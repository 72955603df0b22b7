"""Read plates with a trained model: one API for model folders (PyTorch) and exported ONNX files.

    from inference import load_reader

    reader = load_reader("weights/crnn")       # a model folder, or "model.onnx" (onnxruntime)
    pred = reader.predict("crop.jpg")          # one input -> one Prediction
    preds = reader.predict([rgb_array, pil_image, "b.png"])           # a list -> a list
    preds = reader.predict(cv2.imread("c.jpg"), bgr=True)             # OpenCV images are BGR
    print(pred.text, pred.confidence, pred.error)

    joint = load_joint_model(["weights/attn", "weights/crnn"])   # two models reading together
    tta = load_reader("weights/attn", views=DEFAULT_READING_VIEWS)   # one model, five views of each crop

Inputs (one, or a list of them; a 4-D array ``[N, H, W, C]`` is a list of N images):

* numpy arrays, **RGB by default** (``bgr=True`` for arrays from OpenCV, which
  are BGR/BGRA): ``HxW`` gray, ``HxWx1``, ``HxWx3``, ``HxWx4`` (alpha is
  dropped); ``uint8``, ``uint16`` (scaled by 1/256), other integer types, or
  floats in [0, 1] (or [0, 255]). Any size.
* PIL images of any size and mode (``L``, ``P``, ``RGBA``, ``I;16``, ``CMYK``, ...).
* file paths (``str`` or ``os.PathLike``), read by :func:`data.images.read_image_rgb`
  (grayscale, RGBA, palette and 16-bit files are converted).

Every image goes through the model's own preprocessing: its ``InputSpec``
(height, width, keep_aspect) through the training-time eval transform
(``data.transforms.build_transform("eval", ...)``; for an ``.onnx`` file its numpy/OpenCV
equal, ``data.images.preprocess_eval``), then the model runs on batches of ``batch_size``. Each result is a
:class:`Prediction`: ``text``, ``confidence``, ``char_confidences``, and
``country``, ``country_confidence``, ``rows`` (None where the model has no
classification head), plus ``filename`` (the path, when the input was a path)
and ``error`` (why the input could not be read; the other inputs are still read).

Weights are a folder written by ``save_pretrained`` (``config.json`` +
``model.safetensors``; loaded through safetensors, never unpickled) or an
``.onnx`` file written by ``export.py`` (self-contained: the model's config is in
its metadata). Pickled checkpoints (``.pt``, ``.bin``, ...) are refused.

Reading an ``.onnx`` file imports neither torch nor albumentations: the PyTorch readers
(``TorchPlateReader``, ``JointPlateReader``) load on first use. The modules: ``readers``
(:class:`Prediction`, :class:`PlateReader`), ``torch_readers``, ``onnx`` (the metadata contract
shared with ``export.py``, :class:`OnnxPlateReader`), ``weights`` (weight resolution, pickle
refusal), ``load`` (:func:`load_reader`, :func:`load_joint_model`), ``csv_output``; input
conversion is in ``data.images``.
"""

from __future__ import annotations

from data.images import array_to_rgb, pil_to_rgb, to_rgb
from inference.csv_output import write_predictions_csv
from inference.load import check_beam_width, load_joint_model, load_reader
from inference.onnx import (ONNX_INPUT, ONNX_META_CONFIG, ONNX_META_GRAPH, ONNX_META_QUANT, OnnxPlateReader,
                            onnx_metadata)
from inference.readers import Prediction, PlateReader
from inference.weights import (DEFAULT_WEIGHTS, ONNX_FILE, PICKLE_SUFFIXES, REPO_ROOT, WeightsError,
                               resolve_default_weights, resolve_weights)

__all__ = [
    "DEFAULT_READING_VIEWS", "DEFAULT_WEIGHTS", "JointPlateReader", "JointTransform", "ONNX_FILE", "ONNX_INPUT",
    "ONNX_META_CONFIG", "ONNX_META_GRAPH", "ONNX_META_QUANT", "OnnxPlateReader", "PICKLE_SUFFIXES", "PlateReader",
    "Prediction", "REPO_ROOT", "TorchPlateReader", "WeightsError", "array_to_rgb", "check_beam_width",
    "load_joint_model", "load_reader", "onnx_metadata", "pil_to_rgb", "resolve_default_weights",
    "resolve_weights", "to_rgb", "write_predictions_csv",
]

_TORCH_READERS = ("TorchPlateReader", "JointPlateReader", "JointTransform")


def __getattr__(name: str):
    # The PyTorch readers (and the reading views, albumentations) load on first use, so that
    # reading an .onnx file imports neither torch nor albumentations.
    if name in _TORCH_READERS:
        from inference import torch_readers

        return getattr(torch_readers, name)
    if name == "DEFAULT_READING_VIEWS":
        from data.transforms import DEFAULT_READING_VIEWS

        return DEFAULT_READING_VIEWS
    raise AttributeError(f"module 'inference' has no attribute {name!r}")
