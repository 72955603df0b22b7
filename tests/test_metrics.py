"""Tests of metrics.py: hand-computed values, masks, breakdowns, tables, gathering."""

from __future__ import annotations

import itertools
import json
import math
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rapidfuzz.distance import Levenshtein  # noqa: E402

from metrics import (  # noqa: E402
    CharErrorRateMetric,
    EditDistanceMetric,
    PlateMetrics,
    ReadingRecord,
    StringMatchMetric,
    format_metrics_table,
    gather_records,
    masked_edit_distance,
    masked_match,
    score_texts,
    with_new_metric_names,
)

PREDS = ["AB123", "AB12", "XY9"]
LABELS = ["AB123", "AB123", "XZ9"]


def reads(preds, labels, countries, rows, pred_countries=None, pred_rows=None) -> list[ReadingRecord]:
    """Records from parallel lists (which must have one entry per plate)."""
    n = len(preds)
    return [ReadingRecord(t, lab, c, r, pred_country=pc, pred_rows=pr) for t, lab, c, r, pc, pr in
            zip(preds, labels, countries, rows, pred_countries or [None] * n, pred_rows or [None] * n, strict=True)]


# --------------------------------------------------------------------------- #
# score_texts and the single metrics
# --------------------------------------------------------------------------- #
def test_score_texts_hand_computed():
    exact, dist = score_texts(PREDS, LABELS)
    assert exact == [True, False, False]
    assert dist == [0, 1, 1]
    assert all(type(d) is int for d in dist)


def test_single_metrics_hand_computed():
    sm, ed, cer = StringMatchMetric(), EditDistanceMetric(), CharErrorRateMetric()
    for m in (sm, ed, cer):
        m.update(PREDS[:2], LABELS[:2])  # two batches accumulate
        m.update(PREDS[2:], LABELS[2:])
    assert sm.compute() == pytest.approx(1 / 3)
    assert ed.compute() == pytest.approx(2 / 3)
    # label lengths 5 + 5 + 3 = 13 characters
    assert cer.compute() == pytest.approx(2 / 13)
    for m in (sm, ed, cer):
        m.reset()
        assert m.n == 0
        assert math.isnan(m.compute())


def test_normalisation_applied_to_both_sides():
    exact, dist = score_texts(["ab-123", "AB 123", "АВ123"], ["AB123", "ab.123", "AB123"])
    assert exact == [True, True, True]
    assert dist == [0, 0, 0]
    m = CharErrorRateMetric()
    m.update(["ab-12"], ["AB 123"])  # label length is 5 after normalisation
    assert m.compute() == pytest.approx(1 / 5)


def test_empty_prediction():
    exact, dist = score_texts(["", "A-"], ["AB123", "A"])
    assert exact == [False, True]
    assert dist == [5, 0]
    m = PlateMetrics()
    m.update(reads([""], ["AB123"], ["DE"], [1]))
    r = m.compute()["overall"]
    assert r == {"n": 1, "exact_match": 0.0, "mean_edit_distance": 5.0, "cer": 1.0}


# --------------------------------------------------------------------------- #
# Masked labels
# --------------------------------------------------------------------------- #
def test_masked_exact_match():
    exact, dist = score_texts(["AB123", "ABX23", "AB23", "AB1234"], ["AB*23"] * 4)
    assert exact == [True, True, False, False]
    assert dist == [0, 0, 1, 1]
    assert masked_match("AB123", "AB*23")
    assert not masked_match("AB*23", "AB123")  # a * in a prediction is not a wildcard


def test_masked_edit_distance():
    assert masked_edit_distance("AB123", "A*123") == 0
    assert masked_edit_distance("AB23", "A*123") == 1
    assert masked_edit_distance("", "A*1") == 3  # deleting a masked char costs 1
    assert masked_edit_distance("AB1234", "A*123") == 1
    assert masked_edit_distance("XY", "**") == 0
    # mixed batch: masked and plain labels keep their order
    exact, dist = score_texts(["AB23", "XY9", "AB123"], ["A*123", "XZ9", "A*123"])
    assert exact == [False, False, True]
    assert dist == [1, 1, 0]


def test_masked_dp_matches_brute_force():
    """Wildcard distance = min over fillings of the masks; no mask = rapidfuzz."""
    rng = random.Random(0)
    alphabet = "AB1"
    for _ in range(300):
        pred = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5)))
        label = "".join(rng.choice(alphabet + "*") for _ in range(rng.randint(0, 5)))
        k = label.count("*")
        fillers = alphabet + "Z"  # enough symbols to realise any alignment
        best = min(
            Levenshtein.distance(pred, label.replace("*", "{}").format(*fill))
            for fill in itertools.product(fillers, repeat=k)
        )
        assert masked_edit_distance(pred, label) == best, (pred, label)
        assert masked_match(pred, label) == (best == 0)


def test_masked_cer_counts_mask_in_length():
    m = CharErrorRateMetric()
    m.update(["AB23"], ["A*123"])
    assert m.compute() == pytest.approx(1 / 5)


# --------------------------------------------------------------------------- #
# PlateMetrics: breakdowns, equivalences, empty
# --------------------------------------------------------------------------- #
def test_plate_metrics_breakdowns():
    m = PlateMetrics()
    m.update(reads(PREDS, LABELS, ["DE", "DE", "fr"], [1, 2, 2]))
    m.update(reads(["KA12"], ["KA1*"], ["", ], [1]))  # no country label -> "unlabelled"
    r = m.compute()
    o = r["overall"]
    assert o["n"] == 4
    assert o["exact_match"] == pytest.approx(2 / 4)
    assert o["mean_edit_distance"] == pytest.approx(2 / 4)
    assert o["cer"] == pytest.approx(2 / 17)  # 5 + 5 + 3 + 4 label characters

    assert set(r["by_country"]) == {"DE", "FR", "unlabelled"}
    de = r["by_country"]["DE"]
    assert de["n"] == 2
    assert de["exact_match"] == pytest.approx(1 / 2)
    assert de["mean_edit_distance"] == pytest.approx(1 / 2)
    assert de["cer"] == pytest.approx(1 / 10)
    fr = r["by_country"]["FR"]
    assert (fr["n"], fr["exact_match"], fr["mean_edit_distance"]) == (1, 0.0, 1.0)
    assert fr["cer"] == pytest.approx(1 / 3)
    assert r["by_country"]["unlabelled"]["exact_match"] == 1.0

    assert list(r["by_rows"]) == ["1", "2"]
    one, two = r["by_rows"]["1"], r["by_rows"]["2"]
    assert (one["n"], one["exact_match"], one["mean_edit_distance"], one["cer"]) == (2, 1.0, 0.0, 0.0)
    assert two["n"] == 2
    assert two["exact_match"] == 0.0
    assert two["mean_edit_distance"] == pytest.approx(1.0)
    assert two["cer"] == pytest.approx(2 / 8)

    json.loads(json.dumps(r))  # JSON-serialisable, string keys
    m.reset()
    assert m.compute()["overall"]["n"] == 0


def test_equivalences_per_country():
    preds = ["ABC0123", "ABC0123", "ABO123"]
    labels = ["ABCO123", "ABCO123", "ABO123"]
    countries = ["US", "DE", "US"]
    m = PlateMetrics(equivalences={"us": {"o": "0"}})
    m.update(reads(preds, labels, countries, [1, 1, 1]))
    r = m.compute()
    assert r["by_country"]["US"]["exact_match"] == 1.0
    assert r["by_country"]["DE"]["exact_match"] == 0.0
    assert r["by_country"]["DE"]["mean_edit_distance"] == 1.0
    # without equivalences the US O/0 plate is wrong
    plain = PlateMetrics()
    plain.update(reads(preds, labels, countries, [1, 1, 1]))
    assert plain.compute()["by_country"]["US"]["exact_match"] == 0.5
    # the helper and the single metrics take equivalences too
    assert score_texts(preds, labels, countries, {"US": {"O": "0"}})[0] == [True, False, True]
    sm = StringMatchMetric(equivalences={"US": {"O": "0"}})
    sm.update(preds, labels, countries)
    assert sm.compute() == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        PlateMetrics(equivalences={"US": {"O": "*"}})
    with pytest.raises(ValueError):
        sm.update(preds, labels)  # equivalences need countries


def test_empty_metrics_give_n0_and_nan():
    m = PlateMetrics()
    m.update([])
    r = m.compute()
    assert r["overall"]["n"] == 0
    assert all(math.isnan(r["overall"][k]) for k in ("exact_match", "mean_edit_distance", "cer"))
    assert r["by_country"] == {} and r["by_rows"] == {}
    table = format_metrics_table(r)
    assert "n/a" in table
    assert score_texts([], []) == ([], [])


def test_length_mismatch_raises():
    with pytest.raises(ValueError):
        score_texts(["A"], ["A", "B"])
    with pytest.raises(ValueError):  # parallel lists of different lengths make no records
        reads(["A"], ["A"], ["DE", "FR"], [1])


# --------------------------------------------------------------------------- #
# Markdown table
# --------------------------------------------------------------------------- #
def test_format_metrics_table_contains_numbers():
    m = PlateMetrics()
    m.update(reads(PREDS, LABELS, ["FR", "DE", "DE"], [1, 1, 2]))
    table = format_metrics_table(m.compute(), title="val")
    lines = table.splitlines()
    assert lines[0] == "### val"
    assert "| 3 | 33.33% | 0.667 | 15.38% |" in table  # overall
    assert "| 1 | 2 | 50.00% | 0.500 | 10.00% |" in table  # one-row plates
    assert "| 2 | 1 | 0.00% | 1.000 | 33.33% |" in table  # two-row plates
    assert "| DE | 2 | 0.00% | 1.000 | 25.00% |" in table
    assert "| FR | 1 | 100.00% | 0.000 | 0.00% |" in table
    assert table.index("| DE |") < table.index("| FR |")  # countries sorted
    assert table.index("By number of rows") < table.index("By country")


def test_metrics_written_before_by_rows_still_read():
    """Metrics JSON from before the rename says ``by_lines``: readers see ``by_rows``."""
    m = PlateMetrics()
    m.update(reads(PREDS, LABELS, ["FR", "DE", "DE"], [1, 1, 2]))
    new = m.compute()
    old = {("by_lines" if k == "by_rows" else k): v for k, v in new.items()}
    assert "by_rows" in new and "by_lines" not in new
    assert format_metrics_table(old, title="val") == format_metrics_table(new, title="val")
    report = {"steps": 2, "test": {"synth": old}}
    assert with_new_metric_names(report) == {"steps": 2, "test": {"synth": new}}
    assert with_new_metric_names(report) is not report and "by_lines" in old  # a copy: the input is kept


# --------------------------------------------------------------------------- #
# Gathering
# --------------------------------------------------------------------------- #
class _RecordingAccelerator:
    def __init__(self):
        self.calls = []

    def gather_for_metrics(self, obj, use_gather_object=False):
        self.calls.append((obj, use_gather_object))
        return list(obj) + list(obj)  # pretend two processes sent the same batch


def test_gather_records_uses_one_object_gather():
    acc = _RecordingAccelerator()
    records = reads(["A", "B"], ["A", "C"], ["DE", "FR"], [1, 2], ["DE", None], [1, None])
    gathered = gather_records(acc, records)
    assert len(acc.calls) == 1 and acc.calls[0][1] is True
    assert gathered == records + records  # whole records: no field is separated from its plate


def test_reading_record_fields_and_defaults():
    r = ReadingRecord("AB1", "AB1", "DE", 2)
    assert (r.confidence, r.pred_country, r.pred_rows, r.index) == (None, None, None, None)
    full = ReadingRecord(text="X", label="Y", country="FR", rows=1, confidence=0.5, pred_country="FR",
                         pred_rows=1, index=4)
    assert full == ReadingRecord("X", "Y", "FR", 1, 0.5, "FR", 1, 4)
    with pytest.raises(AttributeError):  # frozen: a record is what was read, not a scratch pad
        full.text = "Y"
    import pickle

    assert pickle.loads(pickle.dumps(full)) == full  # gathered across processes as objects


@pytest.fixture
def cpu_accelerator():
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    acc = Accelerator(cpu=True)
    yield acc
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def test_gather_records_single_process_counts_each_sample_once(cpu_accelerator):
    import torch
    from torch.utils.data import DataLoader, Dataset

    class Plates(Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return {"idx": i, "label": f"AB{i:03d}", "country": "DE" if i % 2 else "FR", "rows": 1 + i % 2}

    dl = cpu_accelerator.prepare(DataLoader(Plates(), batch_size=4, shuffle=False))
    metrics = PlateMetrics()
    seen = []
    for batch in dl:
        idx = batch["idx"].tolist()
        preds = [f"AB{i:03d}" if i < 7 else "XX" for i in idx]  # 7 right, 3 wrong
        records = reads(preds, batch["label"], batch["country"], batch["rows"].tolist())
        gathered = gather_records(cpu_accelerator, records)
        assert all(isinstance(r.rows, int) for r in gathered)
        seen.extend(r.label for r in gathered)
        metrics.update(gathered)
    assert sorted(seen) == [f"AB{i:03d}" for i in range(10)]
    r = metrics.compute()
    assert r["overall"]["n"] == 10
    assert r["overall"]["exact_match"] == pytest.approx(0.7)
    assert r["by_country"]["DE"]["n"] == 5 and r["by_rows"]["2"]["n"] == 5
    assert isinstance(batch["rows"], torch.Tensor)
