"""Average the weights of model folders trained from the same model: one model, the same network.

    python -m tools.average_weights runs/a/best runs/b/best --out weights/crnn-avg [--overwrite]

Runs continued from one model (two seeds of a recipe, say) stay close enough in weight space that
their mean reads better than either (a "model soup", Wortsman et al. 2022); runs from different
starts do not, and their mean reads nothing. The folders must hold the same architecture, charset,
input size and model options. Floating-point tensors are averaged; integer buffers (batch-norm step
counts) come from the first folder. The result is written atomically as a model folder
(``config.json`` + ``model.safetensors``) that ``predict.py --weights`` reads like any other.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import torch

from models.base import PlateRecognizer


def average_weights(folders: Sequence[str | Path]) -> PlateRecognizer:
    """The first folder's model holding the mean of every folder's weights; ValueError names a
    folder that is no model folder or holds another network."""
    if len(folders) < 2:
        raise ValueError(f"give two model folders or more to average, got {len(folders)}")
    models = [PlateRecognizer.from_pretrained(f) for f in folders]
    first = models[0].to_config_dict()
    for folder, model in zip(folders[1:], models[1:]):
        config = model.to_config_dict()
        differ = sorted(k for k in first.keys() | config.keys() if first.get(k) != config.get(k))
        if differ:
            raise ValueError(f"{folder} holds another network than {folders[0]} (its {', '.join(differ)} "
                             "differ): only models of the same config average")
    states = [m.state_dict() for m in models]
    mean = {}
    for key, tensor in states[0].items():
        if tensor.is_floating_point():
            mean[key] = torch.stack([s[key].float() for s in states]).mean(0).to(tensor.dtype)
        else:
            mean[key] = tensor
    models[0].load_state_dict(mean)
    models[0].weights_sha256 = None  # the hash from_pretrained set is the first file's, not the mean's
    return models[0]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", help="model folders (config.json + model.safetensors)")
    ap.add_argument("--out", required=True, help="the model folder to write")
    ap.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        ap.error(f"--out {out} exists; give --overwrite to replace it")
    if any(out.resolve() == Path(f).resolve() for f in args.folders):
        ap.error(f"--out {out} is one of the folders averaged; write the mean elsewhere")
    try:
        model = average_weights(args.folders)
    except ValueError as e:
        raise SystemExit(f"average_weights: {e}") from None
    model.save_pretrained(out)
    print(f"wrote the mean of {len(args.folders)} models ({model.arch}, {model.num_parameters() / 1e6:.2f}M "
          f"parameters) to {out}")


if __name__ == "__main__":
    main()
