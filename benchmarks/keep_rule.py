"""Keep or reject a change by the project's rule, from real-plate benchmark outputs of two seeds each.

    python benchmarks/keep_rule.py --base base_s0.json base_s1.json --change new_s0.json new_s1.json

Each file is what ``python benchmarks/real_plates.py --out FILE.json`` writes (per-set results
and the macro mean). The rule (docs/experiments.md, "Keeping a change"): a change is kept only
when the macro mean rises by more than the spread between two seeds of the same recipe and no
set falls by more than that spread. The spread of a figure (a set's, or the macro mean's) is the
largest gap between the seeds of one recipe, over the baseline and the change:
``max(|base0 - base1|, |change0 - change1|)`` (with more seeds: max - min). Rises and falls
are of exact match; ``--metric cer`` judges CER instead (lower is better: a rise is a fall in CER).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

METRICS = ("exact_match", "cer")


def load_run(path: str | Path, metric: str) -> dict[str, float]:
    """{set name: value, ..., "macro": value} of one real_plates.py JSON; errors name the file."""
    try:
        report = json.loads(Path(path).read_text())
        out = {name: float(r[metric]) for name, r in report["sets"].items()}
        out["macro"] = float(report["macro"][metric])
    except OSError as e:
        raise ValueError(f"{path}: cannot read: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e.msg}, line {e.lineno})") from None
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise ValueError(f"{path}: not a benchmarks/real_plates.py --out file (no {metric} at {e})") from None
    if len(out) == 1:
        raise ValueError(f"{path}: no sets")
    return out


def judge(base: list[dict[str, float]], change: list[dict[str, float]], metric: str = "exact_match") -> dict:
    """Per figure (each set, then "macro"): the two means, the seed spread and the delta; and the
    verdict {"keep": bool, "reason": str}. Every run must cover the same sets."""
    names = list(base[0])
    for run in (*base, *change):
        if set(run) != set(names):
            raise ValueError(f"the runs cover different sets: {sorted(set(names) ^ set(run))}")
    sign = -1.0 if metric == "cer" else 1.0  # + : better
    rows = {}
    for name in [n for n in names if n != "macro"] + ["macro"]:
        b, c = [r[name] for r in base], [r[name] for r in change]
        spread = max(max(b) - min(b), max(c) - min(c))
        rows[name] = {"base": statistics.fmean(b), "change": statistics.fmean(c), "spread": spread,
                      "delta": statistics.fmean(c) - statistics.fmean(b)}
    gain = {name: sign * r["delta"] for name, r in rows.items()}
    fallen = [n for n in rows if n != "macro" and gain[n] < -rows[n]["spread"]]
    macro = rows["macro"]
    reasons = [f"{n} gets worse by {abs(rows[n]['delta']):.2%}, more than its seed spread {rows[n]['spread']:.2%}"
               for n in fallen]
    better = "fall" if metric == "cer" else "rise"  # CER: lower is better
    what = "macro mean CER" if metric == "cer" else "macro mean"
    if gain["macro"] <= macro["spread"]:
        reasons.insert(0, f"the {what} moves by {macro['delta']:+.2%}: it does not {better} by more than "
                          f"its seed spread {macro['spread']:.2%}")
    keep = not reasons
    reason = "; ".join(reasons) if reasons else (
        f"the {what} {better}s by {macro['delta']:+.2%}, more than its seed spread {macro['spread']:.2%}, "
        "and no set gets worse by more than its spread")
    return {"metric": metric, "rows": rows, "keep": keep, "reason": reason}


def format_verdict(result: dict) -> str:
    lines = [f"| {result['metric']} | baseline mean | change mean | seed spread | delta |", "|---|---:|---:|---:|---:|"]
    for name, r in result["rows"].items():
        lines.append(f"| {name} | {r['base']:.2%} | {r['change']:.2%} | {r['spread']:.2%} | {r['delta']:+.2%} |")
    lines += ["", f"{'keep' if result['keep'] else 'reject'}: {result['reason']}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", nargs="+", required=True, metavar="JSON", help="the baseline's seeds (two or more)")
    p.add_argument("--change", nargs="+", required=True, metavar="JSON", help="the change's seeds (two or more)")
    p.add_argument("--metric", choices=METRICS, default="exact_match")
    args = p.parse_args(argv)
    for flag, files in (("--base", args.base), ("--change", args.change)):
        if len(files) < 2:
            p.error(f"{flag} needs two seeds or more (the spread between seeds is part of the rule)")
    try:
        result = judge([load_run(f, args.metric) for f in args.base], [load_run(f, args.metric) for f in args.change],
                       args.metric)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    print(format_verdict(result))
    return result


if __name__ == "__main__":
    main()
