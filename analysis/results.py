"""Analysis of a trained run folder (``config.yaml``, ``log.jsonl``, ``best/``, ``test_metrics.json``).

Predictions with confidences on a labelled set (:func:`predict_records`), the errors, which
characters are read as which (:func:`confusion_counts`, from aligned edit operations),
accuracy against confidence and the threshold for a target precision
(:func:`threshold_for_precision`), metrics per country and row count, and training curves.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rapidfuzz.distance import Levenshtein
from torch.utils.data import DataLoader

from data.text import MASK_CHAR, normalize_plate_text
from metrics import PlateMetrics, ReadingRecord, score_texts, with_new_metric_names

MISSING = "∅"  # the "character" of an insertion or deletion in the confusion table


@dataclass
class RunInfo:
    path: Path
    config: dict[str, Any]
    log: list[dict[str, Any]]
    test_metrics: dict[str, Any] | None
    model_dir: Path


def load_run(run_dir: str | Path) -> RunInfo:
    """Read a run folder written by ``train_accelerate.py`` (the model: ``best/``, else ``last/``)."""
    import yaml

    path = Path(run_dir)
    if not (path / "config.yaml").is_file():
        raise FileNotFoundError(f"{path} is not a run folder: no config.yaml")
    config = yaml.safe_load((path / "config.yaml").read_text())
    log_file = path / "log.jsonl"
    log = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()] if log_file.is_file() else []
    tm = path / "test_metrics.json"
    test_metrics = with_new_metric_names(json.loads(tm.read_text())) if tm.is_file() else None
    model_dir = next((path / d for d in ("best", "last") if (path / d / "config.json").is_file()), None)
    if model_dir is None:
        raise FileNotFoundError(f"{path} has no saved model (best/ or last/)")
    return RunInfo(path, config, log, test_metrics, model_dir)


def train_demo_run(steps: int, eval_size: int = 1000, extra: Sequence[str] = ()) -> Path:
    """A short run of the default CRNN (resnet18@2, 32x160) on synthetic plates, in a fresh folder
    under the notebooks' cache; validation 8 times. Returns the run folder."""
    from analysis.common import cache_dir, new_work_dir
    from analysis.sizing import Candidate, short_training_overrides, train_candidate

    overrides = short_training_overrides(steps, synth_dir=cache_dir() / "synth", eval_size=eval_size,
                                         extra=[f"train.eval_every={max(1, steps // 8)}", *extra])
    result = train_candidate(Candidate("resnet18", 2), new_work_dir("demo-run"), 32, 160, steps, overrides)
    if "train_error" in result:
        raise ValueError(f"the demo run was refused: {result['train_error']}")
    return Path(result["run_dir"])


def run_dataset(run: RunInfo, split: str = "test") -> Path:
    """The dataset of ``split`` (``val`` or ``test``) in the run's config; the fixed synthetic set
    is written if it is not on this machine (it depends on its seed only)."""
    from configs import SYNTH, load_config
    from training import ensure_synth_set

    cfg = load_config(None, run.path / "config.yaml")
    source = getattr(cfg.data, split)
    return ensure_synth_set(cfg.data, split) if source == SYNTH else Path(source)


def training_curves(log: Sequence[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train rows: step, loss, lr, time_s, data_wait; validation rows: step and the ``val/`` metrics), by step."""
    train = pd.DataFrame([r for r in log if "loss" in r])
    val = pd.DataFrame([{"step": r["step"], **{k[4:]: v for k, v in r.items() if k.startswith("val/")}}
                        for r in log if any(k.startswith("val/") for k in r)])
    return (train.set_index("step") if len(train) else train), (val.set_index("step") if len(val) else val)


def predict_records(model, records: Sequence[Any], batch_size: int = 64, pipeline: str = "eval") -> pd.DataFrame:
    """Predictions of ``model`` on dataset records (``data.datasets.PlateRecord``).

    Columns: ``file``, ``label``, ``pred``, ``confidence``, ``country``, ``rows``, ``correct``
    and ``edit_distance`` (scored as ``metrics`` scores them: normalised, ``*`` matches any).
    """
    from data.datasets import PlateDataset, collate_plates
    from data.transforms import spec_transform
    from evaluation import evaluate

    spec = model.input_spec
    transform = spec_transform(spec, pipeline)
    loader = DataLoader(PlateDataset(records, transform), batch_size=batch_size, collate_fn=collate_plates)
    read = evaluate(model, loader, desc="predict", keep_records=True).records
    preds, confs = [r.text for r in read], [r.confidence for r in read]
    labels = [r.text for r in records]
    correct, dist = score_texts(preds, labels)
    return pd.DataFrame({
        "file": [str(r.path) for r in records], "label": labels, "pred": preds, "confidence": confs,
        "country": [r.country for r in records], "rows": [int(r.rows) for r in records],
        "correct": correct, "edit_distance": dist,
    })


def errors(preds: pd.DataFrame, n: int | None = None) -> pd.DataFrame:
    """Wrong predictions, most confident first (the dangerous ones: a threshold would not stop them)."""
    wrong = preds[~preds["correct"]].sort_values("confidence", ascending=False)
    return wrong if n is None else wrong.head(n)


# --------------------------------------------------------------------------- confusions


def confusion_counts(pairs: Iterable[tuple[str, str]], indels: bool = True) -> Counter[tuple[str, str]]:
    """``(label char, predicted char) -> count`` from aligned edit operations of (label, prediction) pairs.

    Texts are normalised first. A substitution counts ``(true, read)``; with ``indels`` a missed
    character counts ``(true, MISSING)`` and an extra one ``(MISSING, read)``. A masked ``*`` in
    the label matches anything and is never counted. When several alignments are equally good,
    rapidfuzz's ``Levenshtein.editops`` picks one.
    """
    counts: Counter[tuple[str, str]] = Counter()
    for label, pred in pairs:
        label, pred = normalize_plate_text(label), normalize_plate_text(pred)
        if label == pred:
            continue
        for op in Levenshtein.editops(label, pred):
            if op.tag == "replace":
                if label[op.src_pos] != MASK_CHAR:
                    counts[(label[op.src_pos], pred[op.dest_pos])] += 1
            elif indels and op.tag == "delete":
                counts[(label[op.src_pos], MISSING)] += 1
            elif indels and op.tag == "insert":
                counts[(MISSING, pred[op.dest_pos])] += 1
    return counts


def top_confusions(counts: Counter[tuple[str, str]], n: int = 15) -> pd.DataFrame:
    rows = [{"true": t, "read_as": p, "count": c} for (t, p), c in counts.most_common(n)]
    return pd.DataFrame(rows, columns=["true", "read_as", "count"])


def confusion_matrix(counts: Counter[tuple[str, str]], max_chars: int | None = 20) -> pd.DataFrame:
    """Rows: true characters, columns: what they were read as; only characters involved in errors
    (the ``max_chars`` most involved, if given), sorted, with MISSING last."""
    involvement: Counter[str] = Counter()
    for (t, p), c in counts.items():
        involvement[t] += c
        involvement[p] += c
    chars = [ch for ch, _ in involvement.most_common(max_chars)]
    chars = sorted(c for c in chars if c != MISSING) + ([MISSING] if MISSING in chars else [])
    m = pd.DataFrame(0, index=pd.Index(chars, name="true"), columns=pd.Index(chars, name="read as"))
    for (t, p), c in counts.items():
        if t in m.index and p in m.columns:
            m.loc[t, p] += c
    return m


# --------------------------------------------------------------------------- confidence


def accuracy_by_confidence(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> pd.DataFrame:
    """Accuracy in bins of equal counts of confidence: ``conf_lo``, ``conf_hi``, ``conf_mean``,
    ``accuracy``, ``n``. A calibrated reader has accuracy close to conf_mean."""
    df = pd.DataFrame({"conf": np.asarray(confidence, float), "ok": np.asarray(correct, bool)})
    if df.empty:
        return pd.DataFrame(columns=["conf_lo", "conf_hi", "conf_mean", "accuracy", "n"])
    df["bin"] = pd.qcut(df["conf"].rank(method="first"), q=min(bins, len(df)), labels=False)
    g = df.groupby("bin")
    return pd.DataFrame({"conf_lo": g["conf"].min(), "conf_hi": g["conf"].max(), "conf_mean": g["conf"].mean(),
                         "accuracy": g["ok"].mean(), "n": g.size()}).reset_index(drop=True)


def precision_coverage(confidence: Sequence[float], correct: Sequence[bool]) -> pd.DataFrame:
    """For each distinct confidence t (descending): accept plates with confidence >= t; the
    ``precision`` (accuracy of the accepted), ``coverage`` (share accepted) and ``accepted``."""
    conf = np.asarray(confidence, float)
    ok = np.asarray(correct, bool)
    if conf.size == 0:
        return pd.DataFrame(columns=["threshold", "precision", "coverage", "accepted"])
    order = np.argsort(-conf, kind="stable")
    conf, ok = conf[order], ok[order]
    hits = np.cumsum(ok)
    last_of_tie = np.r_[conf[1:] != conf[:-1], True]  # cut only between different confidences
    k = np.nonzero(last_of_tie)[0]
    return pd.DataFrame({"threshold": conf[k], "precision": hits[k] / (k + 1),
                         "coverage": (k + 1) / conf.size, "accepted": k + 1})


@dataclass
class Threshold:
    target: float
    threshold: float | None  # accept plates with confidence >= threshold; None: no threshold reaches target
    precision: float
    coverage: float
    accepted: int
    total: int


def threshold_for_precision(confidence: Sequence[float], correct: Sequence[bool], target: float = 0.99) -> Threshold:
    """The lowest confidence threshold whose accepted plates have precision >= ``target``.

    Among all thresholds meeting the target it takes the one with the largest coverage (precision
    is not monotonic in the threshold). With none, ``threshold`` is None and coverage 0.
    """
    curve = precision_coverage(confidence, correct)
    ok = curve[curve["precision"] >= target - 1e-12]
    if ok.empty:
        return Threshold(target, None, float("nan"), 0.0, 0, int(len(np.asarray(confidence))))
    best = ok.loc[ok["coverage"].idxmax()]
    return Threshold(target, float(best["threshold"]), float(best["precision"]), float(best["coverage"]),
                     int(best["accepted"]), int(len(np.asarray(confidence))))


# --------------------------------------------------------------------------- groups


def group_metrics(preds: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per country, per row count) tables of ``metrics.PlateMetrics``: n, exact_match,
    mean_edit_distance, cer."""
    m = PlateMetrics()
    m.update(ReadingRecord(text=t, label=lab, country=c, rows=int(n))
             for t, lab, c, n in zip(preds["pred"], preds["label"], preds["country"], preds["rows"]))
    res = m.compute()
    by_country = pd.DataFrame(res["by_country"]).T.sort_values("exact_match")
    by_rows = pd.DataFrame(res["by_rows"]).T
    by_rows.index = [f"{k}-row" for k in by_rows.index]
    return by_country, by_rows
