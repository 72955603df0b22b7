"""benchmarks/judge_change.sh: four tiny runs on generated stand-in sets, the rule's verdict, no rerun."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests._inference_fixtures import make_plates
from tests.test_train import TINY, run

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "judge_change.sh"


def judge(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **env})


def test_missing_config_is_named(tmp_path):
    proc = judge(["configs/crnn.yaml", "configs/no_such.yaml"], {"INIT": str(tmp_path)})
    assert proc.returncode == 2
    assert "configs/no_such.yaml" in proc.stderr or f"{tmp_path}/config.json" in proc.stderr


def test_from_scratch_needs_no_model():
    proc = judge(["configs/crnn.yaml", "configs/no_such.yaml"], {"INIT": "scratch"})
    assert proc.returncode == 2
    assert "no such file: configs/no_such.yaml" in proc.stderr and "scratch/config.json" not in proc.stderr


@pytest.mark.slow
def test_two_seeds_each_then_the_verdict_and_no_rerun(tmp_path):
    synth = f"data.synth_dir={tmp_path / 'synth'}"
    init = tmp_path / "init"
    run([sys.executable, "train_accelerate.py", "--arch", "crnn", "--output-dir", str(init), *TINY, synth,
         "train.max_steps=2", "train.trackers=[]"])
    make_plates(tmp_path / "shared" / "realplates-a", n=4, seed=3)
    make_plates(tmp_path / "shared" / "realplates-b", n=3, seed=5)
    env = {"INIT": str(init / "best"), "STEPS": "2", "OUT": str(tmp_path / "judge"),
           "SETS": str(tmp_path / "shared" / "realplates-*"),
           "TRAIN_ARGS": " ".join([*TINY, synth, "train.trackers=[]"]), "READ_ARGS": "--polarity auto"}
    proc = judge(["configs/crnn.yaml", "configs/crnn.yaml", "train.lr=0.01"], env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("base_s0", "base_s1", "change_s0", "change_s1"):
        report = json.loads((tmp_path / "judge" / name / "real.json").read_text())
        assert list(report["sets"]) == ["realplates-a", "realplates-b"] and report["polarity"] == "auto"
        train = yaml.safe_load((tmp_path / "judge" / name / "config.yaml").read_text())["train"]
        assert train["seed"] == int(name[-1])
        assert (train["lr"] == 0.01) == name.startswith("change")  # the overrides reach the change only
    summaries = [line for line in proc.stdout.splitlines() if "/real.json: realplates-a " in line]
    assert len(summaries) == 4 and all(re.search(r" macro [01]\.\d+  synthetic [01]\.\d+$", s) for s in summaries)
    verdict = proc.stdout.strip().splitlines()[-1]
    assert verdict.startswith(("keep:", "reject:"))

    # Finished runs are not trained again: the verdict comes back without a training line.
    best = tmp_path / "judge" / "base_s0" / "best" / "model.safetensors"
    mtime = mtime_base = best.stat().st_mtime_ns
    again = judge(["configs/crnn.yaml", "configs/crnn.yaml", "train.lr=0.01"], env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert best.stat().st_mtime_ns == mtime
    assert again.stdout.strip().splitlines()[-1] == verdict

    # A run stopped before its end (best/ written, no test_metrics.json yet) is trained again.
    stopped = tmp_path / "judge" / "change_s1"
    (stopped / "test_metrics.json").unlink()
    (stopped / "real.json").unlink()
    mtime = (stopped / "best" / "model.safetensors").stat().st_mtime_ns
    third = judge(["configs/crnn.yaml", "configs/crnn.yaml", "train.lr=0.01"], env)
    assert third.returncode == 0, third.stderr[-3000:]
    assert (stopped / "test_metrics.json").is_file() and (stopped / "real.json").is_file()
    assert (stopped / "best" / "model.safetensors").stat().st_mtime_ns != mtime
    assert best.stat().st_mtime_ns == mtime_base
