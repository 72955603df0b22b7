"""Shared by test_predict.py, test_export.py and test_val.py: a tiny CRNN folder and a few synthetic plates."""

from __future__ import annotations

from pathlib import Path

import torch

from data.synth import write_synthetic_dataset
from data.text import Charset
from models import InputSpec, create_model

TINY_OPTIONS = {"backbone": "resnet18", "backbone_stage": 1, "rnn_hidden_size": 16, "rnn_layers": 1,
                "steps_per_column": 2}
TINY_INPUT = InputSpec(32, 96)


def make_tiny_model(path: Path, charset: Charset | None = None, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = create_model("crnn", TINY_OPTIONS, charset or Charset(), TINY_INPUT)
    # Sharper logits than the init gives, so texts are not all empty (weights are random anyway).
    with torch.no_grad():
        model.head.fc.weight.mul_(20.0)
    return model.save_pretrained(path)


def make_plates(path: Path, n: int = 6, seed: int = 3) -> Path:
    return write_synthetic_dataset(path, n=n, seed=seed, two_row_prob=0.3)
