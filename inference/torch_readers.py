"""Readers that run PyTorch models: one model folder (:class:`TorchPlateReader`), and models or
reading views reading together (:class:`JointPlateReader`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from data.transforms import ViewTransform, check_reading_views, spec_transform
from inference.readers import PlateReader
from inference.weights import WeightsError
from models.interface import PlatePrediction


def torch_device(device: str | torch.device) -> torch.device:
    """``device`` checked against this machine ("auto": a GPU if there is one); ValueError says what is there."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"device {str(device)!r} is not a PyTorch device (cpu, cuda, cuda:1, auto): {e}") from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0 or (dev.index or 0) >= n:
            there = f"{n} CUDA device(s)" if n else "no CUDA device"
            raise ValueError(f"device {str(device)!r}: this machine has {there}; use --device cpu or auto")
    return dev


class TorchPlateReader(PlateReader):
    """A model folder run by PyTorch (``device``: "cpu", "cuda", "cuda:1", or "auto")."""

    backend = "torch"

    def __init__(self, model, source: Path, device: str | torch.device = "cpu", batch_size: int = 64):
        super().__init__(model.to_config_dict(), source, batch_size)
        self.device = torch_device(device)
        # NHWC convolutions: 10-18 % less time per batch on CPU (docs/experiments.md, channels-last)
        self.model = model.to(self.device, memory_format=torch.channels_last).eval()
        spec = self.input_spec
        self.transform = spec_transform(spec)

    @staticmethod
    def collate(tensors: list) -> Any:
        return torch.stack(tensors)

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> Any:
        """The model's raw outputs for a preprocessed batch: a dict (CRNN: ``logits`` [B, T, classes], ...)."""
        return self.model(images.to(self.device))

    def decode(self, outputs: Any) -> list[PlatePrediction]:
        return self.model.decode(outputs)

    @torch.inference_mode()
    def predict_tensor(self, images: torch.Tensor, countries: Sequence[str | None] | None = None,
                       ) -> list[PlatePrediction]:
        return super().predict_tensor(images, countries)

    def set_beam_width(self, beam_width: int) -> None:
        """Decode with another beam width; a :class:`WeightsError` for models without beam search."""
        try:
            self.model.set_beam_width(beam_width)
        except ValueError as e:  # no beam search, or e.g. nar decoding, which has no beams
            raise WeightsError(f"{self.source}: {e}") from e
        self.config = self.model.to_config_dict()


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
        head = next((k for k, r in enumerate(readings) if r[0].country is not None or r[0].rows is not None), 0)
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
            out.append(PlatePrediction(best, conf, chars, first.country, first.country_confidence, first.rows))
        return out
