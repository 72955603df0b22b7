"""Training speed of a config on this machine: steps/s and the share of each step spent waiting for data.

    python benchmarks/train_speed.py                                   # the README's main command (configs/crnn.yaml)
    python benchmarks/train_speed.py --arch attn --steps 300
    python benchmarks/train_speed.py --config configs/realism_attn.yaml data.num_workers=1

Runs ``train_accelerate.py`` for ``--steps`` steps into a temporary run folder (small fixed
val/test sets, no validation before the end, so only training steps are timed) and reads its
``log.jsonl``: steps/s between the first logged step after ``--warmup`` and the last one, and the
mean ``data_wait``. Anything else running on the machine slows it down: say what ran beside it
when you quote a figure. Last line: ``train: N steps/s (data_wait W %)``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def training_rows(log: Path) -> list[dict]:
    """The rows of a run's log.jsonl that time a training step (not validation or test rows)."""
    return [r for r in map(json.loads, log.read_text().splitlines()) if "loss" in r and "time_s" in r]


def speed(log: Path, warmup: int, rows: list[dict] | None = None) -> tuple[float, float, int]:
    """(steps/s, mean data_wait, steps timed) from the training rows of a run's log.jsonl
    (``rows``: those rows when the caller has read them already)."""
    rows = training_rows(log) if rows is None else rows
    timed = [r for r in rows if r["step"] >= warmup]
    if len(timed) < 2:
        raise SystemExit(f"{log}: fewer than two logged steps after step {warmup}; raise --steps")
    first, last = timed[0], timed[-1]
    steps = last["step"] - first["step"]
    waits = [r["data_wait"] for r in timed[1:] if "data_wait" in r]
    return steps / (last["time_s"] - first["time_s"]), sum(waits) / max(1, len(waits)), steps


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="crnn", help="configs/<arch>.yaml unless --config")
    ap.add_argument("--config")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=40, help="steps left out of the timing (start-up, first batches)")
    ap.add_argument("overrides", nargs="*", help="section.key=value, as for train_accelerate.py")
    args = ap.parse_args(argv)
    if args.steps < args.warmup + 20:
        ap.error(f"--steps must be at least --warmup + 20 ({args.warmup + 20})")
    with tempfile.TemporaryDirectory(prefix="train_speed-") as tmp:
        run = Path(tmp) / "run"
        cmd = [sys.executable, "train_accelerate.py", *(["--config", args.config] if args.config else ["--arch", args.arch]),
               "--output-dir", str(run), f"train.max_steps={args.steps}", f"train.eval_every={args.steps}",
               f"train.checkpoint_every={args.steps}", "train.log_every=10", "data.synth_val_size=64",
               "data.synth_test_size=64", f"data.synth_dir={tmp}/synth", *args.overrides]
        print("$", " ".join(cmd), flush=True)
        done = subprocess.run(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode:
            raise SystemExit(f"training failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        rate, wait, steps = speed(run / "log.jsonl", args.warmup)
    print(f"train: {rate:.2f} steps/s (data_wait {100 * wait:.0f} %) over {steps} steps")


if __name__ == "__main__":
    main()
