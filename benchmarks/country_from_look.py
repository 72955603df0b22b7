"""Does the country head read the plate's look, or only its text format?

    python benchmarks/country_from_look.py --weights weights/crnn [--data datasets/synth/test_n2000_seed2_2row0.15]

Compares, per country on a labelled set, the model's country head with the best
guess a text-only reader could make: the most frequent country of the label's
format (letters -> L, digits -> D, e.g. "AB123CD" -> LLDDDLL), counted over
``--n-train`` plates of the synthetic generator (the training distribution).
Where formats collide (FR/IT "LLDDDLL", the many "LLLDDD" countries, ...)
the text-only guess fails and only the plate's look (band, colours, layout,
symbols) can tell the countries apart.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import sys  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.datasets import load_records  # noqa: E402
from data.synth import SyntheticPlateGenerator  # noqa: E402
from inference import load_reader  # noqa: E402
from models.heads import COUNTRY_CLASSES  # noqa: E402


def text_format(text: str) -> str:
    return "".join("D" if c.isdigit() else "L" for c in text)


def format_guesser(n: int, seed: int, two_row_prob: float) -> dict[str, str]:
    """Text format -> its most frequent country among ``n`` generated plates."""
    counts: dict[str, Counter] = defaultdict(Counter)
    gen = SyntheticPlateGenerator(seed=seed, two_row_prob=two_row_prob)
    for _ in range(n):
        p = gen()
        counts[text_format(p.text)][p.country] += 1
    return {f: c.most_common(1)[0][0] for f, c in counts.items()}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True, help="a model with a country head (folder or .onnx)")
    ap.add_argument("--data", default="datasets/synth/test_n2000_seed2_2row0.15")
    ap.add_argument("--n-train", type=int, default=30000, help="generated plates behind the text-only guess")
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--two-row-prob", type=float, default=0.15)
    args = ap.parse_args(argv)

    reader = load_reader(args.weights)
    records = [r for r in load_records(Path(args.data), reader.charset) if r.country in COUNTRY_CLASSES]
    preds = reader.predict([r.path for r in records])
    if any(p.country is None for p in preds):
        sys.exit(f"error: {args.weights} has no country head")
    guess = format_guesser(args.n_train, args.seed, args.two_row_prob)

    per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # n, text-only right, head right
    for r, p in zip(records, preds):
        g = per[r.country]
        g[0] += 1
        g[1] += int(guess.get(text_format(r.text)) == r.country)
        g[2] += int(p.country == r.country)
    rows = sorted(per.items(), key=lambda kv: kv[1][1] / kv[1][0])
    print(f"{args.data}: {len(records)} plates; text-only guess from {args.n_train} generated plates\n")
    print("| country | n | text format only | country head |")
    print("|---|---:|---:|---:|")
    for c, (n, t, h) in rows:
        print(f"| {c} | {n} | {100 * t / n:.1f}% | {100 * h / n:.1f}% |")
    n = sum(g[0] for g in per.values())
    t = sum(g[1] for g in per.values())
    h = sum(g[2] for g in per.values())
    print(f"| **all** | {n} | {100 * t / n:.1f}% | {100 * h / n:.1f}% |")
    colliding = [c for c, (k, tt, _) in per.items() if tt / k < 0.5]
    if colliding:
        k = sum(per[c][0] for c in colliding)
        print(f"\ncountries whose format a text-only reader gets right < 50% of the time ({', '.join(sorted(colliding))}): "
              f"text only {100 * sum(per[c][1] for c in colliding) / k:.1f}%, "
              f"country head {100 * sum(per[c][2] for c in colliding) / k:.1f}% (n={k})")
    return {"text_only": t / n, "head": h / n, "n": n}


if __name__ == "__main__":
    main()
