"""Self-training adaptation (adapt.py): the pseudo-label filters on hand-made readings, one round
end to end on generated crops, and the stops on bad input."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

import adaptation.rounds as rounds
from adaptation import AdaptSettings, Reading, adapt, rejection
from adaptation.filters import confident, fits_format, views_agree
from configs import ConfigError
from data.synth import write_synthetic_dataset
from inference import load_joint_model
from test_train import TINY, run

BR = Reading("a.png", "ABC1234", 0.9, country="BR", other_texts=("ABC1234", "ABC1234"))


# --------------------------------------------------------------------------- filters
def test_confidence_filter():
    assert confident(BR, 0.5) and confident(BR, 0.9)
    assert not confident(BR, 0.95)
    assert not confident(replace(BR, text=""), 0.0)  # an empty reading is never a label


def test_format_filter_uses_the_given_or_the_predicted_country():
    assert fits_format(BR, "BR") and fits_format(BR, "auto")
    assert fits_format(replace(BR, text="ABC1D23"), "BR")  # the Mercosur format
    assert not fits_format(replace(BR, text="ABC123"), "BR")
    assert not fits_format(BR, "GB")  # a valid Brazilian text, but not a British plate
    assert not fits_format(replace(BR, country="GB"), "auto")
    assert not fits_format(replace(BR, country=None), "auto")  # no head: no grammar to check
    assert not fits_format(replace(BR, country="EU"), "auto")  # a group, not a country's formats


def test_agreement_filter():
    assert views_agree(BR) and views_agree(replace(BR, other_texts=()))
    assert not views_agree(replace(BR, other_texts=("ABC1234", "ABC1284")))


def test_rejection_names_the_first_failing_filter():
    assert rejection(BR, min_confidence=0.5, country="BR") is None
    assert rejection(replace(BR, confidence=0.1, text="X"), min_confidence=0.5, country="BR") == "low_confidence"
    assert rejection(replace(BR, text="ABC123"), min_confidence=0.5, country="BR") == "not_a_plate_format"
    disagree = replace(BR, other_texts=("ABC1234", "ABD1234"))
    assert rejection(disagree, min_confidence=0.5, country="BR") == "views_disagree"


# --------------------------------------------------------------------------- bad input (no training)
def settings(tmp_path, images, **kw) -> AdaptSettings:
    return AdaptSettings(weights=str(rounds.Path("weights/crnn")), images=str(images),
                         output_dir=str(tmp_path / "run"), **kw)


def test_bad_input_is_one_clear_error_before_anything_is_written(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no crops here")
    (empty / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ConfigError, match="no readable image"):
        adapt(settings(tmp_path, empty, views=("none",)))
    few = write_synthetic_dataset(tmp_path / "few", n=5, seed=1, two_row_prob=0.0)
    with pytest.raises(ConfigError, match="5 readable crops; adaptation needs at least 20"):
        adapt(settings(tmp_path, few, views=("none",)))
    with pytest.raises(ConfigError, match="--country: unknown country 'XX'"):
        adapt(settings(tmp_path, few, country="XX"))
    with pytest.raises(ConfigError, match="--views: unknown view 'foo'"):
        adapt(settings(tmp_path, few, views=("none", "foo")))
    with pytest.raises(ConfigError, match="train.max_steps"):  # a bad training override, before any reading
        adapt(settings(tmp_path, few, overrides=["train.max_steps=-1"]))
    with pytest.raises(ConfigError, match="not a folder"):
        adapt(settings(tmp_path, tmp_path / "missing"))
    with pytest.raises(ConfigError, match="--joint weights/crnn: that is the model adapted"):
        adapt(settings(tmp_path, few, joint="weights/crnn"))
    with pytest.raises(ValueError, match="no-such-model"):
        adapt(settings(tmp_path, few, joint=str(tmp_path / "no-such-model")))
    with pytest.raises(ConfigError, match="--teacher weights/crnn: that is the model adapted"):
        adapt(settings(tmp_path, few, teacher="weights/crnn"))
    with pytest.raises(ConfigError, match="--joint and --teacher: give one"):
        adapt(settings(tmp_path, few, joint="weights/attn", teacher="weights/attn"))
    # nothing of a run was written by any of them
    assert not (tmp_path / "run" / rounds.LOG).exists()


def test_a_non_empty_output_dir_is_refused_without_overwrite(tmp_path):
    crops = write_synthetic_dataset(tmp_path / "crops", n=20, seed=1, two_row_prob=0.0)
    out = tmp_path / "run"
    out.mkdir()
    (out / rounds.LOG).write_text('{"round": 0}\n')
    with pytest.raises(ConfigError, match="is not empty"):
        adapt(settings(tmp_path, crops, views=("none",)))
    assert (out / rounds.LOG).read_text() == '{"round": 0}\n'


def test_noise_images_stop_before_training(tmp_path):
    """Images of something other than plates: nothing passes the filters, so nothing is trained."""
    noise = tmp_path / "noise"
    noise.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (40, 120, 3), dtype=np.uint8)).save(noise / f"{i}.png")
    with pytest.raises(ConfigError, match="passes the filters.*nothing to train on"):
        adapt(settings(tmp_path, noise, country="BR", min_confidence=0.9))
    log = [json.loads(line) for line in (tmp_path / "run" / rounds.LOG).read_text().splitlines()]
    assert [r["round"] for r in log] == [0] and log[0]["kept"] == 0 and log[0]["readable"] == 24
    assert not (tmp_path / "run" / "round1").exists() and not (tmp_path / "run" / rounds.MODEL).exists()


def test_joint_reading_is_both_models_reading_together_in_every_view(tmp_path):
    crops = write_synthetic_dataset(tmp_path / "crops", n=6, seed=4, countries=["BR"], two_row_prob=0.0)
    paths = sorted(crops.glob("*.png"))
    readings, errors = rounds.read_crops("weights/attn", paths, "BR", ("none", "stretch"), joint="weights/crnn")
    assert not errors and len(readings) == len(paths)
    joint = {v: load_joint_model(["weights/attn", "weights/crnn"], country="BR", views=(v,)).predict(
        [str(p) for p in paths]) for v in ("none", "stretch")}
    assert [r.text for r in readings] == [p.text for p in joint["none"]]
    assert [r.confidence for r in readings] == pytest.approx([p.confidence for p in joint["none"]])
    assert [r.other_texts for r in readings] == [(p.text,) for p in joint["stretch"]]


def test_a_teacher_reads_once_and_its_readings_serve_every_round(tmp_path, monkeypatch):
    crops = write_synthetic_dataset(tmp_path / "crops", n=20, seed=5, countries=["BR"], two_row_prob=0.0)
    read, trained = [], []

    def teacher_reads(weights, paths, country, views, joint=None):
        read.append((str(weights), joint))
        return [Reading(str(p), "ABC1234", 0.9 if i < 12 else 0.1, country="BR") for i, p in enumerate(paths)], []

    def train_round(s, config, run, weights, kept):
        trained.append((str(weights), len(kept)))
        return rounds.Path(s.weights)  # stands in for the round's model

    monkeypatch.setattr(rounds, "read_crops", teacher_reads)
    monkeypatch.setattr(rounds, "train_round", train_round)
    adapt(settings(tmp_path, crops, teacher="weights/attn", country="BR", rounds=2, views=("none",)))
    assert read == [("weights/attn", None)]
    assert trained == [("weights/crnn", 12), ("weights/crnn", 12)]
    log = [json.loads(line) for line in (tmp_path / "run" / rounds.LOG).read_text().splitlines()]
    assert [(r["round"], r["kept"], r["teacher"]) for r in log] == [(k, 12, "weights/attn") for k in range(3)]


# --------------------------------------------------------------------------- one round end to end
@pytest.mark.slow  # trains
def test_one_round_end_to_end_gives_an_ordinary_model_folder(tmp_path, monkeypatch, capsys):
    synth = f"data.synth_dir={tmp_path / 'synth'}"
    run([sys.executable, "train_accelerate.py", "--arch", "crnn", "--output-dir", str(tmp_path / "init"),
         *TINY, synth, "train.max_steps=1", "train.trackers=[]"])
    crops = write_synthetic_dataset(tmp_path / "crops", n=24, seed=3, countries=["BR"], two_row_prob=0.0)
    labels = rounds.label_texts(crops / "labels.csv")
    read = rounds.read_crops

    def reads_well(*args):
        # A one-step model reads nothing: stand in for one that reads these crops (all but four right).
        readings, errors = read(*args)
        texts = {f: t if i >= 4 else t[::-1] for i, (f, t) in enumerate(labels.items())}
        return [replace(r, text=texts[r.filename], confidence=0.99, country="BR") for r in readings], errors

    monkeypatch.setattr(rounds, "read_crops", reads_well)
    run_tiny = [k for k in TINY if not k.startswith(("model.", "data.image_"))]
    out = tmp_path / "run"
    model = adapt(AdaptSettings(str(tmp_path / "init" / "best"), str(crops), country="auto",
                                output_dir=str(out), check=str(crops), rounds=1, steps=2, views=("none",),
                                config="configs/adapt_crnn.yaml", overrides=[*run_tiny, synth]))
    said = capsys.readouterr().out
    assert "used only to measure the pseudo-labels' precision" in said
    log = [json.loads(line) for line in (out / rounds.LOG).read_text().splitlines()]
    assert [r["round"] for r in log] == [0, 1]
    # The reversed texts are not Brazilian plates: 20 of 24 kept, all of them right.
    assert log[0]["kept"] == 20 and log[0]["kept_share"] == pytest.approx(20 / 24)
    assert log[0]["rejected"]["not_a_plate_format"] == 4 and log[0]["pseudo_label_precision"] == 1.0
    assert 0.0 <= log[1]["check_exact_match"] <= 1.0
    kept_csv = (out / "round1" / rounds.PSEUDO_LABELS).read_text().splitlines()
    assert kept_csv[0] == "filename,text,country,rows" and len(kept_csv) == 21
    assert json.loads((out / "round1" / "log.jsonl").read_text().splitlines()[0])["init_from"] == str(
        tmp_path / "init" / "best")
    assert model == out / rounds.MODEL and (model / "model.safetensors").is_file()
    from inference import load_reader

    assert load_reader(model).predict(str(next((crops / "images").iterdir()))).ok
