"""Evaluate a trained model on a labelled dataset: metrics per country and per row count, and an error gallery.

For a model with a country head, also the country accuracy and macro-F1, and
the country confusion matrix as PNG (``--confusion``).

    python val.py --weights runs/crnn/<run>/best --data datasets/synth/test_n2000_seed2_2row0.15
    python val.py --weights runs/crnn/<run>/best --data ../shared/realplates-dev --equiv US:O=0 --out dev.json
    python val.py --weights model.onnx --data DATASET        # an exported model, run by onnxruntime
    python val.py --weights W --data DATASET --formats label:BR,SK   # read under the labelled country's formats
    python val.py --weights weights/attn --joint weights/crnn --data DATASET   # two models reading together
    python val.py --weights weights/attn --tta --data DATASET   # each crop read in five views (--tta pad5,crop5: yours)

The gallery (``--gallery``, default ``<out stem>_errors.png`` next to ``--out``,
else ``errors.png`` in the current folder) shows the worst predictions first:
the wrong ones by confidence, highest first (confidently wrong is worst), then,
if room is left, the right ones by confidence, lowest first. Each tile shows
the crop, its label, the prediction and its confidence.
"""

from __future__ import annotations

import os

if __name__ == "__main__":
    # Run as a command: idle OpenMP threads sleep instead of spinning (set before torch is
    # imported). On a machine whose cores other processes also use, spinning made PyTorch
    # inference up to 13x slower (2 threads, 2 busy cores: 31 instead of 410 plates/s); with free
    # cores it only adds a wake-up latency to each parallel region, which batches do not notice.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import sys
from pathlib import Path

from accelerate import Accelerator

from data.datasets import dataset_notes, load_dataset
from data.images import CHECK_HINT, ImageReadError, error_line
from evaluation import score_records
from evaluation.reports import default_gallery_path, gallery_order, gallery_tiles, write_confusion_png, write_gallery
from inference.cli import add_reader_args, reader_from_args
from metrics import format_metrics_table, parse_equivalences
from models.plate_formats import check_country


def parse_formats(value: str | None) -> tuple[bool, set[str] | None]:
    """``--formats``: (use the labels' countries, the countries it is limited to or None for all)."""
    if value is None or not value.startswith("label"):
        if value is not None:
            check_country(value, "--formats")
        return False, None
    head, _, rest = value.partition(":")
    if head != "label":
        raise ValueError(f"--formats: expected label, label:CC,CC, auto or a country code, got {value!r}")
    if not rest:
        return True, None
    return True, {check_country(c, "--formats") for c in rest.split(",") if c.strip()}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, help="model folder (config.json + model.safetensors) or .onnx file")
    p.add_argument("--data", required=True, help="dataset: folder with labels.csv, a CSV, or crops named by text")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--equiv", action="append", default=[], metavar="COUNTRY:A=B",
                   help="score character A as B for that country (repeatable), e.g. US:O=0")
    p.add_argument("--skip-invalid", action="store_true",
                   help="skip rows with an invalid label (empty, or outside the charset) instead of failing; "
                        "says how many")
    p.add_argument("--skip-unreadable", action="store_true",
                   help="leave out images that cannot be read (missing, corrupt) instead of failing; says how many")
    p.add_argument("--out", help="write the metrics JSON here")
    p.add_argument("--gallery", default=None,
                   help="error gallery PNG (default: <out stem>_errors.png next to --out, else errors.png)")
    p.add_argument("--gallery-n", type=int, default=40, help="tiles in the gallery (default 40)")
    p.add_argument("--no-gallery", action="store_true", help="do not write the gallery")
    p.add_argument("--confusion", default=None,
                   help="country confusion matrix PNG, for models with a country head "
                        "(default: <out stem>_country_confusion.png next to --out, else country_confusion.png "
                        "next to --gallery or in the current folder)")
    p.add_argument("--formats", default=None, metavar="label[:CC,..]|auto|CC",
                   help="read under plate formats (models/plate_formats.py): 'label' uses each sample's labelled "
                        "country (a deployment that knows its country), 'label:BR,SK' only for those labelled "
                        "countries, 'auto' the country the model's head predicts, or one country code for all")
    add_reader_args(p)
    args = p.parse_args(argv)

    accelerator = Accelerator()
    try:
        by_label, only = parse_formats(args.formats)
        equivalences = parse_equivalences(args.equiv)
        reader = reader_from_args(args, accelerator.device, country=None if by_label else args.formats)
        records, stats = load_dataset(Path(args.data), reader.charset,
                                      on_invalid_label="skip" if args.skip_invalid else "error", allow_mask=True)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    for line in dataset_notes(stats, args.data):  # where labels came from, rows skipped
        accelerator.print(line)
    try:
        result = score_records(reader, records, accelerator, batch_size=args.batch_size, workers=args.workers,
                               desc="val", equivalences=equivalences, skip_unreadable=args.skip_unreadable,
                               formats_by_label=by_label if only is None else only, keep_records=True)
    except ImageReadError as e:
        line = error_line(e).replace(CHECK_HINT, CHECK_HINT.replace("DATASET", args.data))
        print(f"error: {line}; or leave such images out with --skip-unreadable", file=sys.stderr)
        sys.exit(2)
    results = result.metrics
    if not accelerator.is_main_process:
        return results
    if result.unreadable:
        print(f"{args.data}: skipped {len(result.unreadable)} unreadable images of {len(records)} "
              f"(first: {result.unreadable[0]}); python -m data.check {args.data} lists them all")

    print(format_metrics_table(results, title=f"{args.data} ({Path(args.weights)})"))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    if not args.no_gallery:
        tiles = gallery_tiles(result.records, [r.path for r in records], equivalences)
        n_wrong = sum(not t["correct"] for t in tiles)
        gallery = Path(args.gallery) if args.gallery else default_gallery_path(args.out)
        write_gallery(gallery, gallery_order(tiles), n=args.gallery_n,
                      title=f"{Path(args.data).name}: {n_wrong} wrong of {len(tiles)} "
                            f"(wrong by confidence, highest first; red = wrong)")
        print(f"error gallery: {gallery} ({min(n_wrong, args.gallery_n)} wrong shown of {n_wrong})")
    if results.get("country", {}).get("n"):  # a head, and plates labelled with one of its classes
        if args.confusion:
            path = Path(args.confusion)
        elif args.out or not args.gallery:
            path = default_gallery_path(args.out, "_country_confusion.png")
        else:  # beside the gallery
            path = Path(args.gallery).with_name("country_confusion.png")
        write_confusion_png(path, results["country"], title=f"{Path(args.data).name}: country")
        print(f"country confusion matrix: {path}")
    return results


if __name__ == "__main__":
    main()
