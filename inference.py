"""Read plates with a trained model: one API for model folders (PyTorch) and exported ONNX files.

    from inference import load_model

    reader = load_model("weights/crnn")        # a model folder, or "model.onnx" (onnxruntime)
    pred = reader.predict("crop.jpg")          # one input -> one Prediction
    preds = reader.predict([rgb_array, pil_image, "b.png"])           # a list -> a list
    preds = reader.predict(cv2.imread("c.jpg"), bgr=True)             # OpenCV images are BGR
    print(pred.text, pred.confidence, pred.error)

    joint = load_joint_model(["weights/attn", "weights/crnn"])   # two models reading together
    tta = load_model("weights/attn", views=DEFAULT_READING_VIEWS)   # one model, five views of each crop

Inputs (one, or a list of them; a 4-D array ``[N, H, W, C]`` is a list of N images):

* numpy arrays, **RGB by default** (``bgr=True`` for arrays from OpenCV, which
  are BGR/BGRA): ``HxW`` gray, ``HxWx1``, ``HxWx3``, ``HxWx4`` (alpha is
  dropped); ``uint8``, ``uint16`` (scaled by 1/256), other integer types, or
  floats in [0, 1] (or [0, 255]). Any size.
* PIL images of any size and mode (``L``, ``P``, ``RGBA``, ``I;16``, ``CMYK``, ...).
* file paths (``str`` or ``os.PathLike``), read by :func:`data.datasets.read_image_rgb`
  (grayscale, RGBA, palette and 16-bit files are converted).

Every image goes through the model's own preprocessing: its ``InputSpec``
(height, width, keep_aspect) through ``data.transforms.build_transform("eval", ...)``,
then the model runs on batches of ``batch_size``. Each result is a
:class:`Prediction`: ``text``, ``confidence``, ``char_confidences``, and
``country``, ``country_confidence``, ``lines`` (None where the model has no
classification head), plus ``filename`` (the path, when the input was a path)
and ``error`` (why the input could not be read; the other inputs are still read).

Weights are a folder written by ``save_pretrained`` (``config.json`` +
``model.safetensors``; loaded through safetensors, never unpickled) or an
``.onnx`` file written by ``export.py`` (self-contained: the model's config is in
its metadata). Pickled checkpoints (``.pt``, ``.bin``, ...) are refused.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Sequence

import numpy as np
import torch

from data.datasets import ImageReadError, read_image_rgb, to_rgb_uint8
from data.text import Charset
from data.tokenizers import CTCTokenizer
from data.transforms import DEFAULT_READING_VIEWS, ViewTransform, build_transform, check_reading_views
from models.base import CONFIG_FILE, WEIGHTS_FILE, InputSpec, PlatePrediction
from models.heads import add_class_predictions
from models.plate_formats import char_probabilities, check_country, constrain_to_formats

# The shipped default model (a save_pretrained folder), relative to the repository root.
DEFAULT_WEIGHTS = Path("weights/crnn")
REPO_ROOT = Path(__file__).resolve().parent

ONNX_FILE = "model.onnx"  # the name a model folder may hold an exported graph under
# Keys of an exported graph's metadata_props (see export.py).
ONNX_META_CONFIG = "plate_ocr.config"  # the model's config.json content
ONNX_META_GRAPH = "plate_ocr.graph"  # {"input": ..., "outputs": [...], "decoder": ...}
ONNX_INPUT = "images"

PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".tar"})


class WeightsError(ValueError):
    """A weights path is not a usable model; the message says what it is and what to pass instead."""


@dataclass
class Prediction(PlatePrediction):
    """One read plate, as :meth:`PlateReader.predict` returns it and ``predict.py`` writes it."""

    filename: str | None = None
    error: str | None = None

    CSV_COLUMNS: ClassVar[tuple[str, ...]] = (
        "filename", "text", "confidence", "country", "country_confidence", "lines", "error",
    )

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_row(self) -> dict[str, str]:
        """The CSV row: empty cells for None (no classification head, or an error)."""

        def num(x: float | None) -> str:
            return "" if x is None else f"{x:.6f}"

        return {
            "filename": self.filename or "",
            "text": self.text if self.error is None else "",
            "confidence": num(self.confidence) if self.error is None else "",
            "country": self.country or "",
            "country_confidence": num(self.country_confidence),
            "lines": "" if self.lines is None else str(int(self.lines)),
            "error": self.error or "",
        }


_BASE_FIELDS = tuple(f.name for f in dataclasses.fields(PlatePrediction))


def _from_model(p: PlatePrediction, filename: str | None) -> Prediction:
    return Prediction(**{k: getattr(p, k) for k in _BASE_FIELDS}, filename=filename)


def _failed(filename: str | None, error: str) -> Prediction:
    return Prediction(text="", confidence=0.0, filename=filename, error=error)


# --------------------------------------------------------------------------- image inputs


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


def _is_pil(x: Any) -> bool:
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
    if _is_pil(image):
        return pil_to_rgb(image)
    raise TypeError(
        f"unsupported input type {type(image).__name__}: expected a numpy array, a PIL image or a file path"
    )


def _source_name(image: Any) -> str | None:
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    name = getattr(image, "filename", None) if _is_pil(image) else None
    return name or None


# --------------------------------------------------------------------------- readers


class PlateReader:
    """Preprocessing, batching and result records shared by the PyTorch and ONNX Runtime readers.

    Subclasses implement :meth:`predict_tensor` (a preprocessed batch -> predictions).
    """

    backend: ClassVar[str] = "?"

    def __init__(self, config: dict, source: Path, batch_size: int = 64):
        # Read under a country's plate formats (models/plate_formats.py): None (off), "auto" (the
        # country head's prediction) or a country code.
        self.country: str | None = None
        self.config = config
        self.source = Path(source)
        self.arch: str = config["arch"]
        self.charset = Charset(config["charset"])
        self.input_spec = InputSpec(**config["input"])
        self.batch_size = int(batch_size)
        spec = self.input_spec
        self.transform = build_transform("eval", spec.height, spec.width, spec.keep_aspect)

    def __repr__(self) -> str:
        s = self.input_spec
        return (f"{type(self).__name__}({str(self.source)!r}, arch={self.arch!r}, "
                f"input={s.height}x{s.width}, charset={len(self.charset)} chars)")

    @property
    def input_size(self) -> str:
        """``HxW`` of the model's input (``64x128+64x224`` for a joint reader)."""
        return f"{self.input_spec.height}x{self.input_spec.width}"

    # --- what a backend provides -----------------------------------------
    def forward(self, images: torch.Tensor) -> Any:  # pragma: no cover
        """The model's raw outputs for a preprocessed batch (a dict of tensors or arrays)."""
        raise NotImplementedError

    def decode(self, outputs: Any) -> list[PlatePrediction]:  # pragma: no cover
        raise NotImplementedError

    # --- shared ------------------------------------------------------------
    @torch.inference_mode()
    def predict_tensor(self, images: torch.Tensor, countries: Sequence[str | None] | None = None,
                       ) -> list[PlatePrediction]:
        """Predictions for a preprocessed batch ``[B, 3, H, W]`` in [-1, 1] (the eval transform's output).

        ``countries`` (one per image) reads each plate under that country's formats, overriding
        :attr:`country` (``val.py --formats label`` passes the labels' countries)."""
        outputs = self.forward(images)
        preds = self.decode(outputs)
        if countries is None and self.country is None:
            return preds
        if countries is None:
            countries = [p.country if self.country == "auto" else self.country for p in preds]
        return [constrain_to_formats(p, cp, self.charset.chars, c)
                for p, cp, c in zip(preds, char_probabilities(outputs), countries)]

    def preprocess(self, rgb: np.ndarray) -> torch.Tensor:
        """RGB uint8 HxWx3 -> the model's input tensor 3xHxW."""
        return self.transform(rgb)

    @staticmethod
    def collate(tensors: list) -> Any:
        """Preprocessed images -> the batch :meth:`predict_tensor` takes."""
        return torch.stack(tensors)

    def predict(
        self,
        images: Any,
        bgr: bool = False,
        batch_size: int | None = None,
        raise_errors: bool = False,
    ) -> Prediction | list[Prediction]:
        """Read plates in images (see the module docstring for accepted inputs).

        One input (an array of 2 or 3 dimensions, a PIL image, a path) gives one
        :class:`Prediction`; a list, tuple or 4-D array gives a list, in order.
        Numpy arrays are RGB unless ``bgr=True`` (OpenCV's order). An input that
        cannot be read or converted gives a prediction with ``error`` set (and
        empty text) unless ``raise_errors``, and the others are still read.
        """
        single = not isinstance(images, (list, tuple)) and not (
            isinstance(images, np.ndarray) and images.ndim == 4
        )
        items = [images] if single else list(images)
        bs = int(batch_size or self.batch_size)
        if bs < 1:
            raise ValueError(f"batch_size must be >= 1, got {bs}")
        out: list[Prediction | None] = [None] * len(items)
        for start in range(0, len(items), bs):
            chunk = range(start, min(start + bs, len(items)))
            tensors, where = [], []
            for i in chunk:
                item = items[i]
                try:
                    tensors.append(self.preprocess(to_rgb(item, bgr=bgr)))
                    where.append(i)
                except (ImageReadError, ValueError, TypeError, OSError) as e:
                    if raise_errors:
                        raise
                    msg = str(e)
                    name = _source_name(item)
                    if name and msg.startswith(name + ": "):
                        msg = msg[len(name) + 2:]  # the row already names the file
                    out[i] = _failed(name, msg or type(e).__name__)
            if tensors:
                for i, p in zip(where, self.predict_tensor(self.collate(tensors))):
                    out[i] = _from_model(p, _source_name(items[i]))
        return out[0] if single else out  # type: ignore[return-value]

    __call__ = predict


class TorchPlateReader(PlateReader):
    """A model folder run by PyTorch (``device``: "cpu", "cuda", "cuda:1", or "auto")."""

    backend = "torch"

    def __init__(self, model, source: Path, device: str | torch.device = "cpu", batch_size: int = 64):
        super().__init__(model.to_config_dict(), source, batch_size)
        if str(device) == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> Any:
        """The model's raw outputs for a preprocessed batch: a dict (CRNN: ``logits`` [B, T, classes], ...)."""
        return self.model(images.to(self.device))

    def decode(self, outputs: Any) -> list[PlatePrediction]:
        return self.model.decode(outputs)


class JointTransform:
    """One image -> a tuple of inputs, one per member (a reading view, then that model's eval preprocessing)."""

    def __init__(self, transforms: Sequence[Callable[[np.ndarray], torch.Tensor]]):
        self.transforms = tuple(transforms)

    def __call__(self, rgb: np.ndarray) -> tuple[torch.Tensor, ...]:
        return tuple(t(rgb) for t in self.transforms)


class JointPlateReader(PlateReader):
    """Models and reading views reading together: ``weights/attn`` with ``weights/crnn``, one model
    over several views of each crop (``data.transforms.READING_VIEWS``: looser, tighter,
    contrast-stretched), or both.

    Every member (a model on a view) reads the plate; where the readings differ, every member
    scores every reading (``PlateRecognizer.text_log_prob``: CTC's sum over alignments, the
    attention decoder's teacher-forced probability) and the reading with the highest summed
    log-probability wins, a product of experts over the members' readings. Its confidence is the
    geometric mean of the members' probabilities of it (where all agree, of their confidences);
    country and rows come from the first model with a classification head, on the first view.
    """

    backend = "torch"

    def __init__(self, readers: Sequence[TorchPlateReader], views: Sequence[str] | str = ("none",)):
        views = check_reading_views(views)
        if not readers or (len(readers) == 1 and views == ("none",)):
            raise ValueError("a joint reader needs at least two models, or a view other than 'none'")
        first = readers[0]
        for r in readers:
            if not isinstance(r, TorchPlateReader):
                what = "joint reading" if len(readers) > 1 else "reading with views"
                raise WeightsError(f"{r.source}: {what} needs model folders (it scores texts with "
                                   "the PyTorch model); an exported .onnx file cannot")
            if r.charset != first.charset:
                raise WeightsError(f"{r.source} reads charset {r.charset.chars!r}, {first.source} reads "
                                   f"{first.charset.chars!r}: joint reading needs the same charset")
        super().__init__(first.config, first.source, first.batch_size)
        self.readers = list(readers)
        self.views = views
        self.members = [(r, v) for r in self.readers for v in views]
        self.arch = "+".join(r.arch for r in readers)
        self.transform = JointTransform([ViewTransform(v, r.transform) for r, v in self.members])

    @property
    def input_size(self) -> str:
        return "+".join(r.input_size for r in self.readers)

    # The formats setting lives on the models' readers ("auto" means each model's own head).
    @property
    def country(self) -> str | None:  # type: ignore[override]
        return self.readers[0].country if getattr(self, "readers", None) else None

    @country.setter
    def country(self, value: str | None) -> None:
        for r in getattr(self, "readers", ()):  # none yet while PlateReader.__init__ runs
            r.country = value

    def __repr__(self) -> str:
        views = "" if self.views == ("none",) else f", views={list(self.views)}"
        return f"JointPlateReader({', '.join(repr(r) for r in self.readers)}{views})"

    @staticmethod
    def collate(tensors: list) -> tuple[torch.Tensor, ...]:
        return tuple(torch.stack(part) for part in zip(*tensors))

    @torch.inference_mode()
    def predict_tensor(self, images: Sequence[torch.Tensor], countries: Sequence[str | None] | None = None,
                       ) -> list[PlatePrediction]:
        """``images``: one preprocessed batch per member (``JointTransform``'s output, collated)."""
        if len(images) != len(self.members):
            raise ValueError(f"expected {len(self.members)} input batches (one per model and view), "
                             f"got {len(images)}")
        readers = [r for r, _ in self.members]
        readings = [r.predict_tensor(x, countries) for r, x in zip(readers, images)]
        if not readings[0]:
            return []
        head = next((k for k, r in enumerate(readings) if r[0].country is not None or r[0].lines is not None), 0)
        cands = [list(dict.fromkeys(r[i].text for r in readings)) for i in range(len(images[0]))]
        # Every (image, reading) pair where the members disagree, scored by every member in one batch.
        pairs = [(i, t) for i, c in enumerate(cands) if len(c) > 1 for t in c]
        scores: dict[tuple[int, str], list[float]] = {}
        if pairs:
            rows = torch.tensor([i for i, _ in pairs])
            used, where = rows.unique(return_inverse=True)  # each image once per member, several texts on it
            per_member = [r.model.text_log_prob(x[used].to(r.device), [t for _, t in pairs], where).float().cpu()
                          for r, x in zip(readers, images)]
            for k, pair in enumerate(pairs):
                scores[pair] = [float(m[k]) for m in per_member]
        out = []
        for i, c in enumerate(cands):
            if len(c) == 1:  # all agree: no scoring needed
                best = c[0]
                conf = float(np.exp(np.mean([np.log(max(r[i].confidence, 1e-30)) for r in readings])))
            else:
                best = max(c, key=lambda t: sum(scores[(i, t)]))
                conf = float(np.exp(np.mean(scores[(i, best)])))
            chars = next(r[i].char_confidences for r in readings if r[i].text == best)
            first = readings[head][i]
            out.append(PlatePrediction(best, conf, chars, first.country, first.country_confidence, first.lines))
        return out


def load_joint_model(paths: Sequence[str | os.PathLike], *, device: str | torch.device = "cpu",
                     batch_size: int = 64, country: str | None = None,
                     beam_width: int | None = None, views: Sequence[str] | str = ("none",)) -> JointPlateReader:
    """A :class:`JointPlateReader` over model folders and reading views (see there); errors name
    the folder. ``beam_width`` applies to the attention models among them."""
    _check_beam_width(beam_width)
    views = check_reading_views(views)
    readers = [load_model(p, device=device, batch_size=batch_size, country=country) for p in paths]
    if beam_width is not None:
        for r in readers:  # an ONNX reader has no model: JointPlateReader refuses it below
            if isinstance(r, TorchPlateReader) and hasattr(r.model.config, "beam_width"):
                _set_beam_width(r, beam_width)
    return JointPlateReader(readers, views)


# Decoders of exported graphs, by the "decoder" entry of their metadata: (config, outputs) -> predictions.
OnnxDecoder = Callable[[dict, dict[str, np.ndarray]], list[PlatePrediction]]
ONNX_DECODERS: dict[str, OnnxDecoder] = {}


def register_onnx_decoder(name: str) -> Callable[[OnnxDecoder], OnnxDecoder]:
    def wrap(fn: OnnxDecoder) -> OnnxDecoder:
        ONNX_DECODERS[name] = fn
        return fn

    return wrap


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = x.astype(np.float32, copy=False)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@register_onnx_decoder("ctc_greedy")
def decode_ctc_greedy(config: dict, outputs: dict[str, np.ndarray]) -> list[PlatePrediction]:
    """CRNN: per-step logits [B, T, blank + charset] -> greedy CTC, the same code as ``CRNN.decode``."""
    probs = softmax(outputs["logits"])  # numpy all the way: no torch thread pool for a few small ops
    return [PlatePrediction(d.text, d.confidence, d.char_confidences)
            for d in CTCTokenizer(Charset(config["charset"])).decode_greedy(probs)]


@register_onnx_decoder("attn_argmax")
def decode_attn_argmax(config: dict, outputs: dict[str, np.ndarray]) -> list[PlatePrediction]:
    """Attention model: per-step log-probabilities [B, T, EOS + charset] -> the argmax reading up to
    EOS, the same code as ``AttnRecognizer.decode`` (the argmax was fed back inside the graph)."""
    from data.tokenizers import AttnTokenizer

    logp = outputs["log_probs"].astype(np.float32, copy=False)
    classes = torch.from_numpy(logp.argmax(-1))
    best = torch.from_numpy(np.exp(logp.max(-1)))
    return [PlatePrediction(d.text, d.confidence, d.char_confidences)
            for d in AttnTokenizer(Charset(config["charset"])).decode(classes, best)]


class OnnxPlateReader(PlateReader):
    """An ``.onnx`` file from ``export.py`` run by ONNX Runtime on the CPU.

    ``threads`` sets ONNX Runtime's intra-op threads (None: its default, one per core).
    """

    backend = "onnxruntime"

    def __init__(self, path: Path, batch_size: int = 64, threads: int | None = None,
                 providers: Sequence[str] | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if threads is not None:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(os.fspath(path), sess_options=opts,
                                           providers=list(providers or ["CPUExecutionProvider"]))
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise WeightsError(f"{path} is not a readable ONNX model: {e}") from e
        config, graph = onnx_metadata(session, path)
        if graph.get("decoder") not in ONNX_DECODERS:
            raise WeightsError(
                f"{path}: its graph needs decoder {graph.get('decoder')!r}, which this version does not "
                f"know (known: {', '.join(sorted(ONNX_DECODERS))})"
            )
        super().__init__(config, path, batch_size)
        self.session = session
        self.graph = graph
        self.decoder = ONNX_DECODERS[graph["decoder"]]
        self.input_name = graph.get("input", ONNX_INPUT)
        self.output_names = [o.name for o in session.get_outputs()]

    def forward(self, images: torch.Tensor | np.ndarray) -> dict[str, np.ndarray]:
        """The graph's outputs by name for a preprocessed batch."""
        x = images.numpy() if isinstance(images, torch.Tensor) else images
        x = np.ascontiguousarray(x, dtype=np.float32)
        return dict(zip(self.output_names, self.session.run(self.output_names, {self.input_name: x})))

    def decode(self, outputs: dict[str, np.ndarray]) -> list[PlatePrediction]:
        return add_class_predictions(self.decoder(self.config, outputs), outputs)


def onnx_metadata(session: Any, path: Path) -> tuple[dict, dict]:
    """(model config, graph description) from an exported graph's metadata_props."""
    meta = session.get_modelmeta().custom_metadata_map
    if ONNX_META_CONFIG not in meta or ONNX_META_GRAPH not in meta:
        raise WeightsError(
            f"{path} is an ONNX model but not one written by export.py: its metadata has no "
            f"{ONNX_META_CONFIG!r} (the model's config: arch, charset, input size). "
            "Export it with: python export.py --weights MODEL_FOLDER --format onnx"
        )
    try:
        config, graph = json.loads(meta[ONNX_META_CONFIG]), json.loads(meta[ONNX_META_GRAPH])
        Charset(config["charset"]), InputSpec(**config["input"]), config["arch"]  # noqa: B018 - validate
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise WeightsError(f"{path}: invalid {ONNX_META_CONFIG} metadata: {e!r}") from e
    return config, graph


# --------------------------------------------------------------------------- loading


def _looks_pickled(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head.startswith(b"PK\x03\x04") or (len(head) >= 2 and head[0] == 0x80 and head[1] <= 5)


def _pickle_refusal(path: Path) -> WeightsError:
    return WeightsError(
        f"{path} looks like a pickled PyTorch checkpoint (torch.save / .pt / .bin). This project never "
        "unpickles files (unpickling can run arbitrary code). Pass a model folder (config.json + "
        "model.safetensors, as training writes to runs/<arch>/<run>/best) or an .onnx file from export.py; "
        "to convert a checkpoint you trust, load it in your own code and call model.save_pretrained(folder)."
    )


def resolve_default_weights() -> Path:
    """``weights/crnn`` in the current folder, else in the repository; a clear error if it is missing."""
    for base in (Path.cwd(), REPO_ROOT):
        p = base / DEFAULT_WEIGHTS
        if (p / CONFIG_FILE).is_file():
            return p
    raise WeightsError(
        f"no default model at {DEFAULT_WEIGHTS}/ (it holds config.json + model.safetensors and is not in "
        "this checkout). Train one with `python train_accelerate.py --arch crnn` and pass "
        "--weights runs/crnn/<run>/best, or copy that best/ folder to weights/crnn/."
    )


def resolve_weights(path: str | os.PathLike | None) -> tuple[str, Path]:
    """``("folder", path)`` or ``("onnx", path)`` for a weights path; :class:`WeightsError` otherwise.

    Nothing is unpickled: pickled checkpoints are recognised by name and first
    bytes and refused.
    """
    if path is None:
        return "folder", resolve_default_weights()
    p = Path(path)
    if not p.exists():
        raise WeightsError(f"{p}: weights not found (expected a model folder or an .onnx file)")
    if p.is_file():
        if p.suffix.lower() == ".onnx":
            return "onnx", p
        if p.suffix.lower() in PICKLE_SUFFIXES or _looks_pickled(p):
            raise _pickle_refusal(p)
        if p.name in (CONFIG_FILE, WEIGHTS_FILE) or p.suffix.lower() == ".safetensors":
            raise WeightsError(f"{p} is one file of a model folder: pass the folder {p.parent} instead")
        raise WeightsError(
            f"{p} is not a model: expected a folder with {CONFIG_FILE} + {WEIGHTS_FILE}, or an .onnx file"
        )
    # A folder.
    if (p / CONFIG_FILE).is_file() and (p / WEIGHTS_FILE).is_file():
        return "folder", p
    if (p / ONNX_FILE).is_file():
        return "onnx", p / ONNX_FILE
    pickles = sorted(c.name for c in p.iterdir() if c.is_file() and c.suffix.lower() in PICKLE_SUFFIXES)
    onnx_files = sorted(c.name for c in p.iterdir() if c.is_file() and c.suffix.lower() == ".onnx")
    hint = ""
    if pickles:
        hint = (f" It holds {', '.join(pickles[:3])}: pickled checkpoints are never loaded here "
                "(unpickling can run arbitrary code).")
    elif onnx_files:
        hint = f" It holds {', '.join(onnx_files[:3])}: pass that file itself."
    raise WeightsError(
        f"{p} is not a model folder: expected {CONFIG_FILE} and {WEIGHTS_FILE} inside it "
        f"(as save_pretrained writes them).{hint}"
    )


def _check_beam_width(beam_width: int | None) -> None:
    if beam_width is not None and (isinstance(beam_width, bool) or not isinstance(beam_width, int) or beam_width < 1):
        raise WeightsError(f"beam_width must be an integer >= 1, got {beam_width!r}")


def _set_beam_width(reader: TorchPlateReader, beam_width: int) -> None:
    """Decode with another beam width; refused for models without beam search."""
    model = reader.model
    if not hasattr(model.config, "beam_width"):
        raise WeightsError(f"{reader.source} holds a {model.arch!r} model, which has no beam search "
                           "(beam_width is for attention models)")
    try:
        model.config = dataclasses.replace(model.config, beam_width=beam_width)
    except ValueError as e:  # e.g. nar decoding, which has no beams
        raise WeightsError(f"{reader.source}: {e}") from e
    reader.config = model.to_config_dict()


def load_model(
    path: str | os.PathLike | None = None,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
    threads: int | None = None,
    expected_arch: str | None = None,
    expected_charset: Charset | str | None = None,
    country: str | None = None,
    beam_width: int | None = None,
    views: Sequence[str] | str | None = None,
) -> PlateReader:
    """A :class:`PlateReader` for a model folder (PyTorch) or an ``.onnx`` file (ONNX Runtime).

    ``path`` None means the shipped default, ``weights/crnn``. ``expected_arch``
    / ``expected_charset`` refuse a model of another architecture or charset.
    ``threads`` applies to ONNX Runtime (intra-op threads); set PyTorch's with
    ``torch.set_num_threads``. Raises :class:`WeightsError` (a ValueError) with
    a message saying what is wrong. ``country`` reads every plate under that country's formats
    (``"auto"``: the country the model's head predicts; see ``models/plate_formats.py``).
    ``beam_width`` replaces an attention model's ``model.beam_width`` (1: greedy) for this reader.
    ``views`` (e.g. ``DEFAULT_READING_VIEWS``) reads each crop in those views and keeps the reading
    they score highest together (a :class:`JointPlateReader` over one model; model folders only).
    """
    if country is not None:
        country = check_country(country, "country")
    _check_beam_width(beam_width)
    if views is not None:
        views = check_reading_views(views)
    kind, p = resolve_weights(path)
    if isinstance(expected_charset, str):
        expected_charset = Charset(expected_charset)
    if kind == "onnx":
        if beam_width is not None:
            raise WeightsError(f"{p}: beam_width applies to PyTorch attention model folders; an exported "
                               "graph decodes as it was exported (greedy)")
        reader: PlateReader = OnnxPlateReader(p, batch_size=batch_size, threads=threads)
    else:
        from models import load_model as load_folder

        try:
            model = load_folder(p)
        except ValueError as e:
            raise WeightsError(str(e) if str(p) in str(e) else f"{p}: {e}") from e
        reader = TorchPlateReader(model, p, device=device, batch_size=batch_size)
        if beam_width is not None:
            _set_beam_width(reader, beam_width)
    if expected_arch is not None and reader.arch != expected_arch:
        raise WeightsError(f"{p} holds a {reader.arch!r} model, expected {expected_arch!r}")
    if expected_charset is not None and reader.charset != expected_charset:
        raise WeightsError(
            f"{p} reads charset {reader.charset.chars!r}, which differs from the expected "
            f"{expected_charset.chars!r}"
        )
    reader.country = country
    if views is not None and views != ("none",):
        if kind == "onnx":
            raise WeightsError(f"{p}: reading with views scores texts with the PyTorch model; pass the "
                               "model folder, not an exported .onnx file")
        return JointPlateReader([reader], views)
    return reader


# --------------------------------------------------------------------------- CSV output


def write_predictions_csv(path: str | os.PathLike, predictions: Iterable[Prediction]) -> int:
    """Write ``filename,text,confidence,country,country_confidence,lines,error``; returns the row count."""
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(Prediction.CSV_COLUMNS))
        w.writeheader()
        for p in predictions:
            w.writerow(p.to_row())
            n += 1
    return n
