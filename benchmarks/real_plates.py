"""Zero-shot exact match and CER on every labelled real plate set, one column each, with the macro mean and the worst set.

    python benchmarks/real_plates.py                                   # the shipped default reader (weights/crnn_ppocr)
    python benchmarks/real_plates.py --weights weights/attn --joint weights/crnn --out real.json
    python benchmarks/real_plates.py --weights model.onnx --country none    # the model's readings, no formats
    python benchmarks/real_plates.py --sets "/data/plates/*"           # your own sets: folders with labels.csv

A set is a folder holding a ``labels.csv`` (``filename,text[,country,rows]``, as
``python -m data.check`` reads it); by default every ``realplates-*`` folder of the
shared data beside the repository, so a new set is picked up by itself. Every set counts
the same in the macro mean however many crops it has: the figure a change must raise
(docs/experiments.md, "keeping a change"). Scoring treats O and 0 as one character on US
plates (``--equiv US:O=0``, the default: US labels write both) and masked label characters
(``*``) as any character. ``--limit N`` reads the first N crops of each set (a quick look).
Each set also counts the readings longer and shorter than their label (``longer``, ``shorter``:
a reader that runs on past the plate's end, or stops before it). Plates are read as
``predict.py`` reads them: by default under every country's formats weighed by the model's
country head (``--country any``; ``--country none`` for the model's own readings).
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data.datasets import load_records  # noqa: E402
from evaluation import score_records  # noqa: E402
from inference.cli import add_reader_args, reader_from_args  # noqa: E402
from metrics import parse_equivalences  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SETS = str(REPO.parent / "shared" / "realplates-*")
DEFAULT_EQUIV = ["US:O=0"]


def find_sets(pattern: str) -> list[Path]:
    """The folders matching ``pattern`` that hold a labels.csv, sorted by name."""
    return sorted(Path(p) for p in glob.glob(pattern) if (Path(p) / "labels.csv").is_file())


def summarise(per_set: dict[str, dict]) -> dict:
    """Macro mean over sets (each set counts once) and the worst set, for exact match and CER."""
    exact = {name: r["exact_match"] for name, r in per_set.items()}
    cer = {name: r["cer"] for name, r in per_set.items()}
    worst_exact = min(exact, key=exact.get)
    worst_cer = max(cer, key=cer.get)
    return {
        "macro": {"exact_match": statistics.fmean(exact.values()), "cer": statistics.fmean(cer.values())},
        "worst": {"exact_match": {"set": worst_exact, "value": exact[worst_exact]},
                  "cer": {"set": worst_cer, "value": cer[worst_cer]}},
    }


def score_set(reader, folder: Path, equivalences: dict, limit: int | None, batch_size: int) -> dict:
    records = load_records(folder, reader.charset, allow_mask=True)[:limit]
    result = score_records(reader, records, batch_size=batch_size, desc=folder.name,
                           equivalences=equivalences, keep_records=True)
    metrics, readings = result.metrics, result.records
    overall = metrics["overall"]
    return {
        "n": overall["n"], "exact_match": overall["exact_match"], "cer": overall["cer"],
        "longer": sum(len(r.text) > len(r.label) for r in readings),
        "shorter": sum(len(r.text) < len(r.label) for r in readings),
        "by_country": {c: {"n": m["n"], "exact_match": m["exact_match"], "cer": m["cer"]}
                       for c, m in sorted(metrics["by_country"].items())},
    }


def format_report(per_set: dict[str, dict], summary: dict, title: str) -> str:
    lines = [f"### {title}", "", "| set | n | exact match | CER | longer | shorter | exact match by country (n) |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for name, r in per_set.items():
        countries = ", ".join(f"{c} {m['exact_match']:.2%} ({m['n']})" for c, m in r["by_country"].items())
        lines.append(f"| {name} | {r['n']} | {r['exact_match']:.2%} | {r['cer']:.2%} | {r['longer']} | "
                     f"{r['shorter']} | {countries} |")
    macro, worst = summary["macro"], summary["worst"]
    lines += ["", f"macro mean over {len(per_set)} sets: exact match {macro['exact_match']:.2%}, CER {macro['cer']:.2%}",
              f"worst set: exact match {worst['exact_match']['value']:.2%} ({worst['exact_match']['set']}), "
              f"CER {worst['cer']['value']:.2%} ({worst['cer']['set']})"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None, help="model folder or .onnx file (default: the shipped weights/crnn_ppocr)")
    add_set_args(p)
    p.add_argument("--country", default="any", metavar="CC|auto|any|none",
                   help="plate formats to read under, as predict.py (default: %(default)s, predict.py's "
                        "default; 'none': the model's reading as it is)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    add_reader_args(p)
    args = p.parse_args(argv)

    sets, equivalences = sets_and_equivalences(args)
    try:
        reader = reader_from_args(args, args.device, country=args.country, batch_size=args.batch_size)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    return read_sets(reader, sets, equivalences, args.limit, args.batch_size, f"{reader!r}, formats: {args.country}",
                     {"reader": repr(reader), "formats": args.country, "polarity": args.polarity}, args.out)


def add_set_args(p: argparse.ArgumentParser) -> None:
    """The options that say which sets are read and how they are scored and written."""
    p.add_argument("--sets", default=DEFAULT_SETS, help="glob of set folders (default: %(default)s)")
    p.add_argument("--equiv", action="append", default=None, metavar="COUNTRY:A=B",
                   help="score A as B for that country (repeatable; default: US:O=0)")
    p.add_argument("--limit", type=int, default=None, help="read only the first N crops of each set")
    p.add_argument("--out", help="write the figures as JSON here")


def sets_and_equivalences(args: argparse.Namespace) -> tuple[list[Path], dict]:
    """The set folders ``--sets`` matches and the ``--equiv`` scoring rules (a clear exit if none or bad)."""
    sets = find_sets(args.sets)
    if not sets:
        raise SystemExit(f"error: no set folder with a labels.csv matches {args.sets!r}")
    try:
        return sets, parse_equivalences(args.equiv if args.equiv is not None else DEFAULT_EQUIV)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None


def read_sets(reader, sets: list[Path], equivalences: dict, limit: int | None, batch_size: int, title: str,
              header: dict, out: str | None) -> dict:
    """Score ``reader`` on each set, print the report under ``title``, write it (``header`` first) to ``out``."""
    per_set = {}
    for folder in sets:
        try:
            per_set[folder.name] = score_set(reader, folder, equivalences, limit, batch_size)
        except ValueError as e:
            raise SystemExit(f"error: {folder}: {e}") from None
    summary = summarise(per_set)
    report = {**header, "sets": per_set, **summary}
    print(format_report(per_set, summary, title=title))
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
