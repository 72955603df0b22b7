"""The one interface every plate-reading architecture implements.

A model is built from (model config, charset, input size); ``forward`` maps
images (and, in training, the labels, for models that need them, such as
teacher-forced decoders) to a dict of raw outputs; the base class turns
outputs and a batch into the loss (text loss + weighted country/rows loss)
and inference outputs into :class:`PlatePrediction`. ``save_pretrained`` /
``from_pretrained`` (in ``models/__init__.py``) move a self-contained folder:
``config.json`` + ``model.safetensors``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import save_file
from torch import nn

from data.files import swap_into_place
from data.text import Charset
from models.heads import add_class_predictions, classification_loss

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class InputSpec:
    """What the model expects: images resized to height x width, RGB scaled to [-1, 1]."""

    height: int
    width: int
    keep_aspect: bool = False


@dataclass
class PlatePrediction:
    text: str
    confidence: float
    char_confidences: list[float] = field(default_factory=list)
    # Filled by models with a classification head (None where the model has none).
    country: str | None = None
    country_confidence: float | None = None
    lines: int | None = None


class PlateRecognizer(nn.Module):
    """Base class: architectures subclass it and set ``arch`` and ``config_class``."""

    arch: ClassVar[str]
    config_class: ClassVar[type]

    def __init__(self, config: Any, charset: Charset, input_spec: InputSpec):
        super().__init__()
        self.config = config
        self.charset = charset
        self.input_spec = input_spec

    # --- what every architecture provides -------------------------------
    def forward(self, images: torch.Tensor, texts: list[str] | None = None,
                lines: torch.Tensor | None = None) -> dict[str, torch.Tensor]:  # pragma: no cover
        """Images [B, 3, H, W] in [-1, 1] -> a dict of outputs.

        ``texts`` and ``lines`` (rows per plate) are the labels, given in training
        only, for models that use them (teacher-forced decoders, row routing).
        Besides the text outputs, a model with a classification head returns
        ``country_logits`` [B, 28] and ``rows_logits`` [B, 2] (see ``models.heads``).
        """
        raise NotImplementedError

    def text_loss(self, outputs: dict, batch: dict) -> torch.Tensor:  # pragma: no cover
        """Scalar loss of the text outputs against ``batch["texts"]``."""
        raise NotImplementedError

    def decode_text(self, outputs: dict) -> list[PlatePrediction]:  # pragma: no cover
        """Text predictions from the outputs of ``forward(images)`` (no labels)."""
        raise NotImplementedError

    def text_log_prob(self, images: torch.Tensor, texts: list[str],
                      index: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover
        """log p(texts[i] | images[index[i]]) under this model, [len(texts)] (``-inf`` where the model
        cannot emit the text at all, e.g. longer than it reads); for combining the readings of
        several models or views. ``index`` None pairs text i with image i; with it, several texts
        share an image and the image is encoded once."""
        raise NotImplementedError

    def check_label_length(self, max_label_length: int, source: str) -> None:
        """Raise ValueError if labels of this length (worst case) cannot be read."""

    # --- shared ----------------------------------------------------------
    def loss(self, outputs: dict, batch: dict) -> torch.Tensor:
        """Text loss plus ``cls_loss_weight`` x the country and rows losses (where the model has them)."""
        loss = self.text_loss(outputs, batch)
        cls = classification_loss(outputs, batch)
        if cls is not None:
            loss = loss + self.config.cls_loss_weight * cls
        return loss

    def decode(self, outputs: dict) -> list[PlatePrediction]:
        return add_class_predictions(self.decode_text(outputs), outputs)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> list[PlatePrediction]:
        was_training = self.training
        self.eval()
        try:
            return self.decode(self(images))
        finally:
            self.train(was_training)

    def weights_from(self, source: PlateRecognizer) -> dict[str, torch.Tensor]:
        """The weights of ``source`` (same architecture, maybe another input size) fitted to this
        model, for ``load_state_dict`` (a fine-tune at a new ``data.image_height`` / ``image_width``).
        Models with input-sized parameters (learned 2D positions) resample those; others copy."""
        return source.state_dict()

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def to_config_dict(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "arch": self.arch,
            "model": dataclasses.asdict(self.config),
            "charset": self.charset.chars,
            "input": dataclasses.asdict(self.input_spec),
        }

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """Write config + safetensors weights into ``path`` atomically (temp dir, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        try:
            state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
            save_file(state, str(tmp / WEIGHTS_FILE), metadata={"arch": self.arch})
            (tmp / CONFIG_FILE).write_text(json.dumps(self.to_config_dict(), indent=2) + "\n")
            # mkdtemp makes a private folder; a model folder is as readable as any other file.
            os.chmod(tmp, 0o755)
            for f in (WEIGHTS_FILE, CONFIG_FILE):
                os.chmod(tmp / f, 0o644)
            swap_into_place(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path
