"""The run folder after faults (issue 26, items 2 and 5): interrupted swaps, leftovers, the log after
a resume, Ctrl-C and SIGTERM handling, and the loader settings (issue 23, item 3). No training here:
tests/test_train.py runs the same paths end to end."""

from __future__ import annotations

import json
import os
import signal

import pytest

from configs import load_config
from data.files import recover_swap, swap_into_place
from training.data import loading
from training.run_dir import RunDir
from training.signals import Interrupted, StopRequest


def folder(path, text: str):
    path.mkdir(parents=True)
    (path / "state.txt").write_text(text)
    return path


def kill_between_the_renames(monkeypatch, tmp, final) -> None:
    """swap_into_place stopped after moving ``final`` aside and before moving ``tmp`` in."""
    real, calls = os.replace, []

    def replace(src, dst):
        calls.append(src)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        real(src, dst)

    with monkeypatch.context() as m:
        m.setattr(os, "replace", replace)
        with pytest.raises(KeyboardInterrupt):
            swap_into_place(tmp, final)
    assert not final.exists() and tmp.exists()


def test_a_swap_killed_between_its_renames_is_finished(tmp_path, monkeypatch):
    final = folder(tmp_path / "checkpoint", "old")
    tmp = folder(tmp_path / "checkpoint.tmp", "new")
    kill_between_the_renames(monkeypatch, tmp, final)
    assert "moved in" in recover_swap(final)
    assert (final / "state.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_without_the_new_folder_the_old_one_goes_back(tmp_path):
    final = tmp_path / "best"
    folder(tmp_path / ".best.old-abc" / "best", "old")  # as an older swap left it: no record of the new one
    assert "previous folder put back" in recover_swap(final)
    assert (final / "state.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]
    assert recover_swap(final) is None  # nothing left to do


def test_resume_recovers_the_checkpoint_and_removes_leftovers(tmp_path, monkeypatch):
    run = RunDir(tmp_path / "run")
    folder(run.checkpoint, "step 4")
    run.config.write_text("arch: crnn\n")
    (run.path / "notes.txt").write_text("mine")
    kill_between_the_renames(monkeypatch, folder(run.checkpoint_tmp, "step 6"), run.checkpoint)
    folder(run.path / ".best.tmp-x1", "half written")
    folder(run.path / ".last.old-y2" / "last", "old last")  # killed while removing the old one
    folder(run.last, "last")
    assert run.can_resume()  # the checkpoint is recoverable: --resume must not refuse

    done = run.recover()
    assert (run.checkpoint / "state.txt").read_text() == "step 6"
    assert (run.last / "state.txt").read_text() == "last"
    assert sorted(p.name for p in run.path.iterdir()) == ["checkpoint", "config.yaml", "last", "notes.txt"]
    assert any(".best.tmp-x1" in line for line in done)
    assert run.recover() == []


def test_a_new_run_with_overwrite_clears_leftovers_too(tmp_path):
    run = RunDir(tmp_path)
    run.config.write_text("arch: crnn\n")
    folder(tmp_path / ".checkpoint.old-z" / "checkpoint", "old")
    (tmp_path / "notes.txt").write_text("mine")
    run.clear()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_the_log_keeps_each_step_once_after_a_resume(tmp_path):
    run = RunDir(tmp_path)
    rows = [{"step": 0, "init_sha256": "ab"}, *({"step": s, "loss": 1.0 / s} for s in range(1, 7)),
            {"step": 4, "val/exact_match": 0.5}, {"note": "no step"}]
    run.log.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 7, "lo')  # cut short by a kill
    assert run.truncate_log(4) == 3  # steps 5 and 6, and the cut line
    assert run.read_log() == [r for r in rows if r.get("step", 0) <= 4]
    assert [r["step"] for r in run.read_log() if "loss" in r] == [1, 2, 3, 4]
    assert run.truncate_log(4) == 0
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    assert RunDir(tmp_path / "none").truncate_log(3) == 0


def test_resume_command_names_the_run_folder():
    assert RunDir("runs/my run").resume_command() == "python train_accelerate.py --resume 'runs/my run'"
    assert RunDir("runs/a").resume_command(4).startswith("accelerate launch train_accelerate.py --resume runs/a")


def test_first_signal_asks_to_stop_second_ctrl_c_aborts_handlers_come_back():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with StopRequest(quiet=True) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signum == signal.SIGTERM
        os.kill(os.getpid(), signal.SIGTERM)  # already stopping: a second SIGTERM changes nothing
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    with StopRequest(quiet=True) as stop:
        os.kill(os.getpid(), signal.SIGINT)
    assert stop.signum == signal.SIGINT
    assert Interrupted(signal.SIGINT, "m").exit_code == 130 and Interrupted(signal.SIGTERM, "m").exit_code == 143
    assert isinstance(Interrupted(signal.SIGINT, "m"), KeyboardInterrupt)  # not caught by `except Exception`


def test_loader_workers_auto_uses_all_cores_but_one_on_a_gpu(monkeypatch):
    import training.data

    monkeypatch.setattr(training.data, "usable_cores", lambda: 16)
    auto = load_config("crnn").data
    assert auto.num_workers == -1
    gpu = loading(auto, "cuda")
    assert (gpu.workers, gpu.pin_memory) == (15, True)
    assert "15 worker processes" in gpu.describe() and "all 16 cores but one" in gpu.describe()
    assert gpu.kwargs()["prefetch_factor"] == 4 and gpu.kwargs()["worker_init_fn"] is not None
    assert loading(auto, "cuda", processes_per_machine=4).workers == 3
    cpu = loading(auto, "cpu")
    assert (cpu.workers, cpu.pin_memory) == (0, False) and "in the training process" in cpu.describe()
    assert cpu.kwargs()["prefetch_factor"] is None
    assert loading(load_config("crnn", overrides=["data.num_workers=2"]).data, "cuda").workers == 2


def test_training_stream_takes_the_plate_bank_from_the_config():
    from training import run_config
    from training.data import Loading, train_data

    cfg, _, _ = run_config("crnn", overrides=["data.synth_bank_uses=4", "data.synth_bank_size=8"])
    data = train_data(cfg.data, None, batch_size=2, samples_per_step=2, seed=0, start_step=0,
                      rank=0, world_size=1, load=Loading(workers=0))
    assert (data.dataset.bank.uses, data.dataset.bank.size) == (4, 8)
    batch = next(iter(data.loader))
    assert batch["images"].shape[0] == 2


def test_start_up_line_says_when_a_stream_draws_from_a_bank():
    from training.data import bank_note

    assert bank_note(load_config("crnn").data) == ""  # off by default on CPU
    on = load_config("crnn", overrides=["data.synth_bank_uses=4"]).data
    assert bank_note(on) == "plate bank: each rendered plate serves 4 samples (data.synth_bank_uses)"
    assert "serves 4 samples" in bank_note(load_config(path="configs/attn_gpu.yaml").data)
