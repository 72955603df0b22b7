"""The run folder of a training run: what it holds and where, in one place.

    runs/crnn/20261123-101500/
        config.yaml         the run's resolved config (rewritten on --resume with its overrides)
        log.jsonl           one JSON record per logged step, validation and test
        best/  last/        model folders (``PlateRecognizer.from_pretrained``): best on validation, latest
        checkpoint/         Accelerate state for --resume (model, optimiser, schedule, RNG, counters)
        test_metrics.json   the final test of best/ (written when the run ends)
        tb/                 TensorBoard logs (train.trackers)
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import yaml

from data.files import write_text_atomically
from metrics import with_new_metric_names


class RunDir:
    CONFIG = "config.yaml"
    LOG = "log.jsonl"
    BEST = "best"
    LAST = "last"
    CHECKPOINT = "checkpoint"
    TEST_METRICS = "test_metrics.json"
    TRACKERS = "tb"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def new(cls, arch: str, output_dir: str | os.PathLike | None = None) -> RunDir:
        """``output_dir``, or ``runs/<arch>/<timestamp>``."""
        return cls(output_dir if output_dir else Path("runs") / arch / time.strftime("%Y%m%d-%H%M%S"))

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def log(self) -> Path:
        return self.path / self.LOG

    @property
    def best(self) -> Path:
        return self.path / self.BEST

    @property
    def last(self) -> Path:
        return self.path / self.LAST

    @property
    def checkpoint(self) -> Path:
        return self.path / self.CHECKPOINT

    @property
    def test_metrics(self) -> Path:
        return self.path / self.TEST_METRICS

    @property
    def trackers(self) -> Path:
        return self.path / self.TRACKERS

    def run_files(self) -> list[str]:
        """The names of a run's files and folders that this folder already holds."""
        names = (self.CONFIG, self.LOG, self.BEST, self.LAST, self.CHECKPOINT, self.TEST_METRICS, self.TRACKERS)
        return [n for n in names if (self.path / n).exists()]

    def clear(self) -> None:
        """Delete a run's files (only those: anything else in the folder stays)."""
        for name in self.run_files():
            p = self.path / name
            shutil.rmtree(p) if p.is_dir() else p.unlink()

    def can_resume(self) -> bool:
        return self.config.is_file() and self.checkpoint.is_dir()

    def missing_results(self) -> list[str]:
        """What a finished run has and this folder lacks (config, test metrics, best model)."""
        return [n for n in (self.CONFIG, self.TEST_METRICS, self.BEST) if not (self.path / n).exists()]

    def write_config(self, config: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_text_atomically(self.config, yaml.safe_dump(config, sort_keys=False))

    def write_test_metrics(self, report: dict) -> None:
        write_text_atomically(self.test_metrics, json.dumps(report, indent=2) + "\n")

    def read_test_metrics(self) -> dict:
        """The report; one written before ``by_lines`` was renamed ``by_rows`` reads with the new name."""
        return with_new_metric_names(json.loads(self.test_metrics.read_text()))

    def read_log(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]
