"""compare.py on two tiny trained runs: both tables and the JSON hold both runs, with numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains or runs whole programs: `pytest -m "not slow"` skips it

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["data.image_height=32", "data.image_width=96", "data.num_workers=0", "data.synth_val_size=8",
          "data.synth_test_size=12", "train.batch_size=8", "train.eval_batch_size=8", "train.warmup_steps=1",
          "train.eval_every=2", "train.checkpoint_every=2", "train.log_every=1", "train.trackers=[]",
          "train.max_steps=2"]
RUNS = {
    "crnn": ["model.backbone=resnet18", "model.backbone_stage=1", "model.rnn_hidden_size=16", "model.rnn_layers=1"],
    "attn": ["model.encoder=resnet18", "model.encoder_stage=1", "model.d_model=32", "model.dec_heads=2",
             "model.dec_mlp_ratio=2"],
}


def run(args: list[str], check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "2"})
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def test_compare_two_runs(tmp_path):
    synth = f"data.synth_dir={tmp_path / 'synth'}"
    dirs = []
    for arch, opts in RUNS.items():
        d = tmp_path / "runs" / arch
        run(["train_accelerate.py", "--arch", arch, "--output-dir", str(d), *COMMON, *opts, synth])
        dirs.append(d)
    # The crnn run as written before "by_lines" was renamed "by_rows": it still loads.
    metrics = dirs[0] / "test_metrics.json"
    metrics.write_text(metrics.read_text().replace('"by_rows"', '"by_lines"'))
    assert '"by_lines"' in metrics.read_text()
    extra = next((tmp_path / "synth").glob("val_*"))  # any labelled folder serves as an extra test set
    out = tmp_path / "cmp"
    proc = run(["compare.py", *map(str, dirs), "--data", str(extra), "--out", str(out), "--repeats", "2",
                "--threads", "2", "--equiv", "US:O=0"])
    md = (out / "compare.md").read_text()
    assert proc.stdout.strip().startswith("CPU timings")
    for arch in RUNS:
        # summary rows on the own test set and on the extra set, plus a column in each country table
        assert sum(line.startswith(f"| {arch} | {arch} |") for line in md.splitlines()) == 2
    assert "| country | n | crnn | attn | crnn country acc | attn country acc |" in md  # both have the head
    assert "country acc | country macro-F1" in md
    assert "### Runs on each run's own test set" in md and f"### Runs on {extra}" in md

    report = json.loads((out / "compare.json").read_text())
    assert [r["run"] for r in report["runs"]] == ["crnn", "attn"]
    assert report["datasets"] == ["own test set", str(extra)]
    for r in report["runs"]:
        assert r["cpu_latency_ms"] > 0 and r["cpu_plates_per_s"] > 0 and r["params_m"] > 0
        assert r["train_seconds"] is not None and r["input"] == "32x96"
        assert r["results"]["own test set"]["overall"]["n"] == 12
        assert r["results"][str(extra)]["overall"]["n"] == 8
        assert 0 <= r["results"]["own test set"]["overall"]["cer"]
        assert r["results"]["own test set"]["country"]["n"] == 12
        assert sum(g["n"] for g in r["results"]["own test set"]["by_rows"].values()) == 12
        assert Path(r["test_set"]).name == "test_n12_seed2_2row0.15"


def test_compare_refuses_unfinished_run(tmp_path):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.yaml").write_text("arch: attn\n")
    proc = run(["compare.py", str(tmp_path / "half")], check=False)
    assert proc.returncode == 2
    assert str(tmp_path / "half") in proc.stderr and "test_metrics.json" in proc.stderr
