"""A tiny attention model and one fixed batch, shared by the tests of its optional heads (length, CTC)."""

from __future__ import annotations

import torch

from data.text import Charset
from models import InputSpec, create_model

CHARSET = Charset()
SPEC = InputSpec(32, 64)
TINY = {"encoder": "resnet18", "encoder_stage": 1, "d_model": 32, "dec_heads": 2, "dec_mlp_ratio": 2.0,
        "max_label_length": 8, "dropout": 0.0}
TEXTS = ["AB12", "X9", "KK110", "7Z"]


def images(n: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, SPEC.height, SPEC.width, generator=g) * 2 - 1


def train_on_one_batch(options: dict, steps: int = 60):
    """(the model with ``options``, trained on ``images()`` and ``TEXTS`` until it reads them, in
    eval mode; the images)."""
    torch.manual_seed(0)
    model = create_model("attn", options, CHARSET, SPEC)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x = images()
    for _ in range(steps):
        loss = model.loss(model(x, TEXTS), {"texts": TEXTS})
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), x
