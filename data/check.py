"""Verify a dataset before training: read its labels, open every image, report.

    python -m data.check DATASET [--charset CHARS] [--allow-mask] [--skip-invalid] [--workers N]
                                 [--format auto|csv|filename] [--list-limit N]

DATASET is a format (a) folder / CSV file or a format (b) folder (see
:mod:`data.datasets`). Prints record counts, countries, row counts, label
lengths and image sizes, and lists every unreadable image. Exit status: 0 if
all is well, 1 if some image is unreadable, 2 if the labels cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from data.datasets import DatasetError, ImageReadError, PlateRecord, label_source_notes, load_dataset, read_image_rgb
from data.text import DEFAULT_CHARSET, Charset


def _probe(path: Path) -> tuple[int, int] | str:
    try:
        img = read_image_rgb(path)
    except ImageReadError as e:
        return str(e)
    return img.shape[0], img.shape[1]


def check_images(records: list[PlateRecord], workers: int = 4) -> tuple[list[tuple[int, int]], list[str]]:
    """Open every image (threads: decoding releases the GIL). Returns (sizes h,w of good ones, error messages)."""
    sizes, errors = [], []
    with ThreadPoolExecutor(max(1, workers)) as ex:
        for r in ex.map(_probe, (rec.path for rec in records), chunksize=64):
            (errors if isinstance(r, str) else sizes).append(r)
    return sizes, errors


def _counts(counter: Counter, limit: int = 30) -> str:
    items = counter.most_common()
    text = ", ".join(f"{k}: {v}" for k, v in items[:limit])
    return text + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m data.check", description="Verify a dataset: labels and images.")
    ap.add_argument("dataset", help="format (a) folder or CSV file, or format (b) folder")
    ap.add_argument("--charset", default=DEFAULT_CHARSET, help="characters a model reads (default %(default)s)")
    ap.add_argument("--allow-mask", action="store_true", help="accept masked '*' characters (evaluation sets)")
    ap.add_argument("--skip-invalid", action="store_true", help="skip and count invalid labels instead of failing")
    ap.add_argument("--format", default="auto", choices=("auto", "csv", "filename"))
    ap.add_argument("--workers", type=int, default=4, help="threads that open images")
    ap.add_argument("--list-limit", type=int, default=200, help="unreadable files to list (0 = all)")
    args = ap.parse_args(argv)

    cv2.setNumThreads(1)
    try:
        records, stats = load_dataset(
            args.dataset, Charset(args.charset), "skip" if args.skip_invalid else "error", args.allow_mask,
            fmt=args.format,
        )
    except (DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"dataset: {args.dataset} (format {'a, CSV' if stats['format'] == 'csv' else 'b, file names'})")
    for line in label_source_notes(stats, args.dataset):
        print(line)
    print(f"rows: {stats['rows']}  records: {len(records)}  skipped (invalid label): {stats['skipped_invalid_label']}")
    for msg in stats["skipped_examples"]:
        print(f"  skipped: {msg}")
    if not records:
        print("error: no usable records", file=sys.stderr)
        return 2
    print(f"countries: {_counts(Counter(r.country or '(no label)' for r in records))}")
    print(f"text rows per plate: {_counts(Counter(r.rows for r in records))}")
    lengths = Counter(len(r.text) for r in records)
    print(f"label length: min {min(lengths)}, max {max(lengths)}; "
          + ", ".join(f"{k}: {v}" for k, v in sorted(lengths.items())))
    masked = sum("*" in r.text for r in records)
    if masked:
        print(f"masked labels: {masked}")

    sizes, errors = check_images(records, args.workers)
    if sizes:
        hs = np.array([s[0] for s in sizes])
        ws = np.array([s[1] for s in sizes])
        print(
            f"image height: min {hs.min()}, median {int(np.median(hs))}, max {hs.max()}; "
            f"width: min {ws.min()}, median {int(np.median(ws))}, max {ws.max()}"
        )
    print(f"images: {len(sizes)} readable, {len(errors)} unreadable")
    shown = errors if args.list_limit <= 0 else errors[: args.list_limit]
    for e in shown:
        print(f"  unreadable: {e}")
    if len(shown) < len(errors):
        print(f"  ... and {len(errors) - len(shown)} more (--list-limit 0 lists all)")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
