"""A model before and after a fine-tune or an adaptation, on the same labelled sets: one table.

    python benchmarks/before_after.py --before weights/crnn --after RUN/best --out RUN/eval \\
        --set "held-out plates=SPLIT/test" --set "realplates-dev=../shared/realplates-dev:US:O=0" \\
        --set "synthetic test set=datasets/synth/test_n2000_seed2_2row0.15" [--by-country realplates-dev]

Each ``--set TITLE=FOLDER[:EQUIV]`` is scored by ``val.py`` for both models (``EQUIV`` as val.py's
``--equiv``, e.g. ``US:O=0``); the JSON results go to ``--out`` (``before-<i>.json``,
``after-<i>.json``). Prints a Markdown table of exact match and CER before and after, with the
countries of the sets named by ``--by-country``. Used by benchmarks/finetune_realplates.sh and
benchmarks/adapt_realplates.sh.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def parse_set(spec: str) -> tuple[str, str, str | None]:
    """``TITLE=FOLDER[:EQUIV]`` -> (title, folder, equiv or None)."""
    title, sep, rest = spec.partition("=")
    if not sep or not title or not rest:
        raise argparse.ArgumentTypeError(f"--set {spec!r}: expected TITLE=FOLDER[:EQUIV]")
    folder, _, equiv = rest.partition(":")
    return title, folder, equiv or None


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def table(sets: list[tuple[str, str, str | None]], results: dict[str, list[dict]], by_country: set[str]) -> str:
    lines = ["| data set | n | exact match before | after | CER before | after |", "|---|---:|---:|---:|---:|---:|"]
    for (title, folder, equiv), b, a in zip(sets, results["before"], results["after"]):
        name = f"{title} ({folder}{', --equiv ' + equiv if equiv else ''})"
        lines.append(f"| {name} | {b['overall']['n']} | {pct(b['overall']['exact_match'])} "
                     f"| {pct(a['overall']['exact_match'])} | {pct(b['overall']['cer'])} | {pct(a['overall']['cer'])} |")
        if title in by_country:
            for c, g in b["by_country"].items():
                h = a["by_country"].get(c)
                after = (pct(h["exact_match"]), pct(h["cer"])) if h else ("-", "-")
                lines.append(f"| &nbsp;&nbsp;{c} | {g['n']} | {pct(g['exact_match'])} | {after[0]} "
                             f"| {pct(g['cer'])} | {after[1]} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="the starting model (folder or .onnx)")
    ap.add_argument("--after", required=True, help="the fine-tuned or adapted model")
    ap.add_argument("--out", required=True, help="folder for val.py's JSON results")
    ap.add_argument("--set", dest="sets", type=parse_set, action="append", required=True,
                    metavar="TITLE=FOLDER[:EQUIV]")
    ap.add_argument("--by-country", action="append", default=[], metavar="TITLE",
                    help="also list this set's countries")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict]] = {"before": [], "after": []}
    for tag, weights in (("before", args.before), ("after", args.after)):
        for i, (title, folder, equiv) in enumerate(args.sets):
            path = out / f"{tag}-{i}.json"
            cmd = [sys.executable, str(REPO / "val.py"), "--weights", weights, "--data", folder, "--out", str(path),
                   *(["--equiv", equiv] if equiv else [])]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            results[tag].append(json.loads(path.read_text()))
    print()
    print(table(args.sets, results, set(args.by_country)))
    print(f"\nbefore: {args.before}; after: {args.after}")


if __name__ == "__main__":
    main()
