"""Side-by-side tables of trained runs: accuracy, size, CPU speed and training time.

    python compare.py runs/crnn/20261123-101500 runs/attn/default [--data ../shared/realplates-dev ...]
                      [--out DIR] [--equiv US:O=0] [--threads 2]

Each run's ``best/`` model is scored on its own config's test set (for
synthetic data the fixed set ``training.synth_set_path`` names,
written if missing) and on every ``--data`` dataset (any format
``data.datasets.load_records`` reads). Latency (one plate, median ms) and
throughput (batch 64, plates/s) are measured on CPU, in this invocation, on
real images of the run's test set, so the runs are timed under the same
conditions. Training time comes from the run's ``test_metrics.json``.

Prints the summary in Markdown; with ``--out DIR`` writes ``compare.md``
(summary + the full per-run metrics tables) and ``compare.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from configs import SYNTH, ConfigError, load_config
from data.datasets import PlateDataset, collate_plates, dataset_notes, load_dataset
from data.transforms import spec_transform
from evaluation import evaluate
from metrics import format_metrics_table, parse_equivalences, with_new_metric_names
from models import PlateRecognizer
from training import RunDir, ensure_synth_set

OWN = "own test set"
THROUGHPUT_BATCH = 64


class CompareError(ValueError):
    pass


@dataclass
class RunResult:
    name: str
    path: Path
    arch: str
    encoder: str
    params_m: float
    input: str
    train_seconds: float | None
    test_set: str = ""
    latency_ms: float = float("nan")
    throughput: float = float("nan")
    results: dict[str, dict] = field(default_factory=dict)  # dataset label -> PlateMetrics.compute()

    def to_json(self) -> dict:
        return {
            "run": self.name, "path": str(self.path), "arch": self.arch, "encoder": self.encoder,
            "params_m": round(self.params_m, 3), "input": self.input, "train_seconds": self.train_seconds,
            "test_set": self.test_set, "cpu_latency_ms": round(self.latency_ms, 3),
            "cpu_plates_per_s": round(self.throughput, 1), "results": self.results,
        }


# --------------------------------------------------------------------------- runs
def check_run_dir(run_dir: Path) -> None:
    if not run_dir.is_dir():
        raise CompareError(f"{run_dir}: no such run folder")
    missing = RunDir(run_dir).missing_results()
    if missing:
        raise CompareError(
            f"{run_dir} is not a finished training run: it has no {', '.join(missing)} "
            f"(a run writes {RunDir.BEST}/ during training and {RunDir.TEST_METRICS} when it ends; "
            f"finish it with: python train_accelerate.py --resume {run_dir})"
        )


def run_names(paths: list[Path]) -> list[str]:
    """Folder names, or parent/name where two runs share a name."""
    names = [p.name for p in paths]
    return [f"{p.parent.name}/{p.name}" if names.count(p.name) > 1 else p.name for p in paths]


def describe_encoder(model: PlateRecognizer) -> str:
    cfg = model.config
    name = getattr(cfg, "encoder", None) or getattr(cfg, "backbone", None) or "?"
    if getattr(model, "encoder_kind", None) == "vit":
        vit = model.encoder.vit
        return f"{name} (d{vit.embed_dim}x{len(vit.blocks)}, patch {cfg.patch_size[0]}x{cfg.patch_size[1]})"
    stage = getattr(cfg, "encoder_stage", getattr(cfg, "backbone_stage", None))
    return f"{name} (stage {stage})" if stage is not None else name


def own_test_set(run_dir: Path) -> Path:
    try:
        cfg = load_config(path=RunDir(run_dir).config)
    except ConfigError as e:
        raise CompareError(f"{RunDir(run_dir).config}: {e}") from e
    if cfg.data.test == SYNTH:
        return ensure_synth_set(cfg.data, "test")
    path = Path(cfg.data.test)
    if not path.exists():
        raise CompareError(f"{run_dir}: its test set data.test={cfg.data.test} is not found")
    return path


def dataset_for(model: PlateRecognizer, path: Path, skip_invalid: bool) -> PlateDataset:
    try:
        records, stats = load_dataset(path, model.charset, on_invalid_label="skip" if skip_invalid else "error",
                                      allow_mask=True)
    except ValueError as e:
        raise CompareError(f"{path}: {e}") from e
    for line in dataset_notes(stats, path):
        print(line)
    if not records:
        raise CompareError(f"{path}: no usable rows")
    spec = model.input_spec
    return PlateDataset(records, spec_transform(spec))


# --------------------------------------------------------------------------- timing
@torch.no_grad()
def time_cpu(model: PlateRecognizer, images: torch.Tensor, repeats: int) -> tuple[float, float]:
    """(median ms for one plate, median plates/s at batch ``len(images)``), end to end (predict)."""
    model = model.to("cpu").eval()
    one = images[:1]
    for _ in range(3):
        model.predict(one)
        model.predict(images)
    lat = []
    for _ in range(max(repeats, 1) * 5):
        t = time.perf_counter()
        model.predict(one)
        lat.append(time.perf_counter() - t)
    thr = []
    for _ in range(max(repeats, 1)):
        t = time.perf_counter()
        model.predict(images)
        thr.append(len(images) / (time.perf_counter() - t))
    return 1000.0 * statistics.median(lat), statistics.median(thr)


# --------------------------------------------------------------------------- tables
def _pct(x) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.2f}%"


def _num(x, fmt: str) -> str:
    return "n/a" if x is None or x != x else format(x, fmt)


def _by_rows(res: dict, key: str) -> float | None:
    return with_new_metric_names(res).get("by_rows", {}).get(key, {}).get("exact_match")


def summary_table(runs: list[RunResult], dataset: str, with_speed: bool) -> list[str]:
    head = ["run", "arch", "encoder / backbone", "params (M)", "input"]
    if dataset == OWN:
        head.append("test set")
    head += ["n", "exact match", "1-row", "2-row", "mean edit dist", "CER", "country acc", "country macro-F1"]
    if with_speed:
        head += ["CPU latency 1 plate (ms)", f"CPU plates/s @{THROUGHPUT_BATCH}", "train time (min)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i < 5 + (dataset == OWN) else "---:"
                                                          for i in range(len(head))) + "|"]
    for r in runs:
        res = r.results[dataset]
        o = res["overall"]
        cells = [r.name, r.arch, r.encoder, f"{r.params_m:.2f}", r.input]
        if dataset == OWN:
            cells.append(Path(r.test_set).name)
        country = res.get("country", {})  # absent for models without a country head
        cells += [str(o["n"]), _pct(o["exact_match"]), _pct(_by_rows(res, "1")), _pct(_by_rows(res, "2")),
                  _num(o["mean_edit_distance"], ".3f"), _pct(o["cer"]),
                  _pct(country.get("accuracy")), _pct(country.get("macro_f1"))]
        if with_speed:
            train_min = None if r.train_seconds is None else r.train_seconds / 60
            cells += [_num(r.latency_ms, ".1f"), _num(r.throughput, ".0f"), _num(train_min, ".1f")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def country_table(runs: list[RunResult], dataset: str) -> list[str]:
    """Exact match per country, one column per run; then, for runs with a country head, the
    country accuracy per country."""
    countries = sorted({c for r in runs for c in r.results[dataset].get("by_country", {})})
    heads = [r for r in runs if "country" in r.results[dataset]]
    lines = ["| country | n | " + " | ".join(r.name for r in runs)
             + "".join(f" | {r.name} country acc" for r in heads) + " |",
             "|---|---:|" + "|".join("---:" for _ in runs + heads) + "|"]
    for c in countries:
        groups = [r.results[dataset].get("by_country", {}).get(c) for r in runs + heads]
        n = next(g["n"] for g in groups if g)
        cells = [_pct(g["exact_match"]) if g else "n/a" for g in groups[:len(runs)]]
        cells += [_pct(g.get("country_accuracy")) if g else "n/a" for g in groups[len(runs):]]
        lines.append(f"| {c} | {n} | " + " | ".join(cells) + " |")
    return lines


def render(runs: list[RunResult], datasets: list[str], threads: int, details: bool) -> str:
    parts = [f"CPU timings: {threads} thread(s), end to end (`model.predict`: encoder + decoding), "
             f"median over repeats, measured in this invocation.", ""]
    for i, ds in enumerate(datasets):
        title = "each run's own test set" if ds == OWN else ds
        parts += [f"### Runs on {title}", ""] + summary_table(runs, ds, with_speed=i == 0) + [""]
        parts += [f"### Exact match by country on {title}", ""] + country_table(runs, ds) + [""]
    if details:
        parts += ["## Full metrics per run", ""]
        for r in runs:
            for ds in datasets:
                label = r.test_set if ds == OWN else ds
                parts.append(format_metrics_table(r.results[ds], title=f"{r.name} on {label}"))
    return "\n".join(parts).rstrip() + "\n"


# --------------------------------------------------------------------------- main
def compare(run_dirs: list[Path], data: list[Path], equivalences: dict, repeats: int,
            skip_invalid: bool = False, workers: int = 0) -> tuple[list[RunResult], list[str]]:
    for d in run_dirs:
        check_run_dir(d)
    for d in data:
        if not d.exists():
            raise CompareError(f"--data {d}: not found")
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    datasets = [OWN] + [str(d) for d in data]
    runs = []
    for run_dir, name in zip(run_dirs, run_names(run_dirs)):
        try:
            model = PlateRecognizer.from_pretrained(RunDir(run_dir).best)
        except ValueError as e:
            raise CompareError(f"{run_dir}: {e}") from e
        report = RunDir(run_dir).read_test_metrics()
        spec = model.input_spec
        test_path = own_test_set(run_dir)
        r = RunResult(name=name, path=run_dir, arch=model.arch, encoder=describe_encoder(model),
                      params_m=model.num_parameters() / 1e6, input=f"{spec.height}x{spec.width}",
                      train_seconds=report.get("train_seconds"), test_set=str(test_path))
        own_ds = dataset_for(model, test_path, skip_invalid)
        sets = [(OWN, own_ds)] + [(str(d), dataset_for(model, d, skip_invalid)) for d in data]
        model.to(accelerator.device)
        for label, ds in sets:
            loader = DataLoader(ds, batch_size=128, num_workers=workers, collate_fn=collate_plates)
            r.results[label] = evaluate(model, loader, accelerator, desc=f"{name} {Path(label).name}",
                                        equivalences=equivalences).metrics
        n = min(THROUGHPUT_BATCH, len(own_ds))
        images = torch.stack([own_ds[i]["image"] for i in range(n)])
        r.latency_ms, r.throughput = time_cpu(model, images, repeats)
        runs.append(r)
    return runs, datasets


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="training run folders")
    p.add_argument("--data", nargs="+", action="extend", default=[], type=Path, metavar="DATASET",
                   help="extra labelled test sets (folder with labels.csv, a CSV, or crops named by text)")
    p.add_argument("--out", type=Path, help="write compare.md and compare.json into this folder")
    p.add_argument("--equiv", action="append", default=[], metavar="COUNTRY:A=B",
                   help="score character A as B for that country (repeatable), e.g. US:O=0")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads for timing (default: torch's)")
    p.add_argument("--repeats", type=int, default=10, help="timing repeats (latency uses 5x as many)")
    p.add_argument("--skip-invalid", action="store_true", help="skip labels outside a model's charset")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        equivalences = parse_equivalences(args.equiv)
        runs, datasets = compare(args.runs, args.data, equivalences, args.repeats, args.skip_invalid)
    except (CompareError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    threads = torch.get_num_threads()
    summary = render(runs, datasets, threads, details=False)
    print(summary)
    out = {"datasets": datasets, "cpu_threads": threads, "throughput_batch": THROUGHPUT_BATCH,
           "equivalences": equivalences, "runs": [r.to_json() for r in runs]}
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "compare.md").write_text(render(runs, datasets, threads, details=True))
        (args.out / "compare.json").write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.out / 'compare.md'} and {args.out / 'compare.json'}")
    return out


if __name__ == "__main__":
    main()
