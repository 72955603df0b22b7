"""Plates per second of the synthetic generator alone, in one process on one thread.

    python benchmarks/synth_speed.py [--n 5000] [--seed 0] [--two-row-prob 0.15] [--countries DE,FR]

The first ``--warmup`` plates (glyph and tile caches filling) are not timed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402

from data.synth import SyntheticPlateGenerator  # noqa: E402


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=5000, help="timed plates")
    ap.add_argument("--warmup", type=int, default=2000, help="untimed plates first")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--two-row-prob", type=float, default=0.15)
    ap.add_argument("--countries", default=None, help="comma-separated codes (default: all 27)")
    args = ap.parse_args(argv)

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    cv2.setNumThreads(1)

    gen = SyntheticPlateGenerator(seed=args.seed, countries=args.countries.split(",") if args.countries else None,
                                  two_row_prob=args.two_row_prob)
    t0 = time.perf_counter()
    for _ in range(args.warmup):
        gen()
    t_warm = time.perf_counter() - t0
    pixels = 0
    t0 = time.perf_counter()
    for _ in range(args.n):
        pixels += gen().image.shape[0]
    dt = time.perf_counter() - t0
    rate = args.n / dt
    print(f"warm-up: {args.warmup} plates in {t_warm:.2f} s (caches filling)")
    print(f"synthetic plates: {rate:,.0f} plates/s ({1e3 * dt / args.n:.3f} ms/plate, one process, 1 thread, "
          f"{args.n} plates, mean height {pixels / args.n:.1f} px)")
    return rate


if __name__ == "__main__":
    main()
