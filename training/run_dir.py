"""The run folder of a training run: what it holds and where, in one place.

    runs/crnn/20261123-101500/
        config.yaml         the run's resolved config (rewritten on --resume with its overrides)
        log.jsonl           one JSON record per logged step, validation and test
        best/  last/        model folders (``PlateRecognizer.from_pretrained``): best on validation, latest
        checkpoint/         for --resume: Accelerate's model, optimiser and RNG files; run_state.json
                            (counters, schedule); ema.safetensors (train.ema_decay)
        test_metrics.json   the final test of best/ (written when the run ends)
        tb/                 TensorBoard logs (train.trackers)

best/, last/ and checkpoint/ are written beside (``.best.tmp-*``, ``checkpoint.tmp``) and swapped
in (``data.files.swap_into_place``); what a kill leaves of that is put right by :meth:`RunDir.recover`.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from pathlib import Path

import yaml

from data.files import recover_swap, swap_leftovers, write_text_atomically
from metrics import with_new_metric_names


class RunDir:
    CONFIG = "config.yaml"
    LOG = "log.jsonl"
    BEST = "best"
    LAST = "last"
    CHECKPOINT = "checkpoint"
    CHECKPOINT_STATE = "run_state.json"  # in checkpoint/: the counters and the learning-rate schedule
    CHECKPOINT_EMA = "ema.safetensors"  # in checkpoint/: the weights' moving average (train.ema_decay)
    TEST_METRICS = "test_metrics.json"
    TRACKERS = "tb"
    SWAPPED = (BEST, LAST, CHECKPOINT)  # folders replaced whole by data.files.swap_into_place

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
    def checkpoint_tmp(self) -> Path:
        """Where a checkpoint is written before it is swapped in."""
        return self.path / f"{self.CHECKPOINT}.tmp"

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
        for p in [*(self.path / name for name in self.run_files()), *self.leftovers()]:
            shutil.rmtree(p) if p.is_dir() else p.unlink()

    def leftovers(self) -> list[Path]:
        """What interrupted writes left: unfinished temporary folders and files, and the old
        folders of swaps (:func:`data.files.swap_into_place`)."""
        found = []
        for name in self.SWAPPED:
            found += sorted(self.path.glob(f".{name}.tmp-*")) + swap_leftovers(self.path / name)
        tmp_files = (self.checkpoint_tmp, *(self.path / f"{n}.tmp" for n in (self.CONFIG, self.TEST_METRICS)))
        return found + [p for p in tmp_files if p.exists()]

    def recover(self) -> list[str]:
        """After a kill: a folder that an interrupted swap took away is put back (the complete new
        one, else the old one), then the leftovers are removed. Says what it did."""
        done = [m for m in (recover_swap(self.path / name) for name in self.SWAPPED) if m]
        left = self.leftovers()
        for p in left:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        if left:
            done.append(f"removed what interrupted writes left in {self}: {', '.join(p.name for p in left)}")
        return done

    def can_resume(self) -> bool:
        """A config and a checkpoint (in place, or one that :meth:`recover` puts back)."""
        return self.config.is_file() and (self.checkpoint.is_dir() or any(
            (old / self.CHECKPOINT).is_dir() for old in swap_leftovers(self.checkpoint)))

    def resume_command(self, processes: int = 1) -> str:
        """The command that continues this run (several processes: under ``accelerate launch``)."""
        launcher = "accelerate launch" if processes > 1 else "python"
        return f"{launcher} train_accelerate.py --resume {shlex.quote(str(self))}"

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

    def truncate_log(self, step: int) -> int:
        """Drop the log's records after ``step`` (and a line cut short by a kill): a run resumed
        from its checkpoint at ``step`` logs the later steps again, and each step is logged once.
        Rewritten atomically; returns how many lines were dropped."""
        if not self.log.is_file():
            return 0
        lines = [line for line in self.log.read_text().splitlines() if line.strip()]

        def keep(line: str) -> bool:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                return False
            return not isinstance(record, dict) or record.get("step", 0) <= step

        kept = [line for line in lines if keep(line)]
        if len(kept) < len(lines):
            write_text_atomically(self.log, "".join(line + "\n" for line in kept))
        return len(lines) - len(kept)
