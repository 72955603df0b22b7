"""benchmarks/real_plates.py on generated stand-in sets (never the shared real sets)."""

from __future__ import annotations

import csv
import json
import statistics

import pytest

from benchmarks import real_plates
from data.datasets import load_records
from inference import load_reader
from metrics import score_texts
from tests._inference_fixtures import make_plates, make_tiny_model


def _relabel_country(folder, code):
    path = folder / "labels.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["country"] = code
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    root = tmp_path_factory.mktemp("shared")
    make_plates(root / "realplates-a", n=6, seed=3)
    make_plates(root / "realplates-b", n=4, seed=5)
    _relabel_country(root / "realplates-b", "ID")  # a country outside the generator's 27
    (root / "realplates-empty").mkdir()  # no labels.csv: not a set
    return root, make_tiny_model(root / "tiny")


def test_every_set_its_own_column_with_macro_mean_and_worst(stand_ins, tmp_path, capsys):
    root, tiny = stand_ins
    out = tmp_path / "real.json"
    report = real_plates.main(["--weights", str(tiny), "--sets", str(root / "realplates-*"), "--out", str(out)])
    assert list(report["sets"]) == ["realplates-a", "realplates-b"]
    assert [report["sets"][s]["n"] for s in report["sets"]] == [6, 4]
    assert list(report["sets"]["realplates-b"]["by_country"]) == ["ID"]

    # Each set's exact match is what reading its crops one by one and scoring them gives.
    reader = load_reader(tiny)
    for name, r in report["sets"].items():
        records = load_records(root / name)
        preds = [p.text for p in reader.predict([rec.path for rec in records])]
        exact, _ = score_texts(preds, [rec.text for rec in records], [rec.country for rec in records],
                               {"US": {"O": "0"}})
        assert r["exact_match"] == pytest.approx(sum(exact) / len(exact))
        labels = [rec.text for rec in records]
        assert r["longer"] == sum(len(p) > len(t) for p, t in zip(preds, labels))
        assert r["shorter"] == sum(len(p) < len(t) for p, t in zip(preds, labels))

    exact = {s: r["exact_match"] for s, r in report["sets"].items()}
    cer = {s: r["cer"] for s, r in report["sets"].items()}
    assert report["macro"]["exact_match"] == pytest.approx(statistics.fmean(exact.values()))
    assert report["macro"]["cer"] == pytest.approx(statistics.fmean(cer.values()))
    assert report["worst"]["exact_match"]["value"] == min(exact.values())
    assert report["worst"]["cer"]["value"] == max(cer.values())
    assert json.loads(out.read_text())["macro"] == report["macro"]
    printed = capsys.readouterr().out
    assert "macro mean over 2 sets" in printed and "worst set" in printed
    assert "| longer | shorter |" in printed


def test_no_set_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match="no set folder with a labels.csv"):
        real_plates.main(["--sets", str(tmp_path / "nothing-*")])
