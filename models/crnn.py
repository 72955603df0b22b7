"""CRNN-CTC: timm CNN features -> column sequence -> bidirectional RNN -> CTC head.

Or PP-OCRv4's text recogniser as the features (``model.backbone: ppocrv4_rec``, models/ppocr.py)
with no RNN (``model.rnn_layers: 0``): its own neck is the sequence model, and its classifier,
cut to the charset, starts the CTC head.

Sizes are derived, never configured twice:
- sequence length T = feature-map width (x ``steps_per_column``), and the RNN input size
  (``rnn_features_num``) = channels x feature height, both read off a dummy
  forward pass of the cut backbone at the configured input size;
- the number of classes = charset size + 1 (the CTC blank).

Two-row plates: CTC reads one left-to-right sequence, so with ``row_split`` a
small row classifier (:class:`~models.heads.RowRouter`) looks at the plate
first, and a plate it calls two-row is read as its top half and bottom half
side by side (each resized to read_height x W/2). In training the label's row count
routes the plate; at inference, the router's prediction. The view is chosen
per sample with ``torch.where``, so one backbone pass serves a mixed batch
and the exported graph has no branches.

``read_height`` below the input height (e.g. 32 for 64-pixel inputs) keeps each
row of a two-row plate at full resolution: a one-row plate is scaled down to
read_height x W, a two-row plate's halves are each read_height x W/2. The
backbone, RNN and router see the same size as with a read_height-tall input,
so weights trained at that input height load unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from data.text import Charset
from data.tokenizers import CTCTokenizer
from models.backbones import create_backbone, check_backbone_name
from models.base import Capabilities, InputSpec, PlatePrediction, PlateRecognizer
from models.heads import PlateClassHead, RowRouter, ctc_log_likelihood, ctc_text_loss, rows_side_by_side
from models.registry import register_model


@dataclass
class CRNNConfig:
    backbone: str = "resnet18"
    backbone_stage: int = 2  # timm feature index to cut at (resnet: 2 = layer2, stride 8); ppocrv4_rec: unused
    pretrained: bool = False  # timm weights from the local cache (never downloaded); ppocrv4_rec: the engine's
    rnn_type: str = "gru"
    rnn_hidden_size: int = 128  # per direction
    rnn_layers: int = 2  # 0: the CTC head reads the backbone's columns directly (ppocrv4_rec's own neck)
    dropout: float = 0.1
    steps_per_column: int = 1  # CTC time steps per feature-map column (2: room for repeated characters)
    row_split: bool = True  # read two-row plates as their rows side by side, routed by a row classifier
    read_height: int | None = None  # height the backbone reads (None: the input height); see the module doc
    country_head: bool | None = None  # None: on (training turns it off when the data has no country labels)
    cls_loss_weight: float = 0.5  # weight of the country + rows losses beside the CTC loss
    cls_head_layers: int = 0  # transformer layers over the backbone's feature columns inside the country head
    label_smoothing: float = 0.0  # CTC label smoothing (models.heads.ctc_text_loss)

    def __post_init__(self) -> None:
        check_backbone_name(self.backbone)
        if self.cls_loss_weight < 0:
            raise ValueError(f"model.cls_loss_weight must be >= 0, got {self.cls_loss_weight}")
        if self.rnn_type not in ("gru", "lstm"):
            raise ValueError(f"model.rnn_type must be 'gru' or 'lstm', got {self.rnn_type!r}")
        for key in ("rnn_hidden_size", "steps_per_column"):
            if getattr(self, key) < 1:
                raise ValueError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        if self.rnn_layers < 0:
            raise ValueError(f"model.rnn_layers must be >= 0, got {self.rnn_layers}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.cls_head_layers < 0:
            raise ValueError(f"model.cls_head_layers must be >= 0, got {self.cls_head_layers}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"model.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.read_height is not None and self.read_height < 8:
            raise ValueError(f"model.read_height must be null or >= 8, got {self.read_height}")


class CTCHead(nn.Module):
    """Per-time-step classifier over blank + charset."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


@register_model("crnn")
class CRNN(PlateRecognizer):
    """Exported whole (no loop: the row router's choice is a ``Where`` per sample), as ``logits``
    [B, T, blank + charset] (+ ``rows_logits``, ``country_logits``), greedy-CTC decoded in numpy."""

    arch = "crnn"
    config_class = CRNNConfig
    text_output = "logits"
    onnx_decoder = "ctc_greedy"
    int8_refusal = None  # export.py --int8 quantises it (the GRU stays float32)
    # The router's call picks the view the whole plate is read in: quantised, its flips changed
    # 8.6 % of the readings of the shipped model (91.4 % agreement with PyTorch; 96.1 % with it in
    # float32, at about the same speed: it is ~25k parameters).
    int8_float_modules = ("router",)

    def __init__(self, config: CRNNConfig, charset: Charset, input_spec: InputSpec):
        super().__init__(config, charset, input_spec)
        self.read_height = config.read_height or input_spec.height
        if self.read_height > input_spec.height:
            raise ValueError(f"model.read_height ({config.read_height}) must not exceed data.image_height "
                             f"({input_spec.height}): it only scales plates down")
        if self.read_height != input_spec.height and not config.row_split:
            raise ValueError("model.read_height below data.image_height needs model.row_split: true "
                             "(it exists to read each row of a two-row plate at full resolution)")
        self.tokenizer = CTCTokenizer(charset)
        self.backbone = create_backbone(config.backbone, config.backbone_stage, config.pretrained)
        channels, feat_h, feat_w = self.backbone.output_shape(self.read_height, input_spec.width)
        self.feature_height = feat_h
        self.sequence_length = feat_w * config.steps_per_column
        self.rnn_features_num = channels * feat_h
        rnn_cls = nn.GRU if config.rnn_type == "gru" else nn.LSTM
        self.rnn = rnn_cls(
            self.rnn_features_num,
            config.rnn_hidden_size,
            num_layers=config.rnn_layers,
            bidirectional=True,
            batch_first=True,
            dropout=config.dropout if config.rnn_layers > 1 else 0.0,
        ) if config.rnn_layers else None
        self.dropout = nn.Dropout(config.dropout)
        head_in = 2 * config.rnn_hidden_size if self.rnn is not None else self.rnn_features_num
        self.head = CTCHead(head_in, self.tokenizer.num_classes)
        if self.rnn is None and config.pretrained and hasattr(self.backbone, "head_for"):
            # a pretrained recogniser's own classifier, cut to this charset: it starts reading
            with torch.no_grad():
                weight, bias = self.backbone.head_for(charset.chars)
                self.head.fc.weight.copy_(weight)
                self.head.fc.bias.copy_(bias)
        self.router = RowRouter(self.read_height) if config.row_split else None
        self.class_head = (PlateClassHead(channels, rows=False, dropout=config.dropout,
                                          context_layers=config.cls_head_layers)
                           if config.country_head is not False else None)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(row_router=self.router is not None, class_head=self.class_head is not None)

    def class_outputs(self) -> tuple[str, ...]:
        return ((("rows_logits",) if self.router is not None else ())
                + (("country_logits",) if self.class_head is not None else ()))

    def forward(self, images: torch.Tensor, texts: list[str] | None = None,
                rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Images [B, 3, H, W] -> ``logits`` [B, T, num_classes] (+ ``rows_logits``, ``country_logits``).

        ``rows`` (the labels' row counts) routes plates in training; without it
        the router's prediction does. CTC itself needs no texts.
        """
        out = {}
        if self.router is not None:
            one_row = images
            if images.shape[-2] != self.read_height:
                one_row = F.interpolate(images, size=(self.read_height, images.shape[-1]), mode="bilinear",
                                        align_corners=False)
            out["rows_logits"] = self.router(one_row)
            two_rows = (rows.to(images.device) == 2) if rows is not None else out["rows_logits"].argmax(-1) == 1
            images = torch.where(two_rows[:, None, None, None], rows_side_by_side(images, self.read_height),
                                 one_row)
        f = self.backbone(images)  # [B, C, Hf, Wf]
        if self.class_head is not None:
            out.update(self.class_head(f))
        _, c, h, w = f.shape
        # -1: a backbone whose traced output sizes are constants (ppocrv4_rec) still exports for any batch
        seq = f.permute(0, 3, 1, 2).reshape(-1, w, c * h)  # one feature vector per column
        if self.config.steps_per_column > 1:  # interpolated steps between columns
            seq = F.interpolate(seq.transpose(1, 2), size=self.sequence_length, mode="linear",
                                align_corners=False).transpose(1, 2)
        if self.rnn is not None:
            seq, _ = self.rnn(self.dropout(seq))
        out["logits"] = self.head(self.dropout(seq))
        return out

    def text_loss(self, outputs: dict, batch: dict) -> torch.Tensor:
        return ctc_text_loss(outputs["logits"], batch["texts"], self.tokenizer.encode, self.config.label_smoothing)

    @torch.no_grad()
    def text_log_prob(self, images: torch.Tensor, texts: list[str],
                      index: torch.Tensor | None = None) -> torch.Tensor:
        """CTC: the log of the summed probability of every alignment of the text."""
        logits = self(images)["logits"]
        if index is not None:
            logits = logits[index.to(logits.device)]
        # A text the sequence is too short for is impossible: -inf.
        return ctc_log_likelihood(logits, texts, self.tokenizer.encode)

    def decode_text(self, outputs: dict) -> list[PlatePrediction]:
        probs = outputs["logits"].float().softmax(-1)
        return [
            PlatePrediction(d.text, d.confidence, d.char_confidences)
            for d in self.tokenizer.decode_greedy(probs)
        ]

    def check_label_length(self, max_label_length: int, source: str) -> None:
        # Worst case: every character repeats its neighbour and CTC needs a blank between each.
        needed = 2 * max_label_length - 1
        if self.sequence_length < needed:
            raise ValueError(
                f"CTC sequence too short: {source} has labels of up to {max_label_length} characters, "
                f"which CTC may need {needed} time steps to emit, but backbone {self.config.backbone} "
                f"cut at stage {self.config.backbone_stage} gives {self.sequence_length} steps at input "
                f"{self.input_spec.height}x{self.input_spec.width} (stride {self.backbone.stride}, "
                f"{self.config.steps_per_column} step(s) per column). Widen data.image_width to at least "
                f"{-(-needed // self.config.steps_per_column) * self.backbone.stride}, raise "
                f"model.steps_per_column or cut the backbone earlier."
            )
