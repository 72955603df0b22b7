"""The datasets and loaders of a training run, built from its data config (``cfg.data``).

The data section enters here once: the fixed synthetic val/test sets, the evaluation
datasets, the training records (a dataset path is read once) and the training stream or
loader, with every ``data.*`` value applied in this module.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import torch
from torch.utils.data import DataLoader

from configs import SYNTH, ConfigError, DataConfig
from data.datasets import (MixedPlateDataset, PlateDataset, PlateRecord, SyntheticPlateDataset, collate_plates,
                           dataset_notes, load_dataset)
from data.synth import SyntheticPlateGenerator, write_synthetic_dataset
from data.synth.degrade import degrade
from data.text import Charset
from data.transforms import spec_transform
from models.interface import InputSpec
from training.signals import detach_loader_worker


# --------------------------------------------------------------------------- the model's input
def input_spec(dc: DataConfig, training: bool = False) -> InputSpec:
    """The input of the run's model as it reads (recorded in its ``config.json``), or with
    ``training`` as the training stream feeds it: the polarity may differ (``data.read_dark_text``)."""
    dark = dc.dark_text if training or dc.read_dark_text is None else dc.read_dark_text
    return InputSpec(dc.image_height, dc.image_width, dc.keep_aspect, dc.stretch_contrast, dark, dc.grey)


# --------------------------------------------------------------------------- fixed synthetic sets
def _synth_set_size_and_seed(dc: DataConfig, split: str) -> tuple[int, int]:
    return (dc.synth_val_size, dc.synth_val_seed) if split == "val" else (dc.synth_test_size, dc.synth_test_seed)


def synth_set_path(dc: DataConfig, split: str) -> Path:
    """Where the fixed synthetic ``split`` (val or test) set of data config ``dc`` lives."""
    n, seed = _synth_set_size_and_seed(dc, split)
    name = f"{split}_n{n}_seed{seed}_2row{dc.synth_two_row_prob:g}"
    if dc.synth_countries:
        name += "_" + "-".join(sorted(dc.synth_countries))
    return Path(dc.synth_dir) / name


def ensure_synth_set(dc: DataConfig, split: str) -> Path:
    """The fixed synthetic val/test set, written once (deterministic for its seed)."""
    path = synth_set_path(dc, split)
    if not (path / "labels.csv").is_file():
        n, seed = _synth_set_size_and_seed(dc, split)
        print(f"writing the fixed synthetic {split} set ({n} plates, seed {seed}) to {path}", flush=True)
        write_synthetic_dataset(path, n=n, seed=seed, countries=dc.synth_countries,
                                two_row_prob=dc.synth_two_row_prob, augment=degrade)
    return path


# --------------------------------------------------------------------------- records
def dataset_path(dc: DataConfig, key: str, source: str) -> Path:
    """The folder or file of config key ``key`` (``data.val``, ...) naming ``source``."""
    if source == SYNTH:
        if key == "data.train":
            raise AssertionError("synthetic training data has no path")
        return ensure_synth_set(dc, key.split(".")[1])
    path = Path(source)
    if not path.exists():
        raise ConfigError(f"{key}: dataset {source!r} not found")
    return path


def read_records(dc: DataConfig, key: str, source: str, charset: Charset, allow_mask: bool,
                 say: Callable[[str], None] = print) -> tuple[Path, list]:
    """Records of a dataset named by config key ``key``; errors name the key. Where the labels
    came from (a folder read by file names) and the rows skipped (``data.on_invalid_label:
    skip``, per reason) are said through ``say``."""
    path = dataset_path(dc, key, source)
    try:
        records, stats = load_dataset(path, charset, on_invalid_label=dc.on_invalid_label, allow_mask=allow_mask)
    except ValueError as e:
        raise ConfigError(f"{key}: {e}") from e
    for line in dataset_notes(stats, path, f"{key} ({path})"):
        say(line)
    if not records:
        raise ConfigError(f"{key}: dataset {path} has no usable rows")
    return path, records


def train_records(dc: DataConfig, charset: Charset, say: Callable[[str], None] = print) -> list[PlateRecord] | None:
    """The records of ``data.train`` (read once per run); None for the synthetic stream alone."""
    if dc.train == SYNTH:
        return None
    return read_records(dc, "data.train", dc.train, charset, allow_mask=False, say=say)[1]


# --------------------------------------------------------------------------- evaluation sets
EvalSet = tuple[str, PlateDataset]  # (name shown in tables and logs, dataset)


def eval_dataset(dc: DataConfig, key: str, source: str, charset: Charset,
                 say: Callable[[str], None] = print) -> EvalSet:
    path, records = read_records(dc, key, source, charset, allow_mask=True, say=say)
    transform = spec_transform(input_spec(dc), dc.eval_pipeline)
    name = "synth-" + key.split(".")[1] if source == SYNTH else path.name
    return name, PlateDataset(records, transform)


def eval_sets(dc: DataConfig, charset: Charset, say: Callable[[str], None] = print,
              ) -> tuple[EvalSet, list[EvalSet]]:
    """The validation set and the test sets (``data.test`` first, then ``data.extra_test``);
    ``say`` reports rows skipped."""
    val = eval_dataset(dc, "data.val", dc.val, charset, say)
    tests = [eval_dataset(dc, "data.test", dc.test, charset, say)]
    tests += [eval_dataset(dc, f"data.extra_test[{i}]", s, charset, say) for i, s in enumerate(dc.extra_test)]
    return val, tests


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on (taskset, containers)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# Set by `accelerate launch` for the processes it starts (and by nothing else we know of).
ACCELERATE_LAUNCH_MARK = "ACCELERATE_DYNAMO_BACKEND"


def cpu_threads(requested: int | None, processes_per_machine: int = 1) -> tuple[int, str]:
    """(PyTorch threads for a process on CPU, how the number was chosen): ``train.cpu_threads``;
    None: the machine's cores shared by its processes when started by ``accelerate launch`` (which
    sets OMP_NUM_THREADS=1 for a one-process CPU run: half the speed on 2 cores), else PyTorch's
    default (OMP_NUM_THREADS when set, so a side job's one thread stays one)."""
    if requested is not None:
        return requested, f"train.cpu_threads: {requested}"
    if ACCELERATE_LAUNCH_MARK in os.environ:
        cores = usable_cores()
        share = f" shared by {processes_per_machine} processes" if processes_per_machine > 1 else ""
        return (max(1, cores // max(1, processes_per_machine)),
                f"train.cpu_threads: null, the machine's {cores} cores{share} (not accelerate launch's OMP_NUM_THREADS)")
    return torch.get_num_threads(), "train.cpu_threads: null, PyTorch's default"


@dataclass(frozen=True)
class Loading:
    """How the loaders of a run read: worker processes, and pinned memory for copies to a GPU."""

    workers: int
    pin_memory: bool = False
    note: str = ""  # how the number was chosen, for the run's start-up line

    def kwargs(self) -> dict:
        """DataLoader arguments: each worker prefetches 4 batches, on one thread, outside the terminal's job."""
        return {"num_workers": self.workers, "pin_memory": self.pin_memory,
                "worker_init_fn": loader_worker_init if self.workers else None,
                "prefetch_factor": 4 if self.workers else None}

    def describe(self) -> str:
        where = (f"{self.workers} worker process{'es' if self.workers > 1 else ''}" if self.workers
                 else "in the training process")
        return f"data loading: {where} ({self.note})" if self.note else f"data loading: {where}"


def bank_note(dc: DataConfig) -> str:
    """The plate bank, for the run's start-up line: said when a synthetic stream draws from one."""
    if not dc.bank.on or (dc.train != SYNTH and dc.synth_mix <= 0):
        return ""
    return f"plate bank: each rendered plate serves {dc.bank.uses} samples (data.synth_bank_uses)"


def loader_worker_init(worker_id: int) -> None:
    detach_loader_worker(worker_id)
    cv2.setNumThreads(1)  # many workers side by side: one thread each (torch sets its own to 1)


def loading(dc: DataConfig, device_type: str, processes_per_machine: int = 1) -> Loading:
    """``data.num_workers``; -1 (auto): none on CPU, where loader processes would compete with the
    model for the same cores; on a GPU all cores but one (shared by the machine's processes), since
    rendering plates, not the GPU, is then what limits the speed."""
    pin = device_type == "cuda"
    if dc.num_workers >= 0:
        return Loading(dc.num_workers, pin, f"data.num_workers: {dc.num_workers}")
    if device_type == "cpu":
        return Loading(0, pin, "data.num_workers: -1, none on CPU")
    cores = usable_cores()
    workers = max(1, cores // max(1, processes_per_machine) - 1)
    share = f" shared by {processes_per_machine} processes" if processes_per_machine > 1 else ""
    return Loading(workers, pin, f"data.num_workers: -1, all {cores} cores but one{share}")


def eval_loader(ds: PlateDataset, batch_size: int, load: Loading) -> DataLoader:
    return DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=collate_plates, **load.kwargs())


# --------------------------------------------------------------------------- training data
def train_generator(dc: DataConfig, seed: int = 0) -> SyntheticPlateGenerator:
    return SyntheticPlateGenerator(seed=seed, countries=dc.synth_countries, two_row_prob=dc.train_two_row_prob)


def max_train_label_length(dc: DataConfig, records: list[PlateRecord] | None) -> tuple[int, str]:
    """The longest training label and where it comes from (for the model's length check)."""
    if records is None:
        return train_generator(dc).max_label_length, "the synthetic generator"
    real = max(len(r.text) for r in records), f"data.train ({dc.train})"
    if dc.synth_mix > 0:
        return max(real, (train_generator(dc).max_label_length, "the synthetic generator (data.synth_mix)"))
    return real


@dataclass
class TrainData:
    dataset: PlateDataset | SyntheticPlateDataset | MixedPlateDataset
    loader: DataLoader
    # True: a map-style loader for accelerator.prepare (Accelerate shards and shuffles it per
    # epoch). False: a stream every process generates for itself (sharded by rank and worker).
    prepared: bool


def train_data(dc: DataConfig, records: list[PlateRecord] | None, *, batch_size: int, samples_per_step: int,
               seed: int, start_step: int, rank: int, world_size: int, load: Loading) -> TrainData:
    """The training data of one process: the synthetic stream (``records`` None), real crops
    (``records``), or real crops interleaved with the stream (``data.synth_mix``).

    ``samples_per_step`` (batch size times gradient accumulation) and ``start_step`` place the
    synthetic effects' ramp (``data.synth_effects_ramp_steps``) in samples of this process."""
    def make_transform():
        return spec_transform(input_spec(dc, training=True), dc.train_pipeline, dc.camera)

    transform = make_transform()

    def synth_stream() -> SyntheticPlateDataset:
        ramp = (dc.synth_effects_ramp_steps * samples_per_step, start_step * samples_per_step)
        # its own transform: the ramp's share of camera effects must not reach real crops of a mix
        return SyntheticPlateDataset(make_transform(), seed=seed, countries=dc.synth_countries,
                                     two_row_prob=dc.train_two_row_prob, effects=dc.effects,
                                     effects_ramp=ramp, country_weights=dc.synth_country_weights,
                                     rank=rank, world_size=world_size, bank=dc.bank)

    def stream_loader(stream) -> DataLoader:
        return DataLoader(stream, batch_size=batch_size, collate_fn=collate_plates,
                          persistent_workers=load.workers > 0, **load.kwargs())

    if records is None:  # every process generates its own stream
        ds = synth_stream()
        return TrainData(ds, stream_loader(ds), prepared=False)
    ds = PlateDataset(records, transform)
    if dc.synth_mix > 0:  # real crops in shuffled passes, interleaved with the synthetic stream
        ds = MixedPlateDataset(ds, synth_stream(), dc.synth_mix, seed=seed, rank=rank, world_size=world_size)
        return TrainData(ds, stream_loader(ds), prepared=False)
    if len(records) < batch_size * world_size:  # drop_last would leave no batch: training would wait forever
        each = f" on each of {world_size} processes" if world_size > 1 else ""
        raise ConfigError(f"data.train has {len(records)} plates, fewer than one batch of train.batch_size="
                          f"{batch_size}{each}: lower train.batch_size, or add plates (or data.synth_mix)")
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, drop_last=True, collate_fn=collate_plates,
                        persistent_workers=load.workers > 0, **load.kwargs())
    return TrainData(ds, loader, prepared=True)
