"""The one interface every plate-reading architecture implements.

A model is built from (model config, charset, input size); ``forward`` maps
images (and, in training, the labels, for models that need them, such as
teacher-forced decoders) to a dict of raw outputs; the base class turns
outputs and a batch into the loss (text loss + weighted country/rows loss)
and inference outputs into :class:`PlatePrediction`. ``save_pretrained`` /
``from_pretrained`` move a self-contained folder: ``config.json`` + ``model.safetensors``.

An architecture also declares what it can do and how it leaves PyTorch, so that the
readers and ``export.py`` need no per-architecture code: :attr:`~PlateRecognizer.capabilities`
(beam search, row router, class head), :meth:`~PlateRecognizer.export_module` (the module
``torch.onnx`` traces and its output names), :attr:`~PlateRecognizer.onnx_decoder` (the numpy
decoder of those outputs, ``data.tokenizers.NUMPY_DECODERS``) and
:attr:`~PlateRecognizer.int8_refusal` (why its graph is not quantised, or None).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file
from torch import nn

from data.files import swap_into_place
from data.text import Charset
from models.heads import classification_loss
from models.interface import (CONFIG_FILE, FORMAT_VERSION, WEIGHTS_FILE, InputSpec,  # noqa: F401
                              PlatePrediction, add_class_predictions)
from models.registry import create_model, get_model_class, list_models

def charset_words(chars: str) -> str:
    """A charset for a message: its characters, quoted, and how many."""
    return f"{chars!r} ({len(chars)} characters)"


def charset_mismatch(found: Charset, expected: Charset, found_says: str, expected_says: str) -> str | None:
    """One line saying that two charsets differ, with both (None where they are the same);
    ``found_says`` / ``expected_says`` lead each: "the model folder reads", "config.json says"."""
    if found == expected:
        return None
    return (f"charset differs: {found_says} {charset_words(found.chars)}, {expected_says} "
            f"{charset_words(expected.chars)}")


def _weights_metadata(blob: bytes) -> dict:
    """The ``__metadata__`` of a safetensors file (header: 8-byte length, then JSON); {} if none."""
    try:
        n = int.from_bytes(blob[:8], "little")
        meta = json.loads(blob[8:8 + n]).get("__metadata__") or {}
    except (ValueError, AttributeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _class_count_delta(state: dict, own: dict, n_chars: int) -> int | None:
    """How many more characters the weights ``state`` read than the model (``own``, its state, for
    ``n_chars`` characters) where every tensor that differs is a class dimension (``n_chars`` plus
    blank, EOS or padding) that differs by the same count: the mark of another charset; else None."""
    deltas = set()
    for k, v in state.items():
        if k in own and tuple(v.shape) != tuple(own[k].shape):
            if v.dim() != own[k].dim():
                return None
            diff = [(a - b, b) for a, b in zip(v.shape, own[k].shape) if a != b]
            if len(diff) != 1 or not 0 <= diff[0][1] - n_chars <= 3:
                return None
            deltas.add(diff[0][0])
    return deltas.pop() if len(deltas) == 1 else None


# Options added after format 1 folders were written: absent from an old config.json,
# they mean "the feature was not there", not the new default. (The weights must still match
# the model the config builds: a missing or unexpected tensor is an error, never skipped.)
_ABSENT_IN_OLD_FOLDERS = {"row_split": False, "country_head": False, "length_loss_weight": 0.0,
                          "ctc_loss_weight": 0.0}


@dataclass(frozen=True)
class Capabilities:
    """What a model can do beyond reading text (per model: some depend on its config)."""

    beam_search: bool = False  # decodes with several beams (set_beam_width); exported graphs are greedy
    row_router: bool = False  # a row classifier routes each plate before reading (rows_logits)
    class_head: bool = False  # a country head (country_logits, and rows_logits where it reads rows)


class OutputTuple(nn.Module):
    """``model(images)`` with no labels (the inference path), its dict as a tuple in ``names`` order:
    the module ``torch.onnx`` traces for architectures whose forward has no data-dependent loop."""

    def __init__(self, model: nn.Module, names: tuple[str, ...]):
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, images: torch.Tensor):
        out = self.model(images)
        return tuple(out[k] for k in self.names)


class PlateRecognizer(nn.Module):
    """Base class: architectures subclass it and set ``arch``, ``config_class`` (a dataclass with
    at least ``cls_loss_weight``, the weight of the country and rows losses), ``text_output`` and
    ``onnx_decoder``, and register with ``models.registry.register_model``."""

    arch: ClassVar[str]
    config_class: ClassVar[type]
    text_output: ClassVar[str]  # the key of the text scores in forward(images)'s dict
    onnx_decoder: ClassVar[str]  # a key of data.tokenizers.NUMPY_DECODERS: text_output -> texts
    # Why the exported graph is not quantised to int8 (export.py --int8), or None where it is.
    int8_refusal: ClassVar[str | None] = "not measured"
    # Submodules (attribute names) whose ops stay float32 in the int8 graph.
    int8_float_modules: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = getattr(cls.__dict__.get("config_class"), "__dataclass_fields__", None)
        if fields is not None and "cls_loss_weight" not in fields:
            raise TypeError(f"{cls.__name__}.config_class must have a cls_loss_weight field (PlateRecognizer.loss)")

    def __init__(self, config: Any, charset: Charset, input_spec: InputSpec):
        super().__init__()
        self.config = config
        self.charset = charset
        self.input_spec = input_spec

    # --- what every architecture provides -------------------------------
    def forward(self, images: torch.Tensor, texts: list[str] | None = None,
                rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:  # pragma: no cover
        """Images [B, 3, H, W] in [-1, 1] -> a dict of outputs.

        ``texts`` and ``rows`` (text rows per plate) are the labels, given in training
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

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities()

    def class_outputs(self) -> tuple[str, ...]:
        """Names of the plate-classification outputs of ``forward(images)`` (see models.heads)."""
        return ()

    # --- decoding options and export ---------------------------------------
    @property
    def beam_width(self) -> int:
        """Beams the model decodes with (1: greedy)."""
        return 1

    def set_beam_width(self, width: int) -> None:
        """Decode with ``width`` beams from now on; a ValueError for models without beam search."""
        raise ValueError(f"a {self.arch!r} model has no beam search (beam_width is for models that have it, "
                         "such as attention models)")

    def to_graph_decoding(self) -> list[str]:
        """Switch to the decoding an exported graph holds, which has no data-dependent loop end
        (``export.py``); returns a note per option changed. Beam search becomes greedy."""
        notes = []
        if self.beam_width > 1:
            notes.append(f"decodes with beam search (model.beam_width={self.beam_width}); the ONNX graph decodes "
                         "greedily (beam_width 1), as `val.py --beam 1` reads")
            self.set_beam_width(1)
        return notes

    def output_names(self) -> tuple[str, ...]:
        """The outputs of ``forward(images)`` that reading uses, in the exported graph's order."""
        return (self.text_output,) + self.class_outputs()

    def export_module(self) -> tuple[nn.Module, tuple[str, ...]]:
        """(the module ``torch.onnx`` traces: images [B, 3, H, W] -> a tuple of tensors, their names).
        ``export.py`` calls it on a float32 CPU copy in eval mode after :meth:`to_graph_decoding`."""
        names = self.output_names()
        return OutputTuple(self, names), names

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

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, expected_charset: Charset | None = None,
                        expected_arch: str | None = None) -> PlateRecognizer:
        """Load a folder written by :meth:`save_pretrained` (weights through safetensors only).

        Called on a subclass (``CRNN.from_pretrained``), the folder must hold that architecture."""
        if expected_arch is None and cls is not PlateRecognizer:
            expected_arch = cls.arch
        path = Path(path)
        cfg_file, weights = path / CONFIG_FILE, path / WEIGHTS_FILE
        if not path.is_dir() or not cfg_file.is_file() or not weights.is_file():
            raise ValueError(
                f"{path} is not a model folder: expected {CONFIG_FILE} and {WEIGHTS_FILE} inside it"
            )
        try:
            cfg = json.loads(cfg_file.read_text())
            arch, charset = cfg["arch"], Charset(cfg["charset"])
            spec = InputSpec(**cfg["input"])
            model_options = cfg["model"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{cfg_file} is not a valid model config: {e!r}") from e
        if expected_arch is not None and arch != expected_arch:
            raise ValueError(f"{path} holds a {arch!r} model, expected {expected_arch!r}")
        if expected_charset is not None and charset != expected_charset:
            raise ValueError(f"{path}: " + charset_mismatch(charset, expected_charset, "the model reads",
                                                            "the configured data.charset is"))
        # Weights come from the folder; never fetch a backbone's pretrained weights here.
        fields = get_model_class(arch).config_class.__dataclass_fields__ if arch in list_models() else {}
        old = {k: v for k, v in _ABSENT_IN_OLD_FOLDERS.items() if k in fields and k not in model_options}
        options = {**old, **model_options, **({"pretrained": False} if "pretrained" in model_options else {})}
        model = create_model(arch, options, charset, spec)
        try:
            blob = weights.read_bytes()  # read once: parsed here, hashed for the run's record
            state = load_safetensors(blob)
        except (SafetensorError, OSError) as e:
            raise ValueError(f"{weights} is not a readable safetensors file: {e}") from e
        saved = _weights_metadata(blob).get("charset")  # written since the charset was recorded there
        if saved is not None and saved != charset.chars:
            raise ValueError(f"{weights} does not match its config {cfg_file}: " + charset_mismatch(
                Charset(saved), charset, "the weights were saved for", f"{CONFIG_FILE} says"))
        delta = _class_count_delta(state, model.state_dict(), len(charset))
        if delta:  # an older weights file (no charset recorded) of another charset's size
            raise ValueError(f"{weights} does not match its config {cfg_file}: charset differs: the weights "
                             f"read {len(charset) + delta} characters, {CONFIG_FILE} says "
                             f"{charset_words(charset.chars)}")
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as e:  # tensor shapes differ from what the config builds
            raise ValueError(f"{weights} does not match its config {cfg_file}: {e}") from e
        if missing or unexpected:
            raise ValueError(
                f"{weights} does not match its config: missing {sorted(missing)[:5]}, "
                f"unexpected {sorted(unexpected)[:5]}"
            )
        model.eval()
        model.weights_sha256 = hashlib.sha256(blob).hexdigest()  # which file this is (fine-tune logs)
        return model

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
            save_file(state, str(tmp / WEIGHTS_FILE), metadata={"arch": self.arch, "charset": self.charset.chars})
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
