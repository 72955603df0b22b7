"""Training as a function: ``train(cfg) -> TrainReport``, with Hugging Face Accelerate.

    cfg, run_dir, init = run_config("crnn", overrides=["train.max_steps=200"])
    report = train(cfg, run_dir, init=init)
    report.test["synth-test"]["overall"]["exact_match"]

One process or many (multi-GPU, multi-node, or CPU processes under torchrun):
Accelerate places the model, shards map-style data, syncs gradients and
handles mixed precision and gradient accumulation. Synthetic training data is
generated independently on every process (seeded by rank and worker).

A run has three parts: :func:`setup` (data, model, optimiser, resume, run folder),
:func:`fit` (the loop, validation, best/ and last/, checkpoints) and :func:`final_test`
(the best model on every test set, ``test_metrics.json``).

Ctrl-C or SIGTERM during :func:`fit` stops the run after its step with a checkpoint and raises
:class:`training.signals.Interrupted`, whose message is the command that continues the run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, broadcast_object_list, parse_flag_from_env, set_seed
from safetensors.torch import load_model, save_model
from timm.utils import ModelEmaV3
from tqdm.auto import tqdm

from configs import Config, ConfigError, load_config
from configs.schema import BEST_METRICS
from data.files import swap_into_place
from data.images import ImageReadError, error_line
from data.text import Charset
from evaluation import evaluate
from metrics import format_metrics_table
from models import create_model, PlateRecognizer
from models.heads import has_country_labels
from training.data import (EvalSet, Loading, TrainData, bank_note, cpu_threads, eval_loader, eval_sets, input_spec,
                           loading, max_train_label_length, train_data, train_records)
from training.finetune import HEAD_NAMES, InitModel, apply_init_from, freeze_all_but, load_init_model, load_init_weights
from training.run_dir import RunDir
from training.signals import Interrupted, StopRequest


# --------------------------------------------------------------------------- config of a run
def run_config(arch: str | None = None, config: str | os.PathLike | None = None, overrides: Sequence[str] = (), *,
               output_dir: str | os.PathLike | None = None, init_from: str | os.PathLike | None = None,
               resume: str | os.PathLike | None = None) -> tuple[Config, RunDir, InitModel | None]:
    """The config, run folder and init model (a fine-tune's, loaded once) of a new or resumed run.

    ``resume``: the run folder to continue (its config.yaml, with ``overrides``). Otherwise
    ``configs/<arch>.yaml`` or ``config`` with ``overrides``; ``output_dir`` and ``init_from``
    set ``train.output_dir`` and ``train.init_from``; a fine-tune takes the init model's model
    options and input size (:func:`training.finetune.apply_init_from`).
    """
    overrides = list(overrides)
    if resume and init_from:
        raise ConfigError("--init-from starts a new run from a model's weights; --resume continues a run "
                          "(a fine-tune run resumes from its own checkpoint): give one of them")
    if resume:
        run_dir = RunDir(resume)
        if not run_dir.can_resume():
            raise ConfigError(f"--resume {run_dir}: no {RunDir.CONFIG} and {RunDir.CHECKPOINT}/ in that folder")
        return load_config(arch, run_dir.config, overrides), run_dir, None
    if arch is None and config is None:
        raise ConfigError("give --arch (e.g. --arch crnn) or --config FILE")
    if output_dir:
        overrides.append(f"train.output_dir={output_dir}")
    if init_from:
        overrides.append(f"train.init_from={json.dumps(str(init_from))}")
    cfg = load_config(arch, config, overrides)
    init = None
    if cfg.train.init_from:
        cfg, init = apply_init_from(cfg, overrides)
    return cfg, RunDir.new(cfg.arch, cfg.train.output_dir), init


def claim_run_dir(run_dir: RunDir, overwrite: bool, accelerator: Accelerator) -> None:
    """A new run starts in a folder without a run in it: a second run must not replace the first's
    models and test metrics, or mix its log with the first's, without being told to."""
    found = run_dir.run_files()
    if not found:
        return
    if not overwrite:
        raise ConfigError(f"{run_dir} already holds a run ({', '.join(found)}): continue it with "
                          f"--resume {run_dir}, or start it again with --overwrite (deletes those)")
    if accelerator.is_main_process:
        run_dir.clear()
    accelerator.wait_for_everyone()


def model_options(cfg: Config, records: list | None) -> dict:
    """The model section, with ``country_head: null`` resolved: on when the training data has
    country labels (the synthetic generator always has). The run's config.yaml keeps null;
    the saved model folders say what was built."""
    options = dataclasses.asdict(cfg.model)
    if "country_head" in options and options["country_head"] is None:
        options["country_head"] = True if records is None else has_country_labels([r.country for r in records])
    return options


# --------------------------------------------------------------------------- state
@dataclass
class RunState:
    """Counters saved with Accelerate's checkpoint so --resume continues the same run."""

    step: int = 0
    best: float | None = None
    train_seconds: float = 0.0

    def state_dict(self) -> dict:
        return {"step": self.step, "best": self.best, "train_seconds": self.train_seconds}

    def load_state_dict(self, d: dict) -> None:
        self.step, self.best, self.train_seconds = int(d["step"]), d["best"], float(d["train_seconds"])


@dataclass
class TrainReport:
    """What a finished run reports; :meth:`to_json` is its ``test_metrics.json``."""

    run_dir: RunDir
    arch: str
    steps: int
    train_seconds: float
    best_val: dict[str, float | None]  # {train.best_metric: its best validation value}
    num_parameters: int
    test: dict[str, dict] = field(default_factory=dict)  # test set name -> metrics

    def to_json(self) -> dict:
        return {"arch": self.arch, "steps": self.steps, "train_seconds": self.train_seconds,
                "best_val": self.best_val, "num_parameters": self.num_parameters, "test": self.test}


class RunLog:
    """``log.jsonl`` (main process) and the trackers: one record per call, at the run's step."""

    def __init__(self, accelerator: Accelerator, run_dir: RunDir, state: RunState):
        self.accelerator, self.state = accelerator, state
        self.file = run_dir.log.open("a") if accelerator.is_main_process else None

    def __call__(self, record: dict) -> None:
        self.accelerator.log({k: v for k, v in record.items() if isinstance(v, (int, float))}, step=self.state.step)
        if self.file is not None:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


@dataclass
class Run:
    """What :func:`setup` builds for :func:`fit` and :func:`final_test`."""

    cfg: Config
    run_dir: RunDir
    accelerator: Accelerator
    charset: Charset
    state: RunState
    model: Any  # as prepared by Accelerate (maybe wrapped)
    net: PlateRecognizer  # the model itself
    scored: PlateRecognizer  # what is validated and saved: the model or its moving average
    ema: ModelEmaV3 | None
    frozen: list[torch.nn.Module]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    val_loader: Any
    test_sets: list[EvalSet]
    data: TrainData
    loading: Loading
    log: RunLog


# --------------------------------------------------------------------------- helpers
def lr_lambda(warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


def is_better(metric: str, value: float, best: float | None) -> bool:
    if best is None or math.isnan(best):
        return not math.isnan(value)
    return value > best if BEST_METRICS[metric] == "max" else value < best


def best_metric_value(results: dict, metric: str) -> float:
    return results["country"]["accuracy"] if metric == "country_accuracy" else results["overall"][metric]


def save_checkpoint(run: Run) -> None:
    """Accelerate's state (model, optimiser, RNG), the counters and schedule as JSON and the moving
    average as safetensors, written beside and swapped in atomically. Nothing of ours goes through
    Accelerate's custom states: those are pickled, and loaded with ``weights_only=False``."""
    accelerator, run_dir = run.accelerator, run.run_dir
    final, tmp = run_dir.checkpoint, run_dir.checkpoint_tmp
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    if accelerator.is_main_process:
        state = {"run": run.state.state_dict(), "scheduler": run.scheduler.state_dict()}
        (tmp / RunDir.CHECKPOINT_STATE).write_text(json.dumps(state, indent=1) + "\n")
        if run.ema is not None:
            save_model(run.ema.module, str(tmp / RunDir.CHECKPOINT_EMA))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        swap_into_place(tmp, final)
    accelerator.wait_for_everyone()


def load_checkpoint(accelerator: Accelerator, path: Path, state: RunState,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, ema: ModelEmaV3 | None) -> None:
    """What :func:`save_checkpoint` wrote, back into the run's objects; a checkpoint that lacks a
    part this run needs is refused by name before anything is loaded."""
    state_file, ema_file = path / RunDir.CHECKPOINT_STATE, path / RunDir.CHECKPOINT_EMA
    if not state_file.is_file():
        old = sorted(p.name for p in path.glob("custom_checkpoint_*.pkl"))
        raise ConfigError(f"--resume: {state_file} is missing" + (
            f"; this checkpoint is from an older version, which kept that state pickled ({', '.join(old)}), "
            "and pickles are never loaded here: start the run again, or fine-tune from its last/ with "
            "train.init_from" if old else ""))
    if ema is not None and not ema_file.is_file():
        raise ConfigError(f"--resume: {ema_file} is missing (train.ema_decay is set; the run was "
                          "started without it?)")
    try:
        saved = json.loads(state_file.read_text())
        run_state, schedule = saved["run"], saved["scheduler"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ConfigError(f"--resume: {state_file} is not a checkpoint state ({e!r})") from e
    accelerator.load_state(str(path))
    state.load_state_dict(run_state)
    scheduler.load_state_dict(schedule)
    # The next step's rate from this run's schedule (train.max_steps may have grown), not the one saved.
    for group, base, f in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base * f(scheduler.last_epoch)
    if ema is not None:
        load_model(ema.module, str(ema_file), device=str(next(ema.module.parameters()).device))


def agreed(accelerator: Accelerator, step: int, flags: list[bool]) -> list[bool]:
    """Decisions every process must take together (stop, save a checkpoint now): in one process
    at once; in several, every 10 steps (one all-reduce), true where any process says so."""
    if accelerator.num_processes == 1:
        return flags
    if step % 10:
        return [False] * len(flags)
    votes = accelerator.reduce(torch.tensor(flags, dtype=torch.float32, device=accelerator.device), reduction="sum")
    return [bool(v > 0) for v in votes.tolist()]


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, (int, float, str, bool)):
            out[key] = v
        else:
            out[key] = str(v)
    return out


def iterate_forever(loader, prepared: bool, accelerator: Accelerator, start_step: int) -> Iterator[dict]:
    """Batches without end; a map-style loader restarts each epoch (skipping what a resumed run already saw)."""
    if not prepared:
        while True:
            yield from loader
    per_epoch = len(loader)
    epoch, skip = divmod(start_step, per_epoch) if per_epoch else (0, 0)
    while True:
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        yield from (accelerator.skip_first_batches(loader, skip) if skip else loader)
        epoch, skip = epoch + 1, 0


# --------------------------------------------------------------------------- the run
def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (oneDNN's own check: AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def mixed_precision(requested: str | None, device_type: str) -> tuple[str | None, str]:
    """Accelerate's ``mixed_precision`` for ``train.mixed_precision`` on a ``device_type`` device
    (``cpu``, ``cuda``, ...), and how ``auto`` chose it: bf16 where the device computes it natively,
    else no. On a CPU without native bf16, bf16 autocast trained the attention model 18x slower
    than float32 (docs/training.md)."""
    if requested != "auto":
        return requested, ""
    native = (cpu_has_bf16() if device_type == "cpu"
              else device_type == "cuda" and torch.cuda.is_bf16_supported())
    device = "CPU" if device_type == "cpu" else "GPU" if device_type == "cuda" else device_type
    return ("bf16" if native else "no"), f"train.mixed_precision: auto, a {device} {'with' if native else 'without'} native bf16"


def train(cfg: Config, run_dir: RunDir | str | os.PathLike | None = None, *, resume: bool = False,
          init: InitModel | None = None, overwrite: bool = False) -> TrainReport:
    """Train ``cfg`` into ``run_dir`` (default: ``train.output_dir``, else ``runs/<arch>/<timestamp>``).

    ``resume``: continue the run in ``run_dir`` from its checkpoint. A new run refuses a folder
    that already holds a run, unless ``overwrite`` (which deletes that run's files). ``init``: the loaded
    ``train.init_from`` model of a fine-tune (:func:`run_config` gives it with the config; loaded
    here if not given). Bad input raises ``ConfigError`` before the first step (an unreadable image
    met later raises it too, naming the file). Callable again
    in the same process with the same mixed precision (Accelerate keeps one state per process).
    """
    run = setup(cfg, run_dir, resume=resume, init=init, overwrite=overwrite)
    try:
        with StopRequest(quiet=not run.accelerator.is_main_process) as stop:  # handlers restored after fit
            interrupted = fit(run, stop)
        if interrupted:
            raise stopped_on_signal(run, stop.signum or signal.SIGTERM)
        return final_test(run)
    except ImageReadError as e:  # one line naming the file, not a DataLoader worker's traceback
        raise ConfigError(error_line(e)) from None


def stopped_on_signal(run: Run, signum: int) -> Interrupted:
    """The end of a run stopped by a signal (its checkpoint saved): the log closed, and the
    exception that says how to continue (printed here too, by the main process)."""
    accelerator, run_dir = run.accelerator, run.run_dir
    message = (f"{signal.Signals(signum).name}: stopped at step {run.state.step} of {run.cfg.train.max_steps}, "
               f"checkpoint saved in {run_dir.checkpoint}; continue the run with:\n"
               f"  {run_dir.resume_command(accelerator.num_processes)}")
    run.log.close()
    accelerator.end_training()
    if accelerator.is_main_process:
        print(message, file=sys.stderr, flush=True)
    return Interrupted(signum, message)


def setup(cfg: Config, run_dir: RunDir | str | os.PathLike | None = None, *, resume: bool = False,
          init: InitModel | None = None, overwrite: bool = False) -> Run:
    """Accelerator, data, model (initialised, frozen, averaged), optimiser, resumed state, the
    run's config.yaml and log: everything checked before the first step."""
    tc, dc = cfg.train, cfg.data
    if resume and run_dir is None:
        raise ConfigError("resume: give the run folder to continue")
    run_dir = RunDir(run_dir) if run_dir is not None else RunDir.new(cfg.arch, tc.output_dir)
    trackers = [t for t in tc.trackers if t]
    # The device as Accelerate will choose it, before the Accelerator that needs the precision exists.
    on_cpu = parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available()
    precision, precision_note = mixed_precision(tc.mixed_precision, "cpu" if on_cpu else "cuda")
    accelerator = Accelerator(
        gradient_accumulation_steps=tc.grad_accum_steps,
        log_with=trackers or None,
        project_config=ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(run_dir.trackers)),
        **({"mixed_precision": precision} if precision is not None else {}),
    )
    # Every process must agree on the run folder (timestamps may differ by a second).
    run_dir = RunDir(broadcast_object_list([str(run_dir)])[0])
    if resume:  # a kill may have left a checkpoint half swapped in, and temporary folders
        if accelerator.is_main_process:
            for line in run_dir.recover():
                print(line, flush=True)
        accelerator.wait_for_everyone()
        if not run_dir.can_resume():
            raise ConfigError(f"--resume {run_dir}: no {RunDir.CONFIG} and {RunDir.CHECKPOINT}/ in that folder")
    else:
        claim_run_dir(run_dir, overwrite, accelerator)
    set_seed(tc.seed, device_specific=True)
    charset = Charset(dc.charset)

    # Data first: bad input is reported before any model is built or step taken.
    with accelerator.main_process_first():
        val_set, test_sets = eval_sets(dc, charset, accelerator.print)
    records = train_records(dc, charset, accelerator.print)
    state = RunState()
    model, init_info, frozen = build_model(cfg, charset, records, init, resume)
    check_best_metric(cfg, model, val_set)
    if tc.channels_last:
        model = model.to(memory_format=torch.channels_last)

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=tc.lr,
                                  weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(tc.warmup_steps, tc.max_steps))
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    load = loading(dc, accelerator.device.type, processes_per_machine=local_processes)
    threads = None
    if accelerator.device.type == "cpu":
        threads = cpu_threads(tc.cpu_threads, local_processes)
        torch.set_num_threads(threads[0])
    val_loader = eval_loader(val_set[1], tc.eval_batch_size, load)
    model, optimizer, val_loader = accelerator.prepare(model, optimizer, val_loader)
    ema = None
    if tc.ema_decay is not None:  # every process holds the same average (the weights are in sync)
        ema = ModelEmaV3(accelerator.unwrap_model(model), decay=tc.ema_decay, use_warmup=True)

    if resume:
        load_checkpoint(accelerator, run_dir.checkpoint, state, scheduler, ema)
        accelerator.print(f"resumed {run_dir} at step {state.step}")
        # What a killed run logged after its checkpoint is logged again from there: each step once.
        if accelerator.is_main_process and (dropped := run_dir.truncate_log(state.step)):
            print(f"{run_dir.log}: dropped {dropped} record(s) after step {state.step}, the checkpoint's", flush=True)
    # A resumed synthetic stream continues from a seed tied to the step, not from the start.
    data = train_data(dc, records, batch_size=tc.batch_size, samples_per_step=tc.batch_size * tc.grad_accum_steps,
                      seed=tc.seed + 7919 * state.step, start_step=state.step,
                      rank=accelerator.process_index, world_size=accelerator.num_processes, load=load)
    net: PlateRecognizer = accelerator.unwrap_model(model)
    try:
        net.check_label_length(*max_train_label_length(dc, records))
        for name, ds in [val_set, *test_sets]:
            net.check_label_length(max(len(r.text) for r in ds.records), name)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    # Written once every check has passed: a run stopped by bad input leaves no run behind.
    if accelerator.is_main_process:  # on resume too: overrides such as a larger train.max_steps belong to the run
        run_dir.write_config(cfg.to_dict())
    accelerator.wait_for_everyone()
    if data.prepared:
        data.loader = accelerator.prepare(data.loader)

    if trackers:
        accelerator.init_trackers("train", config=flatten(cfg.to_dict()))
    run = Run(cfg, run_dir, accelerator, charset, state, model, net, ema.module if ema is not None else net, ema,
              frozen, optimizer, scheduler, val_loader, test_sets, data, load, RunLog(accelerator, run_dir, state))
    if init_info is not None:
        run.log(init_info)
        print_init(accelerator, tc.init_from, init_info)
    accelerator.print(
        f"{cfg.arch}: {net.num_parameters() / 1e6:.2f}M parameters, input {dc.image_height}x{dc.image_width}, "
        f"{accelerator.num_processes} process(es) on {accelerator.device}, mixed precision {accelerator.mixed_precision}"
        + (f" ({precision_note})" if precision_note else "") + "; "
        f"run folder {run_dir}"
        + (f"; validated and saved: the weights' moving average (decay {tc.ema_decay})" if ema is not None else "")
        + (f"; training only {', '.join(tc.trainable)} ({net.num_parameters(trainable_only=True) / 1e6:.2f}M "
           "parameters), the rest frozen" if frozen else "")
    )
    bank = bank_note(dc)
    accelerator.print(load.describe() + (f"; {threads[0]} CPU thread(s) per process ({threads[1]})" if threads else "")
                      + (f"; {bank}" if bank else ""))
    return run


def build_model(cfg: Config, charset: Charset, records: list | None, init: InitModel | None,
                resume: bool) -> tuple[PlateRecognizer, dict | None, list[torch.nn.Module]]:
    """The model of the run; a new fine-tune's weights from the init model (the record to log);
    the modules ``train.trainable`` freezes."""
    dc, tc = cfg.data, cfg.train
    try:
        model = create_model(cfg.arch, model_options(cfg, records), charset, input_spec(dc))
    except ValueError as e:
        raise ConfigError(str(e)) from e
    init_info = None
    if tc.init_from and not resume:  # a resumed fine-tune continues from its own checkpoint
        init_info = load_init_weights(model, init or load_init_model(tc.init_from, charset, cfg.arch))
    frozen = freeze_all_but(model, tc.trainable) if tc.trainable else []
    return model, init_info, frozen


def check_best_metric(cfg: Config, model: PlateRecognizer, val_set: EvalSet) -> None:
    if cfg.train.best_metric == "country_accuracy":
        if getattr(model, "class_head", None) is None:
            raise ConfigError("train.best_metric=country_accuracy: the model has no country head (model.country_head)")
        if not has_country_labels([r.country for r in val_set[1].records]):
            raise ConfigError(f"train.best_metric=country_accuracy: data.val ({cfg.data.val}) has no country labels")


def print_init(accelerator: Accelerator, source: str, info: dict) -> None:
    notes = {"fresh": "; the {} starts fresh (the init model has none, or one of another shape)",
             "dropped": "; the init model's {} is not used"}
    heads = "".join(notes.get(info[record], "").format(name) for record, name in HEAD_NAMES.items())
    accelerator.print(f"initialised from {source} (sha256 {info['init_sha256'][:12]}); "
                      f"fresh optimiser and learning-rate schedule{heads}")
    if info["init_grown_blocks"]:
        accelerator.print(f"blocks the init model does not have start as the identity: "
                          f"{', '.join(info['init_grown_blocks'])}")


def fit(run: Run, stop: StopRequest | None = None) -> bool:
    """Optimiser steps up to ``train.max_steps`` (or ``train.time_limit_minutes``): the loss and the
    share of time spent waiting for data logged every ``log_every``, validation (best/) every
    ``eval_every``, last/ and the checkpoint every ``checkpoint_every`` steps, every
    ``checkpoint_minutes`` and at the end. A signal recorded by ``stop`` ends the run after its step
    with a checkpoint (no validation): returns True then."""
    tc, accelerator, state, model = run.cfg.train, run.accelerator, run.state, run.model
    batches = iterate_forever(run.data.loader, run.data.prepared, accelerator,
                              start_step=state.step * tc.grad_accum_steps)
    model.train()
    progress = tqdm(total=tc.max_steps, initial=state.step, desc="train", disable=not accelerator.is_main_process,
                    dynamic_ncols=True, mininterval=1 if sys.stderr.isatty() else 30)
    t_start, time_at_start, last_checkpoint = time.time(), state.train_seconds, time.monotonic()
    loss_sum, loss_n, wait_s, step_s = 0.0, 0, 0.0, 0.0
    signalled = halt = False
    try:  # the bar closed first: an error (an unreadable image) is printed on a line of its own
        while state.step < tc.max_steps and not halt:
            t0 = time.perf_counter()
            batch = next(batches)
            if not run.data.prepared:
                batch["images"] = batch["images"].to(accelerator.device, non_blocking=True)
            wait_s += time.perf_counter() - t0
            for m in run.frozen:  # model.train() (here and after each validation) would switch them back
                m.eval()
            with accelerator.accumulate(model):
                outputs = model(batch["images"], batch["texts"], batch["rows"])
                loss = run.net.loss(outputs, batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients and tc.grad_clip > 0:
                    accelerator.clip_grad_norm_(model.parameters(), tc.grad_clip)
                run.optimizer.step()
                run.optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.item()  # waits for the device: the step's time includes its computation
            loss_n += 1
            step_s += time.perf_counter() - t0
            if not accelerator.sync_gradients:
                continue
            run.scheduler.step()
            state.step += 1
            if run.ema is not None:
                run.ema.update(run.net, step=state.step)
            state.train_seconds = time_at_start + time.time() - t_start
            progress.update(1)
            if state.step % tc.log_every == 0:
                avg, data_wait = loss_sum / max(1, loss_n), wait_s / step_s if step_s > 0 else 0.0
                progress.set_postfix({"loss": f"{avg:.3f}", "data_wait": f"{data_wait:.0%}"})
                run.log({"step": state.step, "loss": avg, "lr": run.scheduler.get_last_lr()[0],
                         "time_s": round(state.train_seconds, 1), "data_wait": round(data_wait, 4)})
                loss_sum, loss_n, wait_s, step_s = 0.0, 0, 0.0, 0.0
            time_up = tc.time_limit_minutes is not None and state.train_seconds > 60 * tc.time_limit_minutes
            checkpoint_due = bool(tc.checkpoint_minutes) and time.monotonic() - last_checkpoint > 60 * tc.checkpoint_minutes
            time_up, checkpoint_due, signalled = agreed(
                accelerator, state.step, [time_up, checkpoint_due, stop is not None and stop.signum is not None])
            halt = time_up or signalled
            last = state.step >= tc.max_steps or halt
            if (state.step % tc.eval_every == 0 or last) and not signalled:
                validate(run, progress)
            if state.step % tc.checkpoint_every == 0 or last or checkpoint_due:
                if accelerator.is_main_process:
                    run.scored.save_pretrained(run.run_dir.last)
                save_checkpoint(run)
                last_checkpoint = time.monotonic()
    finally:
        progress.close()
    accelerator.wait_for_everyone()
    return signalled


def validate(run: Run, progress: tqdm) -> None:
    """Score the validation set; a better ``train.best_metric`` saves best/."""
    metric, state = run.cfg.train.best_metric, run.state
    results = evaluate(run.model if run.ema is None else run.scored, run.val_loader, run.accelerator, desc="val").metrics
    value = best_metric_value(results, metric)
    run.log({"step": state.step, **{f"val/{k}": v for k, v in results["overall"].items()},
             **{f"val/{k}_accuracy": results[k]["accuracy"] for k in ("country", "rows") if k in results}})
    progress.write(f"step {state.step}: val exact match {results['overall']['exact_match']:.4f}, "
                   f"CER {results['overall']['cer']:.4f}")
    if is_better(metric, value, state.best):
        state.best = value
        if run.accelerator.is_main_process:
            run.scored.save_pretrained(run.run_dir.best)


def final_test(run: Run) -> TrainReport:
    """The best model on every test set: printed tables, ``test_metrics.json``, the report."""
    cfg, accelerator, state, run_dir = run.cfg, run.accelerator, run.state, run.run_dir
    best = PlateRecognizer.from_pretrained(run_dir.best, expected_charset=run.charset).to(accelerator.device)
    if cfg.train.channels_last:
        best = best.to(memory_format=torch.channels_last)
    report = TrainReport(run_dir, cfg.arch, state.step, round(state.train_seconds, 1),
                         {cfg.train.best_metric: state.best}, best.num_parameters())
    best = accelerator.prepare(best)
    tables = []
    for name, ds in run.test_sets:
        loader = accelerator.prepare(eval_loader(ds, cfg.train.eval_batch_size, run.loading))
        results = evaluate(best, loader, accelerator, desc=name).metrics
        report.test[name] = results
        tables.append(format_metrics_table(results, title=f"{name} ({cfg.arch}, best of {state.step} steps)"))
    if accelerator.is_main_process:
        run_dir.write_test_metrics(report.to_json())
        first = report.test[run.test_sets[0][0]]
        run.log({"step": state.step, **{f"test/{k}": v for k, v in first["overall"].items()}})
        print("\n\n".join(tables))
        print(f"\nrun folder: {run_dir}  (best model: {run_dir.best}, metrics: {run_dir.test_metrics})")
    run.log.close()
    accelerator.end_training()
    return report
