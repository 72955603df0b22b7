"""benchmarks/train_speed.py: steps/s and data_wait read from a run's log.jsonl."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from train_speed import speed  # noqa: E402


def write_log(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_speed_times_the_steps_after_the_warmup(tmp_path):
    rows = [{"step": 10, "loss": 3.0, "time_s": 20.0, "data_wait": 0.9},  # start-up: left out
            {"step": 20, "loss": 2.0, "time_s": 24.0, "data_wait": 0.5},
            {"step": 20, "val/exact_match": 0.1},                        # not a training row
            {"step": 30, "loss": 1.0, "time_s": 28.0, "data_wait": 0.1},
            {"step": 40, "loss": 1.0, "time_s": 30.0, "data_wait": 0.3}]
    rate, wait, steps = speed(write_log(tmp_path / "log.jsonl", rows), warmup=15)
    assert steps == 20 and rate == pytest.approx(20 / 6.0)
    assert wait == pytest.approx(0.2)  # the rows after the first timed one


def test_speed_says_when_too_few_steps_were_logged(tmp_path):
    log = write_log(tmp_path / "log.jsonl", [{"step": 10, "loss": 1.0, "time_s": 1.0}])
    with pytest.raises(SystemExit, match="fewer than two logged steps after step 5"):
        speed(log, warmup=5)
