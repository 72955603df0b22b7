"""Self-training rounds: read unlabelled crops, keep the readings that pass the filters, fine-tune
on them mixed with synthetic plates, and read again with the new model.

    RUN/
        adapt_log.jsonl       one record per round (round 0: the starting model)
        round1/               an ordinary fine-tune run folder (config.yaml, log.jsonl, last/, ...)
            pseudo_labels.csv the kept crops and the texts the model read (filename,text,country,rows)
        round2/ ...
        model/                the adapted model: the last round's last/ (config.json + model.safetensors)

Each round fine-tunes from the previous round's model with ``configs/adapt_<arch>.yaml`` (a
fine-tune config: ``data.synth_mix``, strong camera effects on the student's input), so the
training mechanism is the fine-tune's (``training.run_config`` / ``training.train``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from adaptation.filters import REASONS, Reading, rejection
from configs import ConfigError
from data.datasets import load_records
from data.files import write_text_atomically
from data.images import image_files
from data.transforms import check_reading_views
from evaluation import score_records
from inference import load_joint_model, load_reader
from inference.torch_readers import JointPlateReader
from models.plate_formats import check_country
from training import run_config, train

# Fewer crops give a round too little of the camera's look to learn (and too few readings to
# tell whether the filters work): a fine-tune on a handful of its own readings learns them by heart.
MIN_IMAGES = 20
LABELS_CSV = "labels.csv"
LOG = "adapt_log.jsonl"
MODEL = "model"
PSEUDO_LABELS = "pseudo_labels.csv"


@dataclass
class AdaptSettings:
    weights: str
    images: str
    country: str = "auto"
    output_dir: str | None = None
    check: str | None = None
    rounds: int = 3
    steps: int | None = None  # train.max_steps per round (None: the config's)
    min_confidence: float = 0.5
    views: tuple[str, ...] = ("none", "stretch", "pad5")  # all must read the same text
    config: str | None = None  # default configs/adapt_<arch>.yaml
    overrides: list[str] = field(default_factory=list)
    overwrite: bool = False
    joint: str | None = None  # a second model that reads with the adapted one (never trained here)
    teacher: str | None = None  # a model that reads the crops instead of the adapted one (never trained here)


def say(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------- the folder
def list_images(folder: str | os.PathLike) -> tuple[list[Path], Path | None]:
    """The crops of ``folder``: the files its ``labels.csv`` lists (only the filename column is
    read here), else every image file under it (hidden ones left out, as everywhere); and that labels.csv, if any."""
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"--images {folder}: not a folder")
    labels = root / LABELS_CSV
    if labels.is_file():
        with labels.open(newline="") as f:
            rows = csv.DictReader(f)
            if "filename" not in (rows.fieldnames or []):
                raise ConfigError(f"{labels}: no filename column")
            return [root / r["filename"] for r in rows], labels
    return [Path(f) for f in image_files(root)], None


def read_crops(weights: str | os.PathLike, paths: list[Path], country: str, views: tuple[str, ...],
               joint: str | os.PathLike | None = None) -> tuple[list[Reading], list[str]]:
    """Every crop read by the model in each view (the first view's reading is the candidate);
    also the messages of crops that could not be read. ``country`` (a code or ``auto``) reads
    under that country's formats (``models.plate_formats``). With ``joint`` (a model folder), the
    two models read together in every view (``load_joint_model``), as ``predict.py --joint``."""
    if joint is None:
        readers = [load_reader(weights, country=country, views=None if v == "none" else (v,)) for v in views]
    else:
        readers = [load_joint_model([weights, joint], country=country, views=(v,)) for v in views]
    names = [str(p) for p in paths]
    per_view = [r.predict(names) for r in readers]
    readings, errors = [], []
    for i, first in enumerate(per_view[0]):
        if not first.ok:
            errors.append(f"{names[i]}: {first.error}")
            continue
        readings.append(Reading(names[i], first.text, float(first.confidence), first.country, first.rows,
                                tuple(v[i].text for v in per_view[1:])))
    return readings, errors


def pseudo_labels_csv(kept: list[Reading], country: str, relative_to: Path) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["filename", "text", "country", "rows"])
    for r in kept:
        c = r.country if country == "auto" else country
        w.writerow([os.path.relpath(Path(r.filename).resolve(), relative_to.resolve()), r.text, c or "",
                    "" if r.rows is None else int(r.rows)])
    return out.getvalue()


def label_texts(labels_csv: Path) -> dict[str, str]:
    """filename -> labelled text, for measuring pseudo-label precision only (never trained on)."""
    with labels_csv.open(newline="") as f:
        return {str(labels_csv.parent / r["filename"]): (r.get("text") or "") for r in csv.DictReader(f)}


def exact_match(weights: str | os.PathLike, check: str) -> float:
    """The model's exact match on the labelled --check set (plain reading, as val.py)."""
    reader = load_reader(weights)
    records = load_records(check, reader.charset)
    return float(score_records(reader, records).metrics["overall"]["exact_match"])


# --------------------------------------------------------------------------- checks before any work
def check_output_dir(out: Path, overwrite: bool) -> None:
    """Refuse a folder that already holds something, unless ``overwrite`` (which deletes only
    what an adaptation writes there)."""
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise ConfigError(f"--output-dir {out} is not empty: choose a new folder, or pass --overwrite "
                          f"(deletes the adaptation's files there: {LOG}, {MODEL}/, round*/)")
    for p in out.iterdir():
        if p.name in (LOG, MODEL) or (p.is_dir() and p.name.startswith("round")):
            shutil.rmtree(p) if p.is_dir() else p.unlink()


def check_settings(s: AdaptSettings) -> str:
    """Bad input as one clear line before anything is read or written; returns the model's arch."""
    try:
        s.country = check_country(s.country, "--country")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if s.rounds < 1:
        raise ConfigError(f"--rounds must be >= 1, got {s.rounds}")
    if not 0.0 <= s.min_confidence <= 1.0:
        raise ConfigError(f"--min-confidence must be in [0, 1], got {s.min_confidence}")
    try:
        s.views = check_reading_views(s.views, "--views")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if s.check and not Path(s.check).exists():
        raise ConfigError(f"--check {s.check}: not found")
    reader = load_reader(s.weights)  # WeightsError (a ValueError) names the folder
    if s.joint is not None and s.teacher is not None:
        raise ConfigError("--joint and --teacher: give one (--joint reads with the adapted model, "
                          "--teacher instead of it)")
    for flag, other in (("--joint", s.joint), ("--teacher", s.teacher)):
        if other is not None:
            if Path(other).resolve() == Path(s.weights).resolve():
                raise ConfigError(f"{flag} {other}: that is the model adapted; give another model")
            # Refuses an ONNX file or another charset, naming it; the adapted model is loaded once.
            JointPlateReader([reader, load_reader(other)])
    if s.country == "auto" and "country_head" in reader.config.get("model", {}) \
            and not reader.config["model"].get("country_head"):
        raise ConfigError(f"--country auto: {s.weights} has no country head to predict the country "
                          "whose plate formats the readings must follow; give --country CC")
    return reader.arch


# --------------------------------------------------------------------------- rounds
def adapt(s: AdaptSettings) -> Path:
    """Run the rounds; returns the adapted model folder. ConfigError for bad input, or when no
    reading passes the filters (nothing is trained then)."""
    arch = check_settings(s)
    paths, labels_csv = list_images(s.images)
    out = Path(s.output_dir) if s.output_dir else Path("runs") / "adapt" / time.strftime("%Y%m%d-%H%M%S")
    config = s.config or f"configs/adapt_{arch}.yaml"
    # The round's config is built once now, so that a bad override stops the run before the reading.
    round_config(s, config, out / "round1", s.weights, out / "round1" / PSEUDO_LABELS)
    check_output_dir(out, s.overwrite)
    truth = label_texts(labels_csv) if labels_csv else None
    if truth is not None and any(truth.values()):
        whose = "the teacher's" if s.teacher else "its own"
        say(f"{labels_csv}: its texts are used only to measure the pseudo-labels' precision; "
            f"the model trains on {whose} readings, never on these labels")
    weights, readings = s.weights, None
    for k in range(0, s.rounds + 1):
        if s.teacher is None:
            readings, errors = read_crops(weights, paths, s.country, s.views, s.joint)
        elif readings is None:  # the teacher does not change: its readings serve every round
            readings, errors = read_crops(s.teacher, paths, s.country, s.views)
        if k == 0:  # the folder itself is checked once, on the first reading
            if not readings:
                first = f" (first: {errors[0]})" if errors else ""
                raise ConfigError(f"--images {s.images}: no readable image{first}")
            if len(readings) < MIN_IMAGES:
                raise ConfigError(f"--images {s.images}: {len(readings)} readable crops; adaptation needs at "
                                  f"least {MIN_IMAGES}: fewer give a round too little of the camera's look to "
                                  "learn, and the model learns its own few readings by heart")
            if errors:
                say(f"{len(errors)} crops could not be read and are left out (first: {errors[0]})")
        why = Counter(rejection(r, min_confidence=s.min_confidence, country=s.country) for r in readings)
        kept = [r for r in readings if rejection(r, min_confidence=s.min_confidence, country=s.country) is None]
        record = {"round": k, "weights": str(weights), "joint": s.joint, "teacher": s.teacher,
                  "images": len(paths), "readable": len(readings),
                  "kept": len(kept), "kept_share": len(kept) / len(readings),
                  "rejected": {reason: why.get(reason, 0) for reason in REASONS}}
        if truth is not None:
            right = sum(truth.get(r.filename) == r.text for r in kept)
            record["pseudo_label_precision"] = right / len(kept) if kept else None
            record["labelled_read_right"] = sum(truth.get(r.filename) == r.text for r in readings) / len(readings)
        if s.check:
            record["check_exact_match"] = exact_match(weights, s.check)
        report_round(record, labels_csv, s.check)
        append_log(out, record)
        if k == s.rounds:
            break
        if not kept:
            raise ConfigError(f"no reading of {s.images} passes the filters ({describe(record['rejected'])}): "
                              "nothing to train on. Are these plate crops of the --country given? A lower "
                              "--min-confidence keeps more (and more wrong) readings")
        weights = train_round(s, config, out / f"round{k + 1}", weights, kept)
    return publish(out, weights)


def train_round(s: AdaptSettings, config: str, run: Path, weights: str | os.PathLike, kept: list[Reading]) -> Path:
    """Fine-tune ``weights`` on the kept crops (mixed with synthetic plates, as the config says)."""
    run.mkdir(parents=True, exist_ok=True)
    csv_path = run / PSEUDO_LABELS
    write_text_atomically(csv_path, pseudo_labels_csv(kept, s.country, run))
    cfg, run_dir, init = round_config(s, config, run, weights, csv_path)
    train(cfg, run_dir, init=init)
    return run_dir.last


def round_config(s: AdaptSettings, config: str, run: Path, weights: str | os.PathLike, train_csv: Path):
    """A round's fine-tune config (``training.run_config``): the kept crops, --steps, the overrides."""
    overrides = [f"data.train={train_csv}", *s.overrides]
    if s.steps is not None:
        overrides.append(f"train.max_steps={s.steps}")
    return run_config(config=config, overrides=overrides, output_dir=run, init_from=weights)


def publish(out: Path, weights: str | os.PathLike) -> Path:
    """The adapted model as RUN/model (copied whole, then renamed into place)."""
    dest, tmp = out / MODEL, out / (MODEL + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(weights, tmp)
    os.replace(tmp, dest)
    say(f"adapted model: {dest} (predict.py --weights {dest}, val.py, export.py)")
    return dest


def describe(rejected: dict[str, int]) -> str:
    return ", ".join(f"{n} {REASONS[k]}" for k, n in rejected.items() if n) or "no crop"


def report_round(r: dict, labels_csv: Path | None, check: str | None) -> None:
    what = "the starting model" if r["round"] == 0 else f"after round {r['round']}"
    line = (f"round {r['round']} ({what}): kept {r['kept']} of {r['readable']} crops "
            f"({100 * r['kept_share']:.1f}%); left out: {describe(r['rejected'])}")
    if r.get("pseudo_label_precision") is not None:
        line += (f"; pseudo-label precision {100 * r['pseudo_label_precision']:.1f}% "
                 f"(against {labels_csv}, not trained on)")
    if check:
        line += f"; exact match on --check {check}: {100 * r['check_exact_match']:.2f}%"
    say(line)


def append_log(out: Path, record: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / LOG).open("a") as f:
        f.write(json.dumps(record) + "\n")
