"""What every reader shares: the :class:`Prediction` record and :class:`PlateReader`'s loop
(inputs -> RGB -> preprocessing -> batches -> predictions, an error recorded per input).

Torch-free: the ONNX reader (``inference.onnx``) builds on it alone; the PyTorch readers are in
``inference.torch_readers``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from data.images import ImageReadError, light_text, source_name, to_rgb
from data.text import Charset
from data.tokenizers import softmax
from models.interface import InputSpec, PlatePrediction, as_numpy
from models.plate_formats import char_probabilities, constrain_to_formats, read_with_format_prior


@dataclass
class Prediction(PlatePrediction):
    """One read plate, as :meth:`PlateReader.predict` returns it and ``predict.py`` writes it."""

    filename: str | None = None
    error: str | None = None

    CSV_COLUMNS: ClassVar[tuple[str, ...]] = (
        "filename", "text", "confidence", "country", "country_confidence", "rows", "error",
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
            "rows": "" if self.rows is None else str(int(self.rows)),
            "error": self.error or "",
        }


_BASE_FIELDS = tuple(f.name for f in dataclasses.fields(PlatePrediction))


# How a reader takes a crop's polarity: as given, both ways (the crop and its inverse, 255 - x,
# each read; the more confident reading kept), or auto (inverted where its characters are light,
# data.images.dark_text, as a model trained with data.dark_text reads every crop): light
# characters on a dark plate (infrared frames, many plate designs) are read by a model that
# learnt dark on light.
POLARITIES = ("given", "both", "auto")


def check_polarity(value: str, key: str = "polarity") -> str:
    v = str(value).strip().lower()
    if v not in POLARITIES:
        raise ValueError(f"{key}: expected one of {', '.join(POLARITIES)}, got {value!r}")
    return v


def dark_batch(images: Any) -> Any:
    """A preprocessed batch ``[B, 3, H, W]`` in [-1, 1] (tensor or array) with every image whose characters
    are light negated: ``data.images.dark_text`` on the model's input (255 - x is -x once normalised)."""
    pixels = np.clip((as_numpy(images) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    sign = images[:, :1, :1, :1] * 0 + 1  # [B, 1, 1, 1] ones of the batch's own kind (array, or tensor on its device)
    for i, p in enumerate(pixels):
        if light_text(np.ascontiguousarray(p)):
            sign[i] = -1
    return images * sign


def _from_model(p: PlatePrediction, filename: str | None) -> Prediction:
    return Prediction(**{k: getattr(p, k) for k in _BASE_FIELDS}, filename=filename)


def _failed(filename: str | None, error: str) -> Prediction:
    return Prediction(text="", confidence=0.0, filename=filename, error=error)


class PlateReader:
    """Input conversion, batching and result records shared by the PyTorch and ONNX Runtime readers.

    Subclasses set :attr:`transform` (RGB uint8 -> one model input: the model's eval
    preprocessing) and implement :meth:`collate`, :meth:`forward` (a batch -> raw outputs by name)
    and :meth:`decode` (outputs -> predictions).
    """

    backend: ClassVar[str] = "?"

    def __init__(self, config: dict, source: Path, batch_size: int = 64):
        # Read under a country's plate formats (models/plate_formats.py): None (off), "auto" (the
        # country head's prediction), "any" (every country's, weighed by the head) or a country code.
        self.country: str | None = None
        self.polarity = "given"  # or "both" (see POLARITIES)
        self.config = config
        self.source = Path(source)
        self.arch: str = config["arch"]
        self.charset = Charset(config["charset"])
        self.input_spec = InputSpec(**config["input"])
        self.batch_size = int(batch_size)
        self.transform: Callable[[np.ndarray], Any] | None = None  # set by each backend

    def __repr__(self) -> str:
        s = self.input_spec
        return (f"{type(self).__name__}({str(self.source)!r}, arch={self.arch!r}, "
                f"input={s.height}x{s.width}, charset={len(self.charset)} chars)")

    @property
    def input_size(self) -> str:
        """``HxW`` of the model's input (``64x128+64x224`` for a joint reader)."""
        return f"{self.input_spec.height}x{self.input_spec.width}"

    # --- what a backend provides -----------------------------------------
    def preprocess(self, rgb: np.ndarray) -> Any:
        """RGB uint8 HxWx3 -> the model's input 3xHxW (float32 in [-1, 1])."""
        return self.transform(rgb)

    @staticmethod
    def collate(inputs: list) -> Any:
        """Preprocessed images -> the batch :meth:`predict_tensor` takes."""
        return np.stack(inputs)

    def forward(self, images: Any) -> Any:  # pragma: no cover
        """The model's raw outputs for a preprocessed batch (a dict of tensors or arrays)."""
        raise NotImplementedError

    def decode(self, outputs: Any) -> list[PlatePrediction]:  # pragma: no cover
        raise NotImplementedError

    # --- shared ------------------------------------------------------------
    def predict_tensor(self, images: Any, countries: Sequence[str | None] | None = None,
                       ) -> list[PlatePrediction]:
        """Predictions for a preprocessed batch ``[B, 3, H, W]`` in [-1, 1] (the eval transform's output).

        ``countries`` (one per image) reads each plate under that country's formats, overriding
        :attr:`country` (``val.py --formats label`` passes the labels' countries). With
        :attr:`polarity` ``"both"`` the batch is read twice, as given and negated (the eval transform
        maps a crop's inverse, 255 - x, to minus its input), and each plate keeps its more confident reading;
        with ``"auto"`` the images whose characters are light are negated first (:func:`dark_batch`)."""
        if self.polarity == "auto":
            images = dark_batch(images)
        preds = self._read_tensor(images, countries)
        if self.polarity == "both":
            inverse = self._read_tensor(-images, countries)
            preds = [q if q.confidence > p.confidence else p for p, q in zip(preds, inverse)]
        return preds

    def _read_tensor(self, images: Any, countries: Sequence[str | None] | None) -> list[PlatePrediction]:
        outputs = self.forward(images)
        preds = self.decode(outputs)
        if countries is None and self.country is None:
            return preds
        if countries is None and self.country == "any":
            if outputs.get("country_logits") is None:  # no head: nothing to weigh the formats by
                return preds
            return [read_with_format_prior(p, cp, self.charset.chars, cl) for p, cp, cl in
                    zip(preds, char_probabilities(outputs), softmax(as_numpy(outputs["country_logits"])))]
        if countries is None:
            countries = [p.country if self.country == "auto" else self.country for p in preds]
        return [constrain_to_formats(p, cp, self.charset.chars, c)
                for p, cp, c in zip(preds, char_probabilities(outputs), countries)]

    def predict(
        self,
        images: Any,
        bgr: bool = False,
        batch_size: int | None = None,
        raise_errors: bool = False,
    ) -> Prediction | list[Prediction]:
        """Read plates in images (see the ``inference`` package docstring for accepted inputs).

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
            inputs, where = [], []
            for i in chunk:
                item = items[i]
                try:
                    inputs.append(self.preprocess(to_rgb(item, bgr=bgr)))
                    where.append(i)
                except (ImageReadError, ValueError, TypeError, OSError) as e:
                    if raise_errors:
                        raise
                    msg = str(e)
                    name = source_name(item)
                    if name and msg.startswith(name + ": "):
                        msg = msg[len(name) + 2:]  # the row already names the file
                    out[i] = _failed(name, msg or type(e).__name__)
            if inputs:
                for i, p in zip(where, self.predict_tensor(self.collate(inputs))):
                    out[i] = _from_model(p, source_name(items[i]))
        return out[0] if single else out  # type: ignore[return-value]

    __call__ = predict
