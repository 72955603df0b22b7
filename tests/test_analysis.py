"""The functions behind the notebooks (analysis/), on hand-made inputs: fast."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from rapidfuzz.distance import Levenshtein

from analysis import eda, results, sizing
from analysis.results import MISSING
from data.datasets import PlateRecord
from data.text import Charset


# --------------------------------------------------------------------------- eda


def _write_image(path, h, w):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((h, w, 3), 200, np.uint8))


@pytest.fixture
def csv_dataset(tmp_path):
    _write_image(tmp_path / "a.png", 20, 100)
    _write_image(tmp_path / "b.png", 40, 80)
    _write_image(tmp_path / "c.png", 10, 45)
    _write_image(tmp_path / "d.png", 10, 40)
    (tmp_path / "labels.csv").write_text(
        "filename,text,country,lines\n"  # "lines": the old name of "rows", still read
        "a.png,ab-123,DE,1\n"      # normalised to AB123
        "b.png,AB 123,FR,2\n"      # the same text again
        "c.png,KÖ12,DE,1\n"        # Ö is outside the charset
        "d.png,XY99,Z9,1\n"        # not a country code
        "missing.png,QQ11,DE,1\n",  # no such file
        encoding="utf-8",
    )
    return tmp_path


def test_scan_keeps_raw_labels_and_names_problems(csv_dataset):
    table = eda.scan_dataset(csv_dataset)
    assert table.attrs["format"] == "csv"
    assert list(table["text"]) == ["AB123", "AB123", "KÖ12", "XY99", "QQ11"]
    assert list(table["raw_text"])[:3] == ["ab-123", "AB 123", "KÖ12"]
    assert list(table["rows"]) == [1, 2, 1, 1, 1]
    assert table.loc[2, "bad_chars"] == "Ö" and "outside the charset" in table.loc[2, "problems"]
    assert table.loc[3, "country"] == "Z9" and "not a country code" in table.loc[3, "problems"]
    assert not table.loc[4, "exists"] and "not found" in table.loc[4, "problems"]
    assert len(eda.problem_rows(table)) == 3
    # The training reader stops at the unknown country even when skipping bad labels.
    assert "line 5 (data row 4), column 'country'" in eda.reader_check(csv_dataset)["error"]


def test_reader_check_counts_skipped_labels(tmp_path):
    _write_image(tmp_path / "a.png", 20, 100)
    (tmp_path / "labels.csv").write_text("filename,text\na.png,AB1\na.png,Ä1\n", encoding="utf-8")
    stats = eda.reader_check(tmp_path)
    assert stats["records"] == 1 and stats["skipped_invalid_label"] == 1


def test_counts_lengths_chars_duplicates(csv_dataset):
    table = eda.scan_dataset(csv_dataset)
    counts = eda.counts_by_country(table)
    assert counts.loc["DE", "total"] == 3 and counts.loc["FR", "2-row"] == 1
    assert counts.index[0] == "DE"  # largest first
    lengths = eda.length_counts(table)
    assert lengths.loc[5].tolist() == [1, 1] and lengths.loc[4, "1-row"] == 3
    freq = eda.char_frequencies(table, Charset())
    assert freq.loc["A", "count"] == 2 and freq.loc["1", "count"] == 5
    assert not freq.loc["Ö", "in_charset"] and freq.loc["Ö", "count"] == 1
    assert freq.loc["Z", "count"] == 0  # a charset character never seen is listed
    bad = eda.out_of_charset(table)
    assert list(bad["char"]) == ["Ö"] and bad.loc[0, "codepoint"] == "U+00D6"
    dups = eda.duplicate_texts(table)
    assert list(dups["text"]) == ["AB123"] and dups.loc[0, "count"] == 2 and dups.loc[0, "countries"] == "DE,FR"


def test_image_sizes_and_summary(csv_dataset):
    sizes = eda.image_sizes(eda.scan_dataset(csv_dataset))
    assert len(sizes) == 4  # the missing file is left out
    assert sizes.iloc[0][["height", "width", "aspect"]].tolist() == [20, 100, 5.0]
    summary = eda.size_summary(sizes)
    assert summary.loc[("DE", 1), "n"] == 2 and summary.loc[("DE", 1), "aspect_median"] == pytest.approx(4.75)
    assert len(eda.image_sizes(eda.scan_dataset(csv_dataset), max_images=2)) == 2


def test_scan_filename_folder(tmp_path):
    _write_image(tmp_path / "x" / "AB-123_2.png", 10, 50)
    _write_image(tmp_path / "00012_ab123.jpg", 10, 50)
    table = eda.scan_dataset(tmp_path)
    assert table.attrs["format"] == "filename"
    assert sorted(table["text"]) == ["AB123", "AB123"] and set(table["country"]) == {"(no label)"}
    samples = eda.sample_rows(table, per_group=5)
    assert list(samples) == ["(no label)"] and len(samples["(no label)"]) == 2


# --------------------------------------------------------------------------- sizing


def test_ctc_needs_counts_repeats():
    needs = sizing.ctc_needs(["AB12", "AA11"])
    assert (needs.longest, needs.min_steps, needs.worst_case) == (4, 6, 7)
    assert sizing.ctc_needs(["AB"], longest_at_least=10).worst_case == 19


def test_propose_input_size_from_aspect_ratios():
    p = sizing.propose_input_size([4.0, 5.0, 6.0], ["AB12"], height=32, stride=8, multiple=16)
    assert (p.height, p.width, p.aspect) == (32, 160, 5.0)  # 32 x median 5.0; CTC needs only 7 x 8 = 56
    p = sizing.propose_input_size([4.7, 4.7], ["AB12"], height=32, multiple=16)
    assert p.width == 160  # 150.4 rounded up to a multiple of 16
    p = sizing.propose_input_size([2.0], ["ABCDEFGHIJ"], height=32, stride=8, multiple=16)
    assert p.width_from_aspect == 64 and p.width_for_ctc == 160 and p.width == 160  # 19 steps x 8 = 152
    assert any("widened" in n for n in p.notes)
    p = sizing.propose_input_size([5.0, float("nan"), 0.0], ["AB"], height=48, quantile=0.5, two_row_share=0.2)
    assert p.width == 240 and any("two-row" in n for n in p.notes)
    with pytest.raises(ValueError):
        sizing.propose_input_size([], ["AB"])


def test_candidate_parse():
    c = sizing.Candidate.parse("mobilenetv3_large_100@3")
    assert (c.backbone, c.stage, c.name) == ("mobilenetv3_large_100", 3, "mobilenetv3_large_100@3")
    with pytest.raises(ValueError):
        sizing.Candidate.parse("resnet18")


def test_candidate_table_reads_sequence_length():
    needs = sizing.ctc_needs(["ABCDEFGHIJ"])  # worst case 19 steps
    table = sizing.candidate_table(sizing.parse_candidates(["resnet18@2", "resnet18@3"]), 32, 160, needs,
                                   batch_sizes=())
    r2, r3 = table.loc["resnet18@2"], table.loc["resnet18@3"]
    assert (r2["seq_len"], r2["stride"], r2["rnn_features"]) == (20, 8, 512)
    assert r2["safe_worst_case"] and r2["emits_all"]
    assert r3["seq_len"] == 10 and r3["emits_all"] and not r3["safe_worst_case"] and r3["min_width"] == 19 * 16
    assert r2["params_M"] > 0 and "latency_b1_ms" not in table
    bad = sizing.candidate_table([sizing.Candidate("resnet18", 9)], 32, 160, needs, batch_sizes=())
    assert "out of range" in bad.loc["resnet18@9", "error"] and not bad.loc["resnet18@9", "safe_worst_case"]


def test_measure_latency():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1))
    assert 0 < sizing.measure_latency(model, 8, 16, batch_size=2, repeats=2, warmup=1) < 1000


def test_recommend_best_within_budget():
    table = pd.DataFrame({
        "latency_b1_ms": [5.0, 12.0, 3.0, 2.0],
        "exact_match": [0.90, 0.95, 0.90, 0.99],
        "cer": [0.02, 0.01, 0.02, 0.001],
        "safe_worst_case": [True, True, True, False],  # the last cannot train: never recommended
    }, index=["a", "b", "c", "d"])
    assert sizing.recommend(table, budget_ms=None).candidate == "b"
    assert sizing.recommend(table, budget_ms=10).candidate == "c"  # tie with a on accuracy: faster wins
    rec = sizing.recommend(table, budget_ms=1.0)
    assert rec.candidate == "c" and "no candidate fits" in rec.reason
    assert sizing.recommend(table, metric="cer", budget_ms=10).candidate == "c"
    assert sizing.recommend(table.assign(exact_match=np.nan)).candidate is None
    # After a few steps nothing reads a plate yet: the final training loss decides, then latency.
    early = table.assign(exact_match=0.0, cer=1.0, final_loss=[3.0, 2.5, 4.0, 1.0])
    rec = sizing.recommend(early, budget_ms=20)
    assert rec.candidate == "b" and "tie" in rec.reason and "2.500" in rec.reason
    assert sizing.recommend(early.drop(columns="final_loss"), budget_ms=20).candidate == "c"


def test_read_training_summary(tmp_path):
    (tmp_path / "test_metrics.json").write_text(json.dumps({
        "steps": 8, "train_seconds": 1.5,
        "test": {"synth-test": {"overall": {"n": 4, "exact_match": 0.25, "cer": 0.5}}}}))
    log = [{"step": i, "loss": float(10 - i), "lr": 1e-3} for i in range(1, 9)] + [{"step": 8, "val/n": 4}]
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(r) for r in log) + "\n")
    summary = sizing.read_training(tmp_path)
    assert summary["exact_match"] == 0.25 and summary["steps"] == 8
    assert summary["final_loss"] == pytest.approx(2.5)  # mean of the last quarter: losses 3 and 2
    assert math.isnan(sizing.final_loss([]))


def test_short_training_overrides():
    o = sizing.short_training_overrides(30, synth_dir="/x", eval_size=50, batch_size=16, extra=["a.b=1"])
    assert "train.warmup_steps=3" in o and "train.eval_every=30" in o and "data.synth_dir=/x" in o
    assert "data.synth_test_size=50" in o and o[-1] == "a.b=1"


# --------------------------------------------------------------------------- results


def test_confusion_counts_from_edit_operations():
    pairs = [
        ("AB8CD", "A88CD"),  # B read as 8
        ("O0", "00"),        # O read as 0
        ("ABC", "AB"),       # C missed
        ("AB", "ABX"),       # X read where there is none
        ("ab-1", "AB1"),     # equal after normalisation: nothing
        ("A*C", "AZD"),      # the masked character is never counted; C read as D
    ]
    counts = results.confusion_counts(pairs)
    assert counts == {("B", "8"): 1, ("O", "0"): 1, ("C", MISSING): 1, (MISSING, "X"): 1, ("C", "D"): 1}
    assert results.confusion_counts(pairs, indels=False) == {("B", "8"): 1, ("O", "0"): 1, ("C", "D"): 1}
    m = results.confusion_matrix(counts)
    assert m.loc["B", "8"] == 1 and m.loc["C", MISSING] == 1 and list(m.index)[-1] == MISSING
    assert m.to_numpy().sum() == 5
    top = results.top_confusions(counts, n=2)
    assert len(top) == 2 and list(top.columns) == ["true", "read_as", "count"]


def test_threshold_for_99_precision():
    conf = [0.99, 0.95, 0.90, 0.80, 0.50]
    ok = [True, True, True, False, True]
    t = results.threshold_for_precision(conf, ok, 0.99)
    assert (t.threshold, t.precision, t.coverage, t.accepted, t.total) == (0.90, 1.0, 0.6, 3, 5)
    t = results.threshold_for_precision(conf, ok, 0.75)  # 3/4 and 4/5 both qualify: the larger coverage
    assert (t.threshold, t.coverage) == (0.50, 1.0)
    t = results.threshold_for_precision([0.9, 0.9, 0.5], [True, False, True], 0.99)  # ties are not split
    assert t.threshold is None and t.coverage == 0.0 and math.isnan(t.precision)
    assert results.threshold_for_precision([], [], 0.99).threshold is None


def test_precision_coverage_and_accuracy_bins():
    curve = results.precision_coverage([0.2, 0.9, 0.9, 0.6], [False, True, False, True])
    assert curve["threshold"].tolist() == [0.9, 0.6, 0.2]
    assert curve["precision"].tolist() == pytest.approx([0.5, 2 / 3, 0.5])
    assert curve["coverage"].tolist() == pytest.approx([0.5, 0.75, 1.0])
    bins = results.accuracy_by_confidence(np.linspace(0, 1, 10), [False] * 5 + [True] * 5, bins=2)
    assert bins["n"].tolist() == [5, 5] and bins["accuracy"].tolist() == [0.0, 1.0]


def test_group_metrics_and_errors():
    preds = pd.DataFrame({"label": ["AB1", "CD2", "EF3"], "pred": ["AB1", "CD", "EF3"],
                          "confidence": [0.9, 0.8, 0.4], "country": ["DE", "DE", "FR"], "rows": [1, 2, 1],
                          "correct": [True, False, True], "file": ["a", "b", "c"]})
    by_country, by_rows = results.group_metrics(preds)
    assert by_country.loc["DE", "exact_match"] == 0.5 and by_country.loc["FR", "n"] == 1
    assert by_rows.loc["2-row", "cer"] == pytest.approx(1 / 3)
    assert results.errors(preds)["label"].tolist() == ["CD2"]


def test_training_curves_and_load_run(tmp_path):
    log = [{"step": 1, "loss": 3.0, "lr": 1e-3, "time_s": 1}, {"step": 2, "loss": 2.0, "lr": 1e-3, "time_s": 2},
           {"step": 2, "val/n": 5, "val/exact_match": 0.4, "val/mean_edit_distance": 1.0, "val/cer": 0.2},
           {"step": 2, "test/n": 5, "test/exact_match": 0.2}]
    train, val = results.training_curves(log)
    assert train["loss"].tolist() == [3.0, 2.0] and val.loc[2, "exact_match"] == 0.4 and "test/n" not in val
    with pytest.raises(FileNotFoundError):
        results.load_run(tmp_path)


def test_predict_records_scores_a_model(tmp_path):
    from models import InputSpec, create_model

    model = create_model("crnn", {"backbone": "resnet18", "backbone_stage": 1, "rnn_hidden_size": 8,
                                  "rnn_layers": 1}, Charset(), InputSpec(32, 96))
    _write_image(tmp_path / "a.png", 20, 90)
    records = [PlateRecord(tmp_path / "a.png", "AB1", "DE", 1), PlateRecord(tmp_path / "a.png", "A*1", "FR", 2)]
    preds = results.predict_records(model, records, batch_size=1)
    assert preds.columns.tolist() == ["file", "label", "pred", "confidence", "country", "rows", "correct",
                                      "edit_distance"]
    assert preds["rows"].tolist() == [1, 2]
    # A run folder written before "by_lines" was renamed "by_rows" loads with the new name.
    run = tmp_path / "old_run"
    (run / "config.yaml").parent.mkdir()
    (run / "config.yaml").write_text("arch: crnn\n")
    model.save_pretrained(run / "best")
    old = {"arch": "crnn", "test": {"synth": {"overall": {"n": 2}, "by_lines": {"1": {"n": 1}, "2": {"n": 1}}}}}
    (run / "test_metrics.json").write_text(json.dumps(old))
    info = results.load_run(run)
    assert info.test_metrics["test"]["synth"]["by_rows"] == old["test"]["synth"]["by_lines"]
    assert "by_lines" not in info.test_metrics["test"]["synth"] and info.model_dir == run / "best"
    assert len(preds) == 2 and preds["confidence"].between(0, 1).all()
    assert preds["edit_distance"][0] == Levenshtein.distance(preds["pred"][0], "AB1")
