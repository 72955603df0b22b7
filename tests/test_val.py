"""val.py: the metrics JSON (per country and per row count) and the error gallery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

import export
import val
from data.datasets import load_records
from inference import load_reader
from metrics import score_texts
from tests._inference_fixtures import make_plates, make_tiny_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("val")
    return make_tiny_model(root / "tiny"), make_plates(root / "plates", n=7)


def test_val_json_and_gallery(setup, tmp_path, capsys):
    tiny, plates = setup
    out = tmp_path / "report" / "metrics.json"
    results = val.main(["--weights", str(tiny), "--data", str(plates), "--workers", "0", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["overall"] == pytest.approx(results["overall"], nan_ok=True)
    # The numbers are those of the reader's own predictions on the same files.
    records = load_records(plates)
    preds = load_reader(tiny).predict([r.path for r in records])
    exact, dist = score_texts([p.text for p in preds], [r.text for r in records])
    assert saved["overall"]["n"] == 7
    assert saved["overall"]["exact_match"] == pytest.approx(sum(exact) / 7)
    assert saved["overall"]["mean_edit_distance"] == pytest.approx(sum(dist) / 7)
    assert sum(g["n"] for g in saved["by_country"].values()) == 7
    assert set(saved["by_rows"]) <= {"1", "2"} and sum(g["n"] for g in saved["by_rows"].values()) == 7
    gallery = out.with_name("metrics_errors.png")  # default: next to --out
    img = cv2.imread(str(gallery))
    assert img is not None and img.shape[0] > 100 and img.shape[1] > 300
    shown = capsys.readouterr().out
    assert "exact match" in shown and "error gallery" in shown
    # The tiny model has a country head: country scores over the samples, and the confusion PNG.
    assert saved["country"]["n"] == 7 and 0.0 <= saved["country"]["accuracy"] <= 1.0
    assert sum(map(sum, saved["country"]["confusion"]["matrix"])) == 7
    assert saved["rows"]["n"] == 7
    confusion = cv2.imread(str(out.with_name("metrics_country_confusion.png")))
    assert confusion is not None and confusion.shape[0] > 100
    assert "country accuracy" in shown and "Plate classification" in shown

    # An exported model gives the same figures; an explicit gallery path is honoured.
    onnx_path = tmp_path / "tiny.onnx"
    assert export.main(["--weights", str(tiny), "--output", str(onnx_path), "--no-check"]) == 0
    g2 = tmp_path / "g" / "errors.png"
    again = val.main(["--weights", str(onnx_path), "--data", str(plates), "--workers", "0",
                      "--gallery", str(g2), "--batch-size", "3"])
    assert again["overall"]["exact_match"] == saved["overall"]["exact_match"]
    assert again["by_country"].keys() == saved["by_country"].keys()
    assert g2.is_file() and (g2.parent / "country_confusion.png").is_file()
    assert again["country"] == saved["country"]


@pytest.mark.slow
def test_two_processes_read_every_plate_once(setup, tmp_path, capsys):
    """val.py under 2 CPU processes (gloo): 7 plates at batch 3 pad the last batch; the padding is
    dropped, and the metrics and the gallery are those of one process."""
    tiny, plates = setup
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    args = ["--weights", str(tiny), "--data", str(plates), "--workers", "0", "--batch-size", "3"]
    assert val.main([*args, "--out", str(one)])["overall"]["n"] == 7
    gallery_line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("error gallery:"))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_port", str(29500 + (os.getpid() + 7) % 1000)]
    proc = subprocess.run([*torchrun, "val.py", *args, "--out", str(two)], cwd=Path(val.__file__).parent,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(two.read_text()) == json.loads(one.read_text())
    assert proc.stdout.count("error gallery:") == 1  # the main process writes the reports
    assert gallery_line.replace("one_errors", "two_errors") in proc.stdout  # "(k wrong shown of n)" alike


def test_gallery_order_worst_first():
    s = [dict(correct=True, confidence=0.9), dict(correct=False, confidence=0.2),
         dict(correct=True, confidence=0.1), dict(correct=False, confidence=0.8)]
    order = val.gallery_order(s)
    assert [(x["correct"], x["confidence"]) for x in order] == [(False, 0.8), (False, 0.2), (True, 0.1), (True, 0.9)]


def test_val_refuses_bad_weights(tmp_path, capsys):
    (tmp_path / "m.pt").write_bytes(b"\x80\x04junk")
    with pytest.raises(SystemExit) as e:
        val.main(["--weights", str(tmp_path / "m.pt"), "--data", str(tmp_path)])
    assert e.value.code == 2 and "pickled" in capsys.readouterr().err


def _copy_with_a_corrupt_image(plates: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(plates, dest)
    lines = (dest / "labels.csv").read_text().splitlines()
    broken = dest / lines[2].split(",")[0]  # the second plate
    broken.write_bytes(b"not an image")
    return broken


@pytest.mark.parametrize("workers", ["0", "1"])
def test_val_unreadable_image_one_line_or_skipped(setup, tmp_path, capsys, workers):
    """An unreadable image: one line naming it (even from a DataLoader worker), or with
    --skip-unreadable left out and counted (issue 26, item 7)."""
    tiny, plates = setup
    data = tmp_path / "data"
    broken = _copy_with_a_corrupt_image(plates, data)
    args = ["--weights", str(tiny), "--data", str(data), "--workers", workers, "--no-gallery"]
    with pytest.raises(SystemExit) as e:
        val.main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("error: ") and "Traceback" not in err
    assert str(broken) in err and f"python -m data.check {data}" in err and "--skip-unreadable" in err
    results = val.main([*args, "--skip-unreadable", "--batch-size", "1"])  # a batch of it alone is empty
    assert results["overall"]["n"] == 6
    out = capsys.readouterr().out
    assert f"skipped 1 unreadable images of 7 (first: {broken}" in out


def test_val_skip_invalid_says_how_many(setup, tmp_path, capsys):
    """--skip-invalid counts the rows it drops, per reason (issue 26, item 8)."""
    import shutil

    tiny, plates = setup
    data = tmp_path / "data"
    shutil.copytree(plates, data)
    lines = (data / "labels.csv").read_text().splitlines()
    header, first = lines[0].split(","), lines[1].split(",")
    bad = list(first)
    bad[header.index("text")] = "AB$12"
    (data / "labels.csv").write_text("\n".join([*lines, ",".join(bad)]) + "\n")
    results = val.main(["--weights", str(tiny), "--data", str(data), "--workers", "0", "--no-gallery",
                        "--skip-invalid"])
    assert results["overall"]["n"] == 7
    out = capsys.readouterr().out
    assert f"{data}: skipped 1 of 8 rows: 1 invalid label (empty, or characters outside the charset)" in out
    assert "AB$12" in out  # the first example


def test_val_says_labels_come_from_file_names_and_warns_when_they_are_not_plates(setup, tmp_path, capsys):
    """A folder without labels.csv is scored against its file names: val.py says so, and warns
    when the names are not plates (crop_0000.png reads CROP) (issue 26, item 9)."""
    import shutil

    tiny, plates = setup
    records = load_records(plates)
    named, crops = tmp_path / "named", tmp_path / "crops"
    named.mkdir(), crops.mkdir()
    for i, r in enumerate(records):
        shutil.copy(r.path, named / f"{r.text}{r.path.suffix}")
        shutil.copy(r.path, crops / f"crop_{i:04d}{r.path.suffix}")
    val.main(["--weights", str(tiny), "--data", str(named), "--workers", "0", "--no-gallery"])
    out = capsys.readouterr().out
    assert f"labels: from file names (no labels.csv in {named})" in out and "warning" not in out
    results = val.main(["--weights", str(tiny), "--data", str(crops), "--workers", "0", "--no-gallery"])
    assert results["overall"]["n"] == 7
    out = capsys.readouterr().out
    assert f"labels: from file names (no labels.csv in {crops})" in out
    assert f"warning: 7 of 7 file names in {crops} do not look like plates (e.g. crop_0000.png -> CROP" in out
    assert "meaningless" in out and f"python predict.py --input {crops}" in out and "labels.csv" in out
