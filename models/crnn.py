"""CRNN-CTC: timm CNN features -> column sequence -> bidirectional RNN -> CTC head.

Sizes are derived, never configured twice:
- sequence length T = feature-map width, and the RNN input size
  (``rnn_features_num``) = channels x feature height, both read off a dummy
  forward pass of the cut backbone at the configured input size;
- the number of classes = charset size + 1 (the CTC blank).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from data.text import Charset
from data.tokenizers import CTCTokenizer
from models.backbones import TimmFeatures, check_backbone_name
from models.base import InputSpec, PlatePrediction, PlateRecognizer
from models.registry import register_model


@dataclass
class CRNNConfig:
    backbone: str = "resnet18"
    backbone_stage: int = 2  # timm feature index to cut at (resnet: 2 = layer2, stride 8)
    pretrained: bool = False  # timm weights; needs them in the local cache (never downloaded here)
    rnn_type: str = "gru"
    rnn_hidden_size: int = 128  # per direction
    rnn_layers: int = 2
    dropout: float = 0.1

    def __post_init__(self) -> None:
        check_backbone_name(self.backbone)
        if self.rnn_type not in ("gru", "lstm"):
            raise ValueError(f"model.rnn_type must be 'gru' or 'lstm', got {self.rnn_type!r}")
        for key in ("rnn_hidden_size", "rnn_layers"):
            if getattr(self, key) < 1:
                raise ValueError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")


class CTCHead(nn.Module):
    """Per-time-step classifier over blank + charset."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


@register_model("crnn")
class CRNN(PlateRecognizer):
    arch = "crnn"
    config_class = CRNNConfig

    def __init__(self, config: CRNNConfig, charset: Charset, input_spec: InputSpec):
        super().__init__(config, charset, input_spec)
        self.tokenizer = CTCTokenizer(charset)
        self.backbone = TimmFeatures(config.backbone, config.backbone_stage, config.pretrained)
        channels, feat_h, feat_w = self.backbone.output_shape(input_spec.height, input_spec.width)
        self.feature_height = feat_h
        self.sequence_length = feat_w
        self.rnn_features_num = channels * feat_h
        rnn_cls = nn.GRU if config.rnn_type == "gru" else nn.LSTM
        self.rnn = rnn_cls(
            self.rnn_features_num,
            config.rnn_hidden_size,
            num_layers=config.rnn_layers,
            bidirectional=True,
            batch_first=True,
            dropout=config.dropout if config.rnn_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = CTCHead(2 * config.rnn_hidden_size, self.tokenizer.num_classes)

    def forward(self, images: torch.Tensor, texts: list[str] | None = None) -> torch.Tensor:
        """Images [B, 3, H, W] -> logits [B, T, num_classes] (CTC needs no texts to run)."""
        f = self.backbone(images)  # [B, C, Hf, Wf]
        b, c, h, w = f.shape
        seq = f.permute(0, 3, 1, 2).reshape(b, w, c * h)  # one feature vector per column
        seq, _ = self.rnn(self.dropout(seq))
        return self.head(self.dropout(seq))

    def loss(self, outputs: torch.Tensor, batch: dict) -> torch.Tensor:
        targets, target_lengths = self.tokenizer.encode(batch["texts"])
        log_probs = F.log_softmax(outputs.float(), dim=-1).transpose(0, 1)  # [T, B, C]
        input_lengths = torch.full((outputs.shape[0],), outputs.shape[1], dtype=torch.long)
        return F.ctc_loss(
            log_probs,
            targets.to(outputs.device),
            input_lengths,
            target_lengths,
            blank=self.tokenizer.blank,
            zero_infinity=True,
        )

    def decode(self, outputs: torch.Tensor) -> list[PlatePrediction]:
        probs = outputs.float().softmax(-1)
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
                f"{self.input_spec.height}x{self.input_spec.width} (stride {self.backbone.stride}). "
                f"Widen data.image_width to at least {needed * self.backbone.stride} or cut the backbone earlier."
            )
