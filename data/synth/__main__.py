"""Write a fixed synthetic plate set.

    python -m data.synth --out datasets/synth_val --n 5000 --seed 1
    python -m data.synth --out DIR --n 1000 --seed 2 --countries DE,FR --two-row-prob 0.2 --workers 2 --clean

By default each image gets a mild camera-capture degradation (``data.synth.degrade``) so that
val/test sets look like crops of real photos; ``--clean`` writes the plain renders.
"""

from __future__ import annotations

import argparse
import sys
import time

from data.synth.degrade import degrade
from data.synth.dataset import write_synthetic_dataset


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m data.synth", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (images/ and labels.csv)")
    ap.add_argument("--n", type=int, required=True, help="number of plates")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--countries", default=None, help="comma-separated codes, e.g. DE,FR (default: all 27)")
    ap.add_argument("--two-row-prob", type=float, default=0.15)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--clean", action="store_true", help="plain renders, no degradation")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    args = ap.parse_args(argv)
    countries = [c for c in args.countries.split(",") if c.strip()] if args.countries else None
    t0 = time.perf_counter()
    try:
        out = write_synthetic_dataset(
            args.out, args.n, args.seed, countries=countries, two_row_prob=args.two_row_prob,
            augment=None if args.clean else degrade, workers=args.workers, overwrite=args.overwrite,
        )
    except (ValueError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.n} plates to {out} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
