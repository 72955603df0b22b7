"""Input size and backbone choice for the CRNN-CTC reader.

From the data: :func:`propose_input_size` (height and width from aspect ratios and label
lengths). Per candidate backbone cut: :func:`describe_candidate` (sequence length, whether CTC
can emit the longest label, parameters), :func:`measure_latency`, :func:`train_candidate` (a
short training through ``training.train``), and :func:`recommend` (best accuracy within
a latency budget, computed from the table).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from configs.schema import BEST_METRICS
from data.text import Charset
from data.tokenizers import CTCTokenizer


@dataclass(frozen=True)
class Candidate:
    """A timm backbone cut at a feature stage, written ``"resnet18@2"``."""

    backbone: str
    stage: int

    @property
    def name(self) -> str:
        return f"{self.backbone}@{self.stage}"

    @classmethod
    def parse(cls, spec: str) -> "Candidate":
        backbone, sep, stage = spec.strip().rpartition("@")
        if not sep or not backbone or not stage.isdigit():
            raise ValueError(f"candidate {spec!r} must look like backbone@stage, e.g. resnet18@2")
        return cls(backbone, int(stage))


def parse_candidates(specs: Iterable[str]) -> list[Candidate]:
    return [Candidate.parse(s) for s in specs]


# --------------------------------------------------------------------------- CTC and size


@dataclass(frozen=True)
class CTCNeeds:
    """Time steps CTC needs for a set of labels."""

    longest: int  # characters in the longest label
    min_steps: int  # max over labels of CTCTokenizer.min_steps (characters + blanks between repeats)
    worst_case: int  # 2 * longest - 1: a label of that length with every neighbour repeated


def ctc_needs(labels: Iterable[str], longest_at_least: int = 0) -> CTCNeeds:
    """CTC steps for ``labels``; ``longest_at_least`` covers labels not in hand (e.g. the
    generator's longest plate when training on synthetic data, see :func:`longest_label`)."""
    labels = [t for t in labels if t]
    if not labels and longest_at_least < 1:
        raise ValueError("no labels")
    longest = max([longest_at_least, *map(len, labels)])
    min_steps = max([longest_at_least, *(CTCTokenizer.min_steps(t) for t in labels)])
    return CTCNeeds(longest, min_steps, 2 * longest - 1)


def longest_label(sources: Iterable[str | Path]) -> int:
    """The longest label training will meet: ``"synth"`` counts the generator's longest plate,
    a path its longest label (rows the reader would skip are ignored)."""
    from configs import SYNTH
    from data.datasets import load_records
    from data.synth import SyntheticPlateGenerator

    longest = 0
    for src in sources:
        if str(src) == SYNTH:
            longest = max(longest, SyntheticPlateGenerator(seed=0).max_label_length)
        else:
            longest = max([longest, *(len(r.text) for r in load_records(src, on_invalid_label="skip"))])
    return longest


def round_up(value: float, multiple: int) -> int:
    return int(math.ceil(value / multiple - 1e-9) * multiple)


@dataclass
class SizeProposal:
    height: int
    width: int
    aspect: float  # the aspect ratio (width / height) the width was taken from
    width_from_aspect: int  # height x aspect, rounded up to the multiple
    width_for_ctc: int  # the narrowest width whose sequence is long enough (worst case) at this stride
    ctc: CTCNeeds
    stride: int
    notes: list[str] = field(default_factory=list)


def propose_input_size(
    aspects: Sequence[float],
    labels: Sequence[str],
    height: int = 32,
    stride: int = 8,
    multiple: int = 16,
    quantile: float = 0.5,
    two_row_share: float = 0.0,
    longest_at_least: int = 0,
) -> SizeProposal:
    """Input height x width for a dataset.

    The width keeps the ``quantile`` aspect ratio (default: the median plate is not stretched),
    rounded up to ``multiple``, and is widened if the backbone's horizontal ``stride`` would
    leave fewer than ``2 L - 1`` steps for the longest label (L characters): the worst case,
    where every character repeats its neighbour and CTC needs a blank between each.
    ``aspects`` should be those of one-row plates when there are any: a two-row plate is
    squeezed into the same frame anyway. ``two_row_share`` only adds a note;
    ``longest_at_least`` is passed to :func:`ctc_needs`.
    """
    a = np.asarray([x for x in aspects if np.isfinite(x) and x > 0], dtype=float)
    if a.size == 0:
        raise ValueError("no valid aspect ratios")
    needs = ctc_needs(labels, longest_at_least)
    aspect = float(np.quantile(a, quantile))
    w_aspect = round_up(height * aspect, multiple)
    w_ctc = round_up(needs.worst_case * stride, multiple)
    width = max(w_aspect, w_ctc)
    notes = [f"aspect ratio {aspect:.2f} (quantile {quantile:g} of {a.size} plates) gives width {w_aspect}"]
    if w_ctc > w_aspect:
        notes.append(f"widened to {width}: labels of {needs.longest} characters need up to "
                     f"{needs.worst_case} CTC steps, {needs.worst_case} x stride {stride} = {needs.worst_case * stride} px")
    notes.append(f"{width / needs.longest:.1f} px of width per character of the longest label")
    if two_row_share > 0:
        notes.append(f"{100 * two_row_share:.0f}% two-row plates: each text row gets about {height // 2} px of "
                     "height; try a taller input if their accuracy lags")
    return SizeProposal(height, width, aspect, w_aspect, w_ctc, needs, stride, notes)


# --------------------------------------------------------------------------- candidates


def build_candidate(candidate: Candidate, height: int, width: int, charset: Charset | None = None,
                    options: dict[str, Any] | None = None):
    """The CRNN for a candidate at an input size (random weights, eval mode)."""
    from models import InputSpec, create_model

    opts = {**(options or {}), "backbone": candidate.backbone, "backbone_stage": candidate.stage}
    return create_model("crnn", opts, charset or Charset(), InputSpec(height, width)).eval()


def describe_candidate(model, needs: CTCNeeds) -> dict[str, Any]:
    """Sizes of a built CRNN and whether its sequence can carry the labels.

    ``emits_all`` -- T >= max min_steps: every label of the data can be emitted;
    ``safe_worst_case`` -- T >= 2L - 1 (what training requires at start);
    ``min_width`` -- the narrowest input width with T >= 2L - 1 at this stride.
    """
    t, stride = model.sequence_length, model.backbone.stride
    return {
        "stride": stride,
        "feature_map": f"{model.backbone.channels}x{model.feature_height}x{t}",
        "rnn_features": model.rnn_features_num,
        "seq_len": t,
        "steps_needed": needs.min_steps,
        "steps_worst": needs.worst_case,
        "emits_all": t >= needs.min_steps,
        "safe_worst_case": t >= needs.worst_case,
        "min_width": needs.worst_case * stride,
        "params_M": round(model.num_parameters() / 1e6, 3),
    }


@torch.inference_mode()
def measure_latency(model: torch.nn.Module, height: int, width: int, batch_size: int = 1,
                    repeats: int = 10, warmup: int = 2) -> float:
    """Median wall time of one forward pass in milliseconds (on the model's device)."""
    device = next(model.parameters()).device
    x = torch.zeros(batch_size, 3, height, width, device=device)
    model.eval()
    times = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


def candidate_table(candidates: Sequence[Candidate], height: int, width: int, needs: CTCNeeds,
                    charset: Charset | None = None, batch_sizes: Sequence[int] = (1, 64),
                    repeats: int = 10, options: dict[str, Any] | None = None) -> pd.DataFrame:
    """One row per candidate: :func:`describe_candidate` plus ``latency_b{N}_ms`` per batch size.

    A candidate that cannot be built at this size gets its error in ``error``.
    """
    rows = []
    for c in candidates:
        row: dict[str, Any] = {"candidate": c.name}
        try:
            model = build_candidate(c, height, width, charset, options)
        except ValueError as e:
            rows.append({**row, "safe_worst_case": False, "error": str(e)})
            continue
        row.update(describe_candidate(model, needs))
        for b in batch_sizes:
            row[f"latency_b{b}_ms"] = round(measure_latency(model, height, width, b, repeats), 2)
        rows.append(row)
        del model
    return pd.DataFrame(rows).set_index("candidate")


# --------------------------------------------------------------------------- training


def short_training_overrides(steps: int, train: str = "synth", val: str = "synth",
                             synth_dir: str | Path | None = None, eval_size: int = 500,
                             batch_size: int = 64, extra: Sequence[str] = ()) -> list[str]:
    """Config overrides for a short training: warm-up of a tenth of the steps, validation at
    the end only, ``eval_size`` plates in the fixed synthetic val and test sets (under
    ``synth_dir``), and ``val`` also as the test set (keep it out of ``train``)."""
    out = [f"data.train={train}", f"data.val={val}", f"data.test={val}",
           f"data.synth_val_size={eval_size}", f"data.synth_test_size={eval_size}",
           f"train.batch_size={batch_size}", f"train.warmup_steps={max(1, steps // 10)}",
           f"train.eval_every={steps}", f"train.checkpoint_every={steps}", f"train.log_every={max(1, steps // 50)}"]
    if synth_dir is not None:
        out.append(f"data.synth_dir={synth_dir}")
    return out + list(extra)


def train_candidate(candidate: Candidate, run_dir: str | Path, height: int, width: int, steps: int,
                    overrides: Sequence[str] = ()) -> dict[str, Any]:
    """A short training of the candidate in this process (``training.train``).

    Returns the candidate's name with :func:`read_training` of the run folder (kept), or with
    ``train_error`` if the trainer refused the config. The trainer's output is captured in
    ``train_output.txt`` of the run folder.
    """
    from configs import ConfigError
    from training import run_config, train

    run_dir = Path(run_dir)
    overrides = [f"model.backbone={candidate.backbone}", f"model.backbone_stage={candidate.stage}",
                 f"data.image_height={height}", f"data.image_width={width}", f"train.max_steps={steps}",
                 "train.trackers=[]", *overrides]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            cfg, run, _ = run_config("crnn", overrides=overrides, output_dir=run_dir)
            train(cfg, run)
    except ConfigError as e:  # refused before training (e.g. a sequence too short for a label)
        return {"candidate": candidate.name, "train_error": str(e), "run_dir": str(run_dir)}
    finally:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "train_output.txt").write_text(out.getvalue())
    return {"candidate": candidate.name, **read_training(run_dir)}


def train_candidates(table: pd.DataFrame, runs_dir: str | Path, height: int, width: int, steps: int,
                     overrides: Sequence[str] = ()) -> pd.DataFrame:
    """:func:`train_candidate` for every row of a :func:`candidate_table` with ``safe_worst_case``;
    the table with ``exact_match``, ``cer``, ``train_s`` (and ``train_error``) joined on."""
    runs = [train_candidate(Candidate.parse(name), Path(runs_dir) / name, height, width, steps, overrides)
            for name in table.index[table["safe_worst_case"].astype(bool)]]
    cols = ["exact_match", "cer", "final_loss", "train_s", "train_error"]
    trained = pd.DataFrame(runs, columns=["candidate", *cols]).set_index("candidate")
    return table.join(trained)


def final_loss(log: Sequence[dict[str, Any]], fraction: float = 0.25) -> float:
    """Mean training loss over the last ``fraction`` of the logged steps (NaN if none): after a
    few steps, when no candidate reads a plate yet, the loss still ranks them."""
    losses = [r["loss"] for r in log if "loss" in r]
    if not losses:
        return float("nan")
    return float(np.mean(losses[-max(1, math.ceil(fraction * len(losses))):]))


def read_training(run_dir: str | Path) -> dict[str, Any]:
    """Summary of a finished run folder: exact match and CER of its best model on the (first)
    test set, :func:`final_loss`, steps and training seconds."""
    run_dir = Path(run_dir)
    report = json.loads((run_dir / "test_metrics.json").read_text())
    test = next(iter(report["test"].values()))["overall"]
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines() if line.strip()]
    return {"exact_match": test["exact_match"], "cer": test["cer"], "final_loss": final_loss(log),
            "steps": report["steps"], "train_s": report["train_seconds"], "run_dir": str(run_dir)}


# --------------------------------------------------------------------------- recommendation


@dataclass
class Recommendation:
    candidate: str | None
    reason: str


def recommend(table: pd.DataFrame, latency_col: str = "latency_b1_ms", budget_ms: float | None = None,
              metric: str = "exact_match") -> Recommendation:
    """The candidate with the best ``metric`` among those within ``budget_ms`` of ``latency_col``.

    Only rows with a ``metric`` value and ``safe_worst_case`` (if that column exists) compete.
    Ties go to the lower CER, then the lower ``final_loss`` (if present), then the lower
    latency. If none fits the budget, the fastest trained candidate is named, and the reason
    says so.
    """
    rows = table.dropna(subset=[metric, latency_col])
    if "safe_worst_case" in rows:
        rows = rows[rows["safe_worst_case"].astype(bool)]
    if rows.empty:
        return Recommendation(None, f"no trained candidate has {metric} and {latency_col}")
    within = rows if budget_ms is None else rows[rows[latency_col] <= budget_ms]
    budget = "" if budget_ms is None else f" within {budget_ms:g} ms ({latency_col})"
    if within.empty:
        best = rows.sort_values(latency_col).index[0]
        return Recommendation(best, f"no candidate fits{budget}; {best} is the fastest "
                                    f"({rows.loc[best, latency_col]:.1f} ms)")
    def column(name: str) -> pd.Series:
        return within[name].fillna(np.inf) if name in within else pd.Series(0.0, index=within.index)

    higher_is_better = BEST_METRICS.get(metric, "max") == "max"
    order = pd.DataFrame({"m": within[metric] if higher_is_better else -within[metric],
                          "cer": column("cer"), "loss": column("final_loss"), "lat": within[latency_col]})
    ranked = order.sort_values(["m", "cer", "loss", "lat"], ascending=[False, True, True, True])
    best = ranked.index[0]
    tied = (ranked["m"] == ranked["m"].iloc[0]) & (ranked["cer"] == ranked["cer"].iloc[0])
    tie = ""
    if tied.sum() > 1:
        tie = f"; {tied.sum()} tie on {metric} and CER" + (
            f", lowest final training loss {order.loc[best, 'loss']:.3f}" if "final_loss" in within else "")
    return Recommendation(best, f"{best}: best {metric} {within.loc[best, metric]:.4f}{budget} "
                                f"among {len(within)} candidate(s), at {within.loc[best, latency_col]:.1f} ms{tie}")
