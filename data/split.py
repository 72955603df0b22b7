"""Split a labelled dataset into parts that share no plate: for fine-tuning on your own crops.

    python -m data.split --data my_plates --out datasets/my_plates --ratio 0.5 --seed 0
    python -m data.split --data my_plates --out datasets/my_plates --ratio 0.8 0.1 --names train val test

Crops of one plate (consecutive video frames, the same car on two days) look
alike; if they land on both sides of a split, the held-out figure measures
memory, not reading. So crops are grouped by their normalised text
(:func:`data.text.normalize_plate_text`: ``AB-123 CD`` and ``ab123cd`` are one
plate) and every group goes to one part. Groups are shuffled (``--seed``) and
dealt out per country, so each part gets about its share of every country's
crops; ``--ratio`` gives the shares of the crops in all parts but the last,
which gets the rest. ``--by image`` splits crops independently (no grouping).

Each part is a format (a) dataset: ``OUT/<name>/labels.csv`` with
``filename,text,country,rows``, where ``filename`` points at the original
image (relative to the CSV's folder, or absolute with ``--absolute``); no image
is copied. ``OUT/split.json`` records the arguments and the counts. Any
dataset format is accepted as input (:func:`data.datasets.load_dataset`).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from data.datasets import DatasetError, PlateRecord, load_dataset
from data.files import write_text_atomically
from data.text import DEFAULT_CHARSET, Charset

DEFAULT_NAMES = {2: ["train", "test"], 3: ["train", "val", "test"]}


def part_shares(ratio: Sequence[float]) -> list[float]:
    """``[0.8, 0.1]`` -> ``[0.8, 0.1, 0.1]``: the given shares, then the rest."""
    if not ratio:
        raise ValueError("--ratio needs at least one share, e.g. --ratio 0.5")
    if any(not 0 < r < 1 for r in ratio):
        raise ValueError(f"--ratio: each share must be between 0 and 1, got {list(ratio)}")
    rest = 1.0 - sum(ratio)
    if rest <= 1e-9:
        raise ValueError(f"--ratio: the shares {list(ratio)} leave nothing for the last part (they must sum to < 1)")
    return [float(r) for r in ratio] + [rest]


def assign_parts(records: Sequence[PlateRecord], shares: Sequence[float], seed: int = 0,
                 by: str = "text") -> list[int]:
    """The part index of each record: groups (same text with ``by="text"``) never straddle parts.

    Per country (a group's country is its most common one), groups are
    shuffled and dealt out by cumulative crop count: a group goes to the part
    whose share of the country's crops its midpoint falls in.
    """
    if by not in ("text", "image"):
        raise ValueError(f"by must be 'text' or 'image', got {by!r}")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        groups[r.text if by == "text" else str(i)].append(i)
    by_country: dict[str, list[str]] = defaultdict(list)
    for key, members in groups.items():
        country = Counter(records[i].country for i in members).most_common(1)[0][0]
        by_country[country].append(key)
    bounds = np.cumsum(shares)
    parts = [0] * len(records)
    for country in sorted(by_country):
        keys = sorted(by_country[country])
        rng = np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, *country.encode()]))
        rng.shuffle(keys)
        total = sum(len(groups[k]) for k in keys)
        done = 0
        for key in keys:
            size = len(groups[key])
            mid = (done + size / 2) / total
            part = min(int(np.searchsorted(bounds, mid, side="right")), len(shares) - 1)
            for i in groups[key]:
                parts[i] = part
            done += size
    return parts


def write_part(folder: Path, records: Sequence[PlateRecord], absolute: bool = False) -> Path:
    """``folder/labels.csv`` listing ``records`` (paths relative to ``folder`` unless ``absolute``)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "labels.csv"
    tmp = folder / "labels.csv.tmp"
    base = os.path.abspath(folder)
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["filename", "text", "country", "rows"])
        for r in records:
            path = os.path.abspath(r.path)
            w.writerow([path if absolute else os.path.relpath(path, base), r.text, r.country, r.rows])
    os.replace(tmp, out)
    return out


def split_dataset(data: str | os.PathLike, out: str | os.PathLike, ratio: Sequence[float] = (0.5,),
                  names: Sequence[str] | None = None, seed: int = 0, by: str = "text",
                  charset: Charset | None = None, on_invalid_label: str = "error",
                  absolute: bool = False) -> dict:
    """Split dataset ``data`` into ``out/<name>/labels.csv`` parts; returns the summary written to split.json."""
    shares = part_shares(ratio)
    if names is None:
        names = DEFAULT_NAMES.get(len(shares), [f"part{i}" for i in range(len(shares))])
    names = list(names)
    if len(names) != len(shares) or len(set(names)) != len(names):
        raise ValueError(f"--names: need {len(shares)} distinct names for {len(shares)} parts "
                         f"(--ratio gives all shares but the last), got {names}")
    for n in names:
        if not n or n in (".", "..") or "/" in n or os.sep in n:
            raise ValueError(f"--names: {n!r} is not a folder name")
    records, stats = load_dataset(data, charset or Charset(DEFAULT_CHARSET), on_invalid_label, allow_mask=True)
    if not records:
        raise DatasetError(f"{data}: no usable rows")
    parts = assign_parts(records, shares, seed=seed, by=by)
    out = Path(out)
    summary = {"data": str(data), "by": by, "ratio": list(ratio), "seed": seed,
               "skipped_invalid_label": stats["skipped_invalid_label"], "parts": {}}
    for p, name in enumerate(names):
        members = [r for r, q in zip(records, parts) if q == p]
        write_part(out / name, members, absolute)
        summary["parts"][name] = {
            "images": len(members), "plates": len({r.text for r in members}),
            "countries": dict(sorted(Counter(r.country for r in members).items())),
        }
    write_text_atomically(out / "split.json", json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="labelled dataset (labels.csv folder, CSV, or crops named by text)")
    p.add_argument("--out", required=True, help="output folder: one sub-folder with labels.csv per part")
    p.add_argument("--ratio", type=float, nargs="+", default=[0.5],
                   help="share of the crops in each part but the last (which gets the rest); default 0.5")
    p.add_argument("--names", nargs="+", help="part folder names (default: train test; train val test for 3 parts)")
    p.add_argument("--by", choices=["text", "image"], default="text",
                   help="text: crops of one plate (normalised text) stay in one part (default); image: no grouping")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--charset", default=DEFAULT_CHARSET)
    p.add_argument("--on-invalid-label", choices=["error", "skip"], default="error")
    p.add_argument("--absolute", action="store_true", help="write absolute image paths (default: relative)")
    args = p.parse_args(argv)
    try:
        summary = split_dataset(args.data, args.out, args.ratio, args.names, args.seed, args.by,
                                Charset(args.charset), args.on_invalid_label, args.absolute)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, s in summary["parts"].items():
        countries = ", ".join(f"{c or '(no label)'} {n}" for c, n in s["countries"].items())
        print(f"{Path(args.out) / name}: {s['images']} crops, {s['plates']} plates ({countries})")
    if summary["skipped_invalid_label"]:
        print(f"skipped {summary['skipped_invalid_label']} rows with invalid labels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
