"""Evaluate a trained model on a labelled dataset: metrics per country and per row count.

    python val.py --weights runs/crnn/<run>/best --data datasets/synth/test_n2000_seed2_2row0.15
    python val.py --weights runs/crnn/<run>/best --data ../shared/realplates-dev --equiv US:O=0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from data.datasets import PlateDataset, collate_plates, load_records
from data.transforms import build_transform
from evaluation import evaluate
from metrics import format_metrics_table
from models import load_model


def parse_equivalences(items: list[str]) -> dict[str, dict[str, str]]:
    """``US:O=0`` -> {"US": {"O": "0"}}: read O as 0 on US plates when scoring."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        try:
            country, pair = item.split(":", 1)
            src, dst = pair.split("=", 1)
        except ValueError:
            raise SystemExit(f"error: --equiv {item!r} must look like COUNTRY:A=B, e.g. US:O=0") from None
        out.setdefault(country.strip().upper(), {})[src] = dst
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, help="model folder (config.json + model.safetensors)")
    p.add_argument("--data", required=True, help="dataset: folder with labels.csv, a CSV, or crops named by text")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--equiv", action="append", default=[], metavar="COUNTRY:A=B",
                   help="score character A as B for that country (repeatable), e.g. US:O=0")
    p.add_argument("--skip-invalid", action="store_true", help="skip labels outside the charset instead of failing")
    p.add_argument("--out", help="write the metrics JSON here")
    args = p.parse_args(argv)

    try:
        model = load_model(args.weights)
        records = load_records(Path(args.data), model.charset,
                               on_invalid_label="skip" if args.skip_invalid else "error", allow_mask=True)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    spec = model.input_spec
    ds = PlateDataset(records, build_transform("eval", spec.height, spec.width, spec.keep_aspect))
    loader = DataLoader(ds, batch_size=args.batch_size, num_workers=args.workers, collate_fn=collate_plates)
    accelerator = Accelerator()
    model = accelerator.prepare(model)
    torch.set_grad_enabled(False)
    results = evaluate(model, loader, accelerator, desc="val", equivalences=parse_equivalences(args.equiv))
    print(format_metrics_table(results, title=f"{args.data} ({Path(args.weights)})"))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
