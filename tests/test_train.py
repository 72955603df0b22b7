"""End-to-end training: a few steps, resume, bad input, and a real 2-process run on CPU."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from timm.utils import ModelEmaV3

from tests._pickle_trap import trap_pickle

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # trains or runs whole programs: `pytest -m "not slow"` skips it

# A tiny CRNN on tiny synthetic sets: seconds per run.
TINY = [
    "model.backbone=resnet18", "model.backbone_stage=1", "model.rnn_hidden_size=16", "model.rnn_layers=1",
    "data.image_height=32", "data.image_width=96", "data.num_workers=0",
    "data.synth_val_size=13", "data.synth_test_size=11",
    "train.batch_size=8", "train.eval_batch_size=4", "train.warmup_steps=1",
    "train.eval_every=2", "train.checkpoint_every=2", "train.log_every=1",
]


def run(args: list[str], env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def trained_params(path: Path) -> dict:
    """The weights of a model folder that training changes through the optimiser (not BatchNorm's
    running statistics)."""
    state = load_file(str(path / "model.safetensors"))
    return {k: v for k, v in state.items() if "running_" not in k and "num_batches_tracked" not in k}


def read_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_train_few_steps_then_resume(tmp_path):
    run_dir = tmp_path / "run"
    synth = f"data.synth_dir={tmp_path / 'synth'}"
    first = run([sys.executable, "train_accelerate.py", "--arch", "crnn", "--output-dir", str(run_dir),
         *TINY, synth, "train.max_steps=4"])
    for name in ("config.yaml", "log.jsonl", "best/model.safetensors", "last/config.json",
                 "checkpoint", "test_metrics.json", "tb"):
        assert (run_dir / name).exists(), name
    report = json.loads((run_dir / "test_metrics.json").read_text())
    assert report["steps"] == 4
    (test,) = report["test"].values()
    assert test["overall"]["n"] == 11
    assert sum(g["n"] for g in test["by_country"].values()) == 11
    steps = [r["step"] for r in read_log(run_dir) if "loss" in r]
    assert steps == [1, 2, 3, 4]
    # The share of each step spent waiting for the next batch (issue 23, item 3).
    assert all(0 <= r["data_wait"] <= 1 for r in read_log(run_dir) if "loss" in r)
    assert "data loading: in the training process (data.num_workers: 0)" in first.stdout
    # The main command's model reads every crop turned to dark characters (data.read_dark_text), trained on both.
    assert json.loads((run_dir / "best" / "config.json").read_text())["input"]["dark_text"] is True

    proc = run([sys.executable, "train_accelerate.py", "--resume", str(run_dir), "train.max_steps=6"])
    assert "resumed" in proc.stdout + proc.stderr
    steps = [r["step"] for r in read_log(run_dir) if "loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6]  # continued at 5, not restarted
    report = json.loads((run_dir / "test_metrics.json").read_text())
    assert report["steps"] == 6
    # The scheduler resumed at step 4 of a (now) 6-step cosine schedule, not at step 0.
    from training.trainer import lr_lambda

    lr = [r["lr"] for r in read_log(run_dir) if "lr" in r]
    assert lr[4] == pytest.approx(2e-3 * lr_lambda(1, 6)(5))
    assert lr[5] == pytest.approx(2e-3 * lr_lambda(1, 6)(6))


def test_mixed_precision_and_gradient_accumulation(tmp_path):
    run_dir = tmp_path / "bf16"
    proc = run([sys.executable, "train_accelerate.py", "--arch", "crnn", "--mixed-precision", "bf16",
                "--output-dir", str(run_dir), *TINY, f"data.synth_dir={tmp_path / 'synth'}",
                "train.max_steps=2", "train.grad_accum_steps=2", "train.trackers=[]"])
    assert "mixed precision bf16" in proc.stdout + proc.stderr
    assert [r["step"] for r in read_log(run_dir) if "loss" in r] == [1, 2]  # optimiser steps, not micro-batches
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["grad_accum_steps"] == 2
    assert not (run_dir / "tb").exists()


def test_channels_last_trains_the_same_model(tmp_path):
    """train.channels_last (the default) changes the memory order of the convolutions, not what
    they compute: the same losses as without it, and saved weights of the same form."""
    synth = f"data.synth_dir={tmp_path / 'synth'}"
    for order in ("true", "false"):
        run([sys.executable, "train_accelerate.py", "--arch", "crnn", "--output-dir", str(tmp_path / order),
             *TINY, synth, "train.max_steps=3", "train.trackers=[]", f"train.channels_last={order}"])
    losses = {o: [r["loss"] for r in read_log(tmp_path / o) if "loss" in r] for o in ("true", "false")}
    assert len(losses["true"]) == 3 and losses["true"] == pytest.approx(losses["false"], rel=1e-4)
    a, b = trained_params(tmp_path / "true" / "last"), trained_params(tmp_path / "false" / "last")
    assert {k: (v.shape, v.dtype) for k, v in a.items()} == {k: (v.shape, v.dtype) for k, v in b.items()}


def test_bad_input_stops_before_training(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "labels.csv").write_text("filename,text\nmissing.png,AB123\n")
    proc = run([sys.executable, "train_accelerate.py", "--arch", "crnn", "--output-dir", str(tmp_path / "r"),
                *TINY, f"data.synth_dir={tmp_path / 'synth'}", f"data.val={bad}"], check=False)
    assert proc.returncode == 2
    assert "data.val" in proc.stderr and "missing.png" in proc.stderr
    assert not (tmp_path / "r" / "checkpoint").exists()

    proc = run([sys.executable, "train_accelerate.py", "--arch", "crnn", "model.backbone=resnet99"], check=False)
    assert proc.returncode == 2 and "model.backbone" in proc.stderr

    proc = run([sys.executable, "train_accelerate.py", "--arch", "crnn", *TINY, "data.image_width=48", "model.steps_per_column=1",
                f"data.synth_dir={tmp_path / 'synth'}"], check=False)
    assert proc.returncode == 2 and "CTC sequence too short" in proc.stderr


def test_two_processes_count_every_eval_sample_once(tmp_path):
    """2 CPU processes (gloo): evaluation over a sharded loader sees each sample exactly once."""
    run_dir = tmp_path / "ddp"
    synth = f"data.synth_dir={tmp_path / 'synth'}"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_port", str(29500 + os.getpid() % 1000)]
    proc = run([*torchrun, "train_accelerate.py", "--arch", "crnn", "--output-dir", str(run_dir),
                *TINY, synth, "train.max_steps=3"], env={"ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"})
    assert "2 process(es)" in proc.stdout + proc.stderr
    report = json.loads((run_dir / "test_metrics.json").read_text())
    (test,) = report["test"].values()
    assert test["overall"]["n"] == 11  # 11 samples over 2 processes at batch 4: padding dropped
    val = [r for r in read_log(run_dir) if "val/n" in r]
    assert val and all(r["val/n"] == 13 for r in val)

    # The same model scored in one process gives the same figures: nothing dropped or doubled.
    test_dir = next((tmp_path / "synth").glob("test_*"))
    out = tmp_path / "single.json"
    run([sys.executable, "val.py", "--weights", str(run_dir / "best"), "--data", str(test_dir),
         "--workers", "0", "--out", str(out)])
    single = json.loads(out.read_text())
    assert single["overall"] == test["overall"]
    assert single["by_country"] == test["by_country"]


def test_weight_moving_average_is_what_is_validated_and_saved(tmp_path):
    """train.ema_decay: best/ and last/ hold the weights' moving average, the checkpoint the raw
    weights (and the average, for --resume); a decay near 0 gives the raw weights back."""
    synth = f"data.synth_dir={tmp_path / 'synth'}"
    gaps = {}
    for decay in (0.9, 1e-9):
        run_dir = tmp_path / f"run{decay}"
        proc = run([sys.executable, "train_accelerate.py", "--arch", "crnn", "--output-dir", str(run_dir),
                    *TINY, synth, "train.max_steps=3", "train.lr=0.05", "train.trackers=[]",
                    f"train.ema_decay={decay}"])
        assert "moving average" in proc.stdout + proc.stderr
        raw, avg = trained_params(run_dir / "checkpoint"), trained_params(run_dir / "last")
        assert raw.keys() == avg.keys()
        gaps[decay] = max((raw[k].float() - avg[k].float()).abs().max().item() for k in raw)
    assert gaps[1e-9] < 1e-6 < 1e-3 < gaps[0.9], gaps

    # The checkpoint keeps the average as safetensors and the counters as JSON: nothing pickled of ours.
    ckpt = tmp_path / "run0.9" / "checkpoint"
    assert (ckpt / "run_state.json").is_file() and not list(ckpt.glob("custom_checkpoint_*"))
    raw3, avg3 = trained_params(ckpt), load_file(str(ckpt / "ema.safetensors"))
    assert all(torch.equal(avg3[k], v) for k, v in trained_params(tmp_path / "run0.9" / "last").items())

    proc = run([sys.executable, "train_accelerate.py", "--resume", str(tmp_path / "run0.9"), "train.max_steps=4"])
    assert "resumed" in proc.stdout + proc.stderr
    assert [r["step"] for r in read_log(tmp_path / "run0.9") if "loss" in r] == [1, 2, 3, 4]
    # Step 4 averaged the resumed average with the new weights (not the model it was built from).
    raw4, avg4 = trained_params(ckpt), load_file(str(ckpt / "ema.safetensors"))
    d = ModelEmaV3(torch.nn.Linear(1, 1), decay=0.9, use_warmup=True).get_decay(4)
    for k, v in raw4.items():
        torch.testing.assert_close(avg4[k], d * avg3[k] + (1 - d) * v, rtol=1e-4, atol=1e-6)
    assert max((raw4[k] - raw3[k]).abs().max().item() for k in raw4) > 0  # it did train a step


def test_a_checkpoint_with_pickled_state_is_refused_without_unpickling(tmp_path):
    """Checkpoints written before run_state.json kept the counters, schedule and average in
    Accelerate's pickled custom states: --resume names the missing file and unpickles nothing."""
    run_dir = tmp_path / "old"
    run([sys.executable, "train_accelerate.py", "--arch", "crnn", "--output-dir", str(run_dir), *TINY,
         f"data.synth_dir={tmp_path / 'synth'}", "train.max_steps=2", "train.trackers=[]"])
    (run_dir / "checkpoint" / "run_state.json").unlink()
    marker = tmp_path / "UNPICKLED"
    (run_dir / "checkpoint" / "custom_checkpoint_0.pkl").write_bytes(trap_pickle(marker))
    before = {p.name: p.read_bytes() for p in (run_dir / "config.yaml", run_dir / "log.jsonl")}
    proc = run([sys.executable, "train_accelerate.py", "--resume", str(run_dir), "train.max_steps=4"], check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "run_state.json is missing" in proc.stderr and "custom_checkpoint_0.pkl" in proc.stderr
    assert not marker.exists()
    assert {p.name: p.read_bytes() for p in (run_dir / "config.yaml", run_dir / "log.jsonl")} == before


def test_train_is_a_function_callable_twice_in_one_process(tmp_path):
    """training.train returns the report it writes, and a second run in the same process works
    without resetting Accelerate's state (a refused config in between changes nothing); the
    caller's signal handlers are back after each run."""
    script = f"""
import json, signal, sys
from configs import ConfigError
from training import run_config, train

handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)

common = {TINY + [f"data.synth_dir={tmp_path / 'synth'}", "train.max_steps=2", "train.trackers=[]"]!r}
for name in ("a", "refused", "b"):
    extra = ["model.steps_per_column=1", "data.image_width=48"] if name == "refused" else []
    try:
        cfg, run_dir, init = run_config("crnn", overrides=common + extra, output_dir={str(tmp_path)!r} + "/" + name)
        report = train(cfg, run_dir, init=init)
    except ConfigError as e:
        assert name == "refused" and "CTC sequence too short" in str(e), e
        continue
    assert report.steps == 2 and str(report.run_dir) == run_dir.path.as_posix()
    assert json.dumps(report.to_json()) == json.dumps(run_dir.read_test_metrics())
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers  # the caller's again
    print("trained", name)
"""
    proc = run([sys.executable, "-c", script])
    assert "trained a" in proc.stdout and "trained b" in proc.stdout
    assert [r["step"] for r in read_log(tmp_path / "b") if "loss" in r] == [1, 2]


def test_a_new_run_refuses_a_folder_holding_a_run(tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "train_accelerate.py", "--arch", "crnn", "--output-dir", str(run_dir),
           *TINY, f"data.synth_dir={tmp_path / 'synth'}", "train.max_steps=2", "train.trackers=[]"]
    run(cmd)
    first = (run_dir / "test_metrics.json").read_bytes()
    (run_dir / "notes.txt").write_text("mine")

    again = run(cmd, check=False)  # the likeliest slip: the same command again instead of --resume
    assert again.returncode == 2
    assert f"--resume {run_dir}" in again.stderr and "--overwrite" in again.stderr
    assert (run_dir / "test_metrics.json").read_bytes() == first

    run([*cmd, "--overwrite"])
    steps = [r["step"] for r in read_log(run_dir) if "loss" in r]
    assert steps == [1, 2]  # the log holds one run, not two
    assert (run_dir / "notes.txt").read_text() == "mine"  # only the run's own files were replaced


def test_a_training_set_smaller_than_a_batch_stops_at_start(tmp_path):
    from data.synth import write_synthetic_dataset

    real = write_synthetic_dataset(tmp_path / "real", n=5, seed=1)
    run_dir = tmp_path / "run"
    proc = run([sys.executable, "train_accelerate.py", "--arch", "crnn", "--output-dir", str(run_dir), *TINY,
                f"data.synth_dir={tmp_path / 'synth'}", f"data.train={real}", "train.max_steps=2"], check=False)
    assert proc.returncode == 2
    assert "data.train has 5 plates, fewer than one batch of train.batch_size=8" in proc.stderr
    assert not (run_dir / "config.yaml").exists()  # nothing written: the fixed command needs no --overwrite


def test_skipped_rows_counted_and_an_unreadable_image_named_in_one_line(tmp_path):
    """data.on_invalid_label=skip says how many rows it dropped and why (issue 26, item 8); a corrupt
    training image stops the run with one line naming it, even from a loader worker (item 7)."""
    from data.synth import write_synthetic_dataset

    real = write_synthetic_dataset(tmp_path / "real", n=8, seed=1)  # one batch: every step reads every image
    lines = (real / "labels.csv").read_text().splitlines()
    header, first = lines[0].split(","), lines[1].split(",")
    bad = list(first)
    bad[header.index("text")] = "AB$12"
    (real / "labels.csv").write_text("\n".join([*lines, ",".join(bad)]) + "\n")
    broken = real / lines[3].split(",")[0]
    broken.write_bytes(b"not an image")
    proc = run([sys.executable, "train_accelerate.py", "--arch", "crnn", "--output-dir", str(tmp_path / "run"), *TINY,
                f"data.synth_dir={tmp_path / 'synth'}", f"data.train={real}", "data.on_invalid_label=skip",
                "data.num_workers=1", "train.max_steps=2"], check=False)
    assert f"data.train ({real}): skipped 1 of 9 rows: 1 invalid label" in proc.stdout
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(broken) in errors[0] and "python -m data.check" in errors[0]


# --------------------------------------------------------------------------- interrupts (issue 26, items 2 and 5)
def start(args: list[str], out: Path, **kwargs) -> subprocess.Popen:
    """A training run in the background (its own process group, as a terminal's job is), output in files."""
    return subprocess.Popen([sys.executable, "train_accelerate.py", *args], cwd=ROOT, start_new_session=True,
                            stdout=(out / "stdout").open("w"), stderr=(out / "stderr").open("w"), **kwargs)


def wait_for_step(proc: subprocess.Popen, run_dir: Path, step: int, timeout: float = 300) -> None:
    """Until log.jsonl shows a training step >= ``step`` (the run is inside its loop)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it was signalled"
        log = run_dir / "log.jsonl"
        if log.is_file() and any('"loss"' in line and json.loads(line)["step"] >= step
                                 for line in log.read_text().splitlines() if line.endswith("}")):
            return
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"no step {step} in {timeout}s")


def unique_steps(run_dir: Path) -> list[int]:
    steps = [r["step"] for r in read_log(run_dir) if "loss" in r]
    assert len(steps) == len(set(steps)), steps  # each step logged once
    return steps


LONG_RUN = [*TINY, "train.max_steps=100000", "train.eval_every=100000", "train.checkpoint_every=100000",
            "train.trackers=[]"]


def test_ctrl_c_stops_after_the_step_with_a_checkpoint_and_resume_continues(tmp_path):
    """Ctrl-C in a terminal reaches the whole process group, loader workers included."""
    run_dir = tmp_path / "run"
    proc = start(["--arch", "crnn", "--output-dir", str(run_dir), *LONG_RUN, "data.num_workers=1",
                  f"data.synth_dir={tmp_path / 'synth'}"], tmp_path)
    wait_for_step(proc, run_dir, 2)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    err = (tmp_path / "stderr").read_text()
    assert "Traceback" not in err
    stopped = int(re.search(r"SIGINT: stopped at step (\d+) of 100000", err).group(1))
    assert f"python train_accelerate.py --resume {run_dir}" in err
    assert unique_steps(run_dir)[-1] == stopped  # nothing lost since the last step-based checkpoint (none)

    proc = run([sys.executable, "train_accelerate.py", "--resume", str(run_dir), f"train.max_steps={stopped + 2}"])
    assert f"resumed {run_dir} at step {stopped}" in proc.stdout
    assert unique_steps(run_dir) == list(range(1, stopped + 3))
    assert (run_dir / "test_metrics.json").is_file()


def test_sigterm_stops_with_a_checkpoint_and_a_kill_mid_swap_still_resumes(tmp_path, monkeypatch):
    """SIGTERM (a scheduler's stop) as Ctrl-C; then what a later kill leaves (a checkpoint swap stopped
    between its renames, temporary folders, log rows after the checkpoint) is put right by --resume."""
    from data.files import swap_into_place

    run_dir = tmp_path / "run"
    proc = start(["--arch", "crnn", "--output-dir", str(run_dir), *LONG_RUN, f"data.synth_dir={tmp_path / 'synth'}"],
                 tmp_path)
    wait_for_step(proc, run_dir, 2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 143
    err = (tmp_path / "stderr").read_text()
    assert "Traceback" not in err and f"--resume {run_dir}" in err
    stopped = int(re.search(r"SIGTERM: stopped at step (\d+)", err).group(1))

    # A kill between the two renames of a checkpoint swap: the old one aside, the new one not yet in.
    shutil.copytree(run_dir / "checkpoint", run_dir / "checkpoint.tmp")
    real, calls = os.replace, []

    def killed_at_the_second_rename(src, dst):
        calls.append(src)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(src, dst)

    with monkeypatch.context() as m:
        m.setattr(os, "replace", killed_at_the_second_rename)
        with pytest.raises(KeyboardInterrupt):
            swap_into_place(run_dir / "checkpoint.tmp", run_dir / "checkpoint")
    assert not (run_dir / "checkpoint").exists()
    (run_dir / ".best.tmp-abc123").mkdir()  # a model folder cut short
    with (run_dir / "log.jsonl").open("a") as log:  # logged after the checkpoint, then killed
        log.write(json.dumps({"step": stopped + 1, "loss": 9.0}) + "\n" + '{"step": ')

    proc = run([sys.executable, "train_accelerate.py", "--resume", str(run_dir), f"train.max_steps={stopped + 2}"])
    assert f"resumed {run_dir} at step {stopped}" in proc.stdout
    assert unique_steps(run_dir) == list(range(1, stopped + 3))
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")]


def test_a_killed_run_resumes_from_its_timed_checkpoint(tmp_path):
    """SIGKILL gives no chance to save: train.checkpoint_minutes bounds what is lost (every step here)."""
    run_dir = tmp_path / "run"
    proc = start(["--arch", "crnn", "--output-dir", str(run_dir), *LONG_RUN, f"data.synth_dir={tmp_path / 'synth'}",
                  "train.checkpoint_minutes=0.0001"], tmp_path)
    wait_for_step(proc, run_dir, 3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    logged = max(json.loads(line)["step"] for line in (run_dir / "log.jsonl").read_text().splitlines()
                 if line.endswith("}") and '"loss"' in line)

    proc = run([sys.executable, "train_accelerate.py", "--resume", str(run_dir), f"train.max_steps={logged + 1}"])
    resumed = int(re.search(r"resumed .* at step (\d+)", proc.stdout).group(1))
    assert resumed >= 2  # a checkpoint long before train.checkpoint_every
    assert unique_steps(run_dir) == list(range(1, logged + 2))


def test_cpu_threads_undo_accelerate_launchs_one_thread(monkeypatch):
    """accelerate launch sets OMP_NUM_THREADS=1 for a one-process CPU run (half the speed on 2
    cores): under it, train.cpu_threads: null takes the machine's cores shared by its processes;
    without it, PyTorch's default (a side job's OMP_NUM_THREADS=1 stays 1); a number wins."""
    import torch

    import training.data as td

    monkeypatch.setattr(td, "usable_cores", lambda: 8)
    monkeypatch.delenv(td.ACCELERATE_LAUNCH_MARK, raising=False)
    assert td.cpu_threads(None) == (torch.get_num_threads(), "train.cpu_threads: null, PyTorch's default")
    monkeypatch.setenv(td.ACCELERATE_LAUNCH_MARK, "NO")
    assert td.cpu_threads(None)[0] == 8
    assert td.cpu_threads(None, processes_per_machine=2)[0] == 4
    assert td.cpu_threads(None, processes_per_machine=16)[0] == 1
    assert td.cpu_threads(3) == (3, "train.cpu_threads: 3")
