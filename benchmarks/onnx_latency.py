"""Path-to-text latency of a plate reader through ONNX Runtime on one thread, one crop at a time.

    python benchmarks/onnx_latency.py                                  # weights/crnn, exported to a temp .onnx
    python benchmarks/onnx_latency.py --images ../shared/realplates-dev/labels.csv
    python benchmarks/onnx_latency.py --images DIR --onnx crnn.onnx --n 200
    python benchmarks/onnx_latency.py --int8                           # its export.py --int8 quantisation
    python benchmarks/onnx_latency.py --country any                    # reading as predict.py does by default

Each timed call is what a user's ``reader.predict("crop.png")`` costs: reading the file,
preprocessing (resize + normalise, numpy/OpenCV), running the graph at batch 1 and decoding
the text. ``--images`` is a folder of crops or a labels CSV (its ``filename`` column); the
default is ``../shared/realplates-dev/labels.csv`` if present, else ``--n`` synthetic crops
written to a temp folder. The crops are read ``--repeat`` times in order after one warm-up pass;
median and p95 are over every call, of wall-clock time and of the process's CPU time (a figure
other processes on a busy machine inflate less; the load average is printed). Set
``OMP_NUM_THREADS=1`` too: the graph runs on one intra-op thread either way, but numpy and
OpenCV have pools of their own.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data.images import IMAGE_EXTENSIONS  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = REPO.parent / "shared" / "realplates-dev" / "labels.csv"


def crop_paths(source: Path, n: int) -> list[Path]:
    """The first ``n`` crops of a folder (sorted) or of a labels CSV (its ``filename`` column)."""
    if source.is_dir():
        paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    else:
        with open(source, newline="", encoding="utf-8") as f:
            rows = csv.DictReader(f)
            if "filename" not in (rows.fieldnames or []):
                raise SystemExit(f"{source}: no 'filename' column")
            paths = [source.parent / r["filename"] for r in rows]
    if not paths:
        raise SystemExit(f"{source}: no images")
    return paths[:n]


def synthetic_crops(folder: Path, n: int) -> list[Path]:
    """``n`` synthetic plates, degraded like the fixed test set's, written as PNG files."""
    import cv2
    import numpy as np

    from data.synth import SyntheticPlateGenerator, degrade

    gen = SyntheticPlateGenerator(seed=5)
    paths = []
    for i in range(n):
        rng = np.random.default_rng([5, i])
        p = folder / f"{i:04d}.png"
        cv2.imwrite(str(p), cv2.cvtColor(degrade(gen.sample(rng).image, rng), cv2.COLOR_RGB2BGR))
        paths.append(p)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights/crnn", help="model folder to export (default: weights/crnn)")
    ap.add_argument("--onnx", help="an exported .onnx file to time instead of exporting --weights")
    ap.add_argument("--images", help="folder of crops or labels CSV (default: realplates-dev if present, "
                                     "else synthetic crops)")
    ap.add_argument("--n", type=int, default=200, help="crops (default: 200)")
    ap.add_argument("--repeat", type=int, default=3, help="timed passes over the crops (default: 3)")
    ap.add_argument("--country", default="none", metavar="CC|auto|any|none",
                    help="plate formats to read under (default: none, the Python API's default; "
                         "'any' is predict.py's)")
    ap.add_argument("--int8", action="store_true", help="time the int8 quantisation of the exported graph "
                                                        "(export.quantize_onnx_int8, as export.py --int8 writes it)")
    args = ap.parse_args(argv)

    from inference import load_reader

    with tempfile.TemporaryDirectory(prefix="onnx-latency-") as tmp:
        tmp = Path(tmp)
        if args.onnx:
            onnx_path = Path(args.onnx)
        else:
            from export import export_onnx
            from models import PlateRecognizer

            onnx_path = export_onnx(PlateRecognizer.from_pretrained(REPO / args.weights
                                                                    if not Path(args.weights).exists()
                                                                    else args.weights), tmp / "model.onnx")
        if args.int8:
            from export import quantize_onnx_int8

            onnx_path = quantize_onnx_int8(onnx_path, tmp / "model.int8.onnx")
        source = Path(args.images) if args.images else (DEFAULT_IMAGES if DEFAULT_IMAGES.is_file() else None)
        paths = crop_paths(source, args.n) if source else synthetic_crops(tmp, args.n)
        what = str(source) if source else f"{len(paths)} synthetic crops"
        reader = load_reader(onnx_path, threads=1, country=args.country)
        for p in paths:  # warm-up: the file cache, ONNX Runtime's first runs
            reader.predict(p)
        wall, cpu, errors = [], [], 0
        for _ in range(args.repeat):
            for p in paths:
                t0, c0 = time.perf_counter(), time.process_time()
                pred = reader.predict(p)
                cpu.append((time.process_time() - c0) * 1e3)
                wall.append((time.perf_counter() - t0) * 1e3)
                errors += pred.error is not None
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{reader.arch} {reader.input_size}{' int8' if args.int8 else ''} via ONNX Runtime, 1 thread; {len(paths)} crops from {what}, "
          f"{args.repeat} passes; formats: {args.country}; load average {load:.2f}")
    for name, times in (("wall clock", wall), ("CPU time", cpu)):
        times.sort()
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        print(f"path-to-text latency ({name}): median {statistics.median(times):.2f} ms, p95 {p95:.2f} ms")
    if errors:
        print(f"{errors // args.repeat} of the crops could not be read")
    return 0


if __name__ == "__main__":
    sys.exit(main())
