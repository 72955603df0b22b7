"""Typed config sections, built by ``common.strict.build_dataclass``.

Every key is checked on load: an unknown key, a value of the wrong type, or a
value out of range is an error that names the key (``train.lr``,
``model.backbone``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common.strict import ConfigError, build_dataclass  # noqa: F401  (re-exported)
from data.synth.bank import BankSpec
from data.synth.effects import SynthEffects
from data.synth.generator import resolve_countries, resolve_country_weights
from data.text import DEFAULT_CHARSET, Charset
from data.camera_effects import check_camera_effects

SYNTH = "synth"  # a data source name meaning "the embedded synthetic generator"
# What picks best/ on the val set. country_accuracy needs a model with a country head and val
# data with country labels (e.g. when only the head trains: train.trainable=[class_head]).
BEST_METRICS = {"exact_match": "max", "cer": "min", "mean_edit_distance": "min", "country_accuracy": "max"}


def _positive(section: str, obj: Any, *keys: str) -> None:
    for k in keys:
        if getattr(obj, k) <= 0:
            raise ConfigError(f"{section}.{k} must be > 0, got {getattr(obj, k)}")


@dataclass
class DataConfig:
    charset: str = DEFAULT_CHARSET
    image_height: int = 32
    image_width: int = 160
    keep_aspect: bool = False  # letterbox instead of stretching to the input size
    stretch_contrast: bool = False  # every image's luma 1st-99th percentile stretched to 0-255 (train and read)
    dark_text: bool = False  # every image inverted where its characters are light: one polarity (train and read)
    grey: bool = False  # every image turned to its luma (in all three channels): no colour (train and read)
    # How the trained model reads: every crop turned to dark characters (true) or as given (false),
    # whatever training saw; None: as dark_text. Recorded as input.dark_text in config.json.
    read_dark_text: bool | None = None
    # Sources: "synth" or a dataset path (folder with labels.csv, a CSV, or a folder of
    # crops named by their text). For val/test, "synth" means the fixed generated sets.
    train: str = SYNTH
    val: str = SYNTH
    test: str = SYNTH
    extra_test: list[str] = field(default_factory=list)  # more test sets, e.g. real crops
    synth_countries: list[str] | None = None  # None: all 27
    # Sampling weights of the training stream's countries ({code: weight}, others 1), e.g.
    # {US: 4} for a reader mostly of US plates. The fixed val/test sets stay uniform.
    synth_country_weights: dict | None = None
    synth_two_row_prob: float = 0.15  # share of two-row plates in the fixed val/test sets
    synth_train_two_row_prob: float | None = None  # in the training stream; None: as synth_two_row_prob
    # With data.train a dataset path: share of each training batch drawn from the synthetic
    # generator (0: real crops only). Keeps a fine-tuned model reading what it read before.
    synth_mix: float = 0.0
    synth_dir: str = "datasets/synth"  # where the fixed synthetic val/test sets are written
    synth_val_size: int = 1000
    synth_test_size: int = 2000
    synth_val_seed: int = 1
    synth_test_seed: int = 2
    train_pipeline: str = "train"
    eval_pipeline: str = "eval"
    # Realism effects of the synthetic training stream ({effect: probability}, see
    # data.synth.effects); the fixed val/test sets never get them. None: all off.
    synth_effects: dict | None = None
    # Steps over which the share of plates with those effects and with the camera effects below
    # grows from 0 to all (clean plates first: with every effect on from step 0 a short run
    # learns much more slowly). 0: all from the start.
    synth_effects_ramp_steps: int = 0
    # Camera effects added to the training pipeline ({effect: probability}, see
    # data.camera_effects.CAMERA_EFFECTS). None: none beyond the base augmentation.
    # (Called data.capture_effects before; the old key still loads, with a warning.)
    camera_effects: dict | None = None
    # The plate bank of the synthetic training stream (data/synth/bank.py): each rendered plate
    # serves synth_bank_uses samples (each through its own augmentation), drawn at random from
    # synth_bank_size plates per loader process. 1: off, a fresh plate per sample (the default
    # until its accuracy per sample is measured against the plain stream, docs/experiments.md).
    synth_bank_uses: int = 1
    synth_bank_size: int = 512
    on_invalid_label: str = "error"  # or "skip": drop and count such rows
    # Loader processes; -1: none on CPU (2 cores render faster inline), all cores but one on a GPU.
    num_workers: int = -1

    @property
    def train_two_row_prob(self) -> float:
        p = self.synth_train_two_row_prob
        return self.synth_two_row_prob if p is None else p

    @property
    def effects(self) -> SynthEffects:
        """``data.synth_effects`` as a ``data.synth.effects.SynthEffects``."""
        return SynthEffects.from_mapping(self.synth_effects)

    @property
    def bank(self) -> BankSpec:
        """``data.synth_bank_size`` and ``synth_bank_uses`` as a ``data.synth.bank.BankSpec``."""
        return BankSpec(size=self.synth_bank_size, uses=self.synth_bank_uses)

    @property
    def camera(self) -> dict[str, float]:
        """``data.camera_effects``, validated: {effect: probability}."""
        return check_camera_effects(self.camera_effects)

    def __post_init__(self) -> None:
        try:
            self.effects  # noqa: B018 -- validates the mapping
            self.camera  # noqa: B018
        except ValueError as e:
            raise ConfigError(str(e)) from e
        try:
            self.bank  # noqa: B018
        except ValueError as e:
            raise ConfigError(f"data.{e}") from e
        try:
            Charset(self.charset)
        except ValueError as e:
            raise ConfigError(f"data.charset: {e}") from e
        _positive("data", self, "image_height", "image_width", "synth_val_size", "synth_test_size")
        if not 0.0 <= self.synth_two_row_prob <= 1.0:
            raise ConfigError(f"data.synth_two_row_prob must be in [0, 1], got {self.synth_two_row_prob}")
        if self.synth_train_two_row_prob is not None and not 0.0 <= self.synth_train_two_row_prob <= 1.0:
            raise ConfigError(
                f"data.synth_train_two_row_prob must be in [0, 1], got {self.synth_train_two_row_prob}")
        if not 0.0 <= self.synth_mix < 1.0:
            raise ConfigError(f"data.synth_mix must be in [0, 1) (the synthetic share of each batch), "
                              f"got {self.synth_mix}")
        if self.synth_mix > 0 and self.train == SYNTH:
            raise ConfigError("data.synth_mix mixes synthetic plates into a real training set; it needs "
                              f"data.train to be a dataset path, not {SYNTH!r}")
        if self.synth_effects_ramp_steps < 0:
            raise ConfigError(f"data.synth_effects_ramp_steps must be >= 0, got {self.synth_effects_ramp_steps}")
        if self.on_invalid_label not in ("error", "skip"):
            raise ConfigError(f"data.on_invalid_label must be 'error' or 'skip', got {self.on_invalid_label!r}")
        if self.num_workers < -1:
            raise ConfigError(f"data.num_workers must be >= 0, or -1 for automatic, got {self.num_workers}")
        try:  # the generator's countries, not any code a dataset may carry
            countries = resolve_countries(self.synth_countries)
        except ValueError as e:
            raise ConfigError(f"data.synth_countries: {e}") from e
        if self.synth_country_weights:
            try:
                resolve_country_weights(countries, self.synth_country_weights)
            except ValueError as e:
                raise ConfigError(f"data.synth_country_weights: {e}") from e


@dataclass
class TrainConfig:
    seed: int = 42
    batch_size: int = 64  # per process
    eval_batch_size: int = 256
    max_steps: int = 6000  # optimiser steps
    time_limit_minutes: float | None = None  # stop early (then evaluate) after this long
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 300
    grad_clip: float = 5.0  # max gradient norm; 0 disables
    grad_accum_steps: int = 1
    # None: Accelerate's launch config decides; "no", "fp16", "bf16"; "auto": bf16 where the device
    # computes it natively, else no (training.trainer.mixed_precision). YAML 1.1 reads a bare `no`
    # as false: taken as "no", so `mixed_precision: no` and `train.mixed_precision=no` work.
    mixed_precision: str | bool | None = None
    eval_every: int = 1000
    checkpoint_every: int = 1000
    # Also a checkpoint when this long has passed since the last one, so that a kill loses at
    # most this much (Ctrl-C and SIGTERM save one anyway). 0 or null: by steps only.
    checkpoint_minutes: float | None = 10
    log_every: int = 50
    best_metric: str = "exact_match"
    output_dir: str | None = None  # None: runs/<arch>/<timestamp>
    # A trained model folder (config.json + model.safetensors) to start from: fine-tuning. Its
    # arch and charset must match the run's; its model options and input size are the run's.
    # Optimiser and schedule start fresh (unlike --resume). Shortcut: --init-from FOLDER.
    init_from: str | None = None
    # Model options that replace the init model's in a fine-tune (as model.* on the command line
    # do; the command line wins): e.g. {length_loss_weight: 0.5} adds a length head to a model
    # trained without one. None: the init model's options as they are.
    init_model_options: dict | None = None
    trackers: list[str] = field(default_factory=lambda: ["tensorboard"])
    # Exponential moving average of the weights (timm's ModelEmaV3, decay warmed up from 0):
    # validation, best/ and last/ use the average. None: the raw weights.
    ema_decay: float | None = None
    # Train only the parts named here (module names such as class_head, or decoder.layers.1);
    # the rest keep their weights and run in eval mode (BatchNorm statistics and dropout fixed).
    # [class_head] with --init-from adds a country/rows head to a trained reader without
    # changing what it reads. None: everything trains.
    trainable: list[str] | None = None
    # PyTorch threads of each process on CPU. None: OMP_NUM_THREADS or PyTorch's default, except
    # under `accelerate launch`, which sets OMP_NUM_THREADS=1 for a one-process CPU run: then the
    # machine's cores shared by its processes (training.data.cpu_threads).
    cpu_threads: int | None = None
    # Convolution weights (and so activations) in NHWC order while training: oneDNN on CPU and
    # cuDNN on GPU run convolutions faster that way. The saved weights are the same either way.
    channels_last: bool = True

    def __post_init__(self) -> None:
        if self.cpu_threads is not None and (isinstance(self.cpu_threads, bool) or not isinstance(self.cpu_threads, int)
                                             or self.cpu_threads < 1):
            raise ConfigError(f"train.cpu_threads must be a positive number of threads, or null, got {self.cpu_threads!r}")
        if self.init_model_options is not None and not isinstance(self.init_model_options, dict):
            raise ConfigError(f"train.init_model_options must be a mapping of model options "
                              f"(e.g. {{length_loss_weight: 0.5}}), or null, got {self.init_model_options!r}")
        if self.trainable is not None and (
                not isinstance(self.trainable, list) or not self.trainable
                or not all(isinstance(t, str) and t.strip() for t in self.trainable)):
            raise ConfigError(f"train.trainable must be a non-empty list of module names (e.g. [class_head]), "
                              f"or null, got {self.trainable!r}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ConfigError(f"train.ema_decay must be in (0, 1) (e.g. 0.999), or null, got {self.ema_decay}")
        _positive("train", self, "batch_size", "eval_batch_size", "max_steps", "lr",
                  "grad_accum_steps", "eval_every", "checkpoint_every", "log_every")
        if self.checkpoint_minutes is not None and self.checkpoint_minutes < 0:
            raise ConfigError(f"train.checkpoint_minutes must be > 0 (minutes between checkpoints), or 0 or null "
                              f"for checkpoints by steps only, got {self.checkpoint_minutes}")
        if self.mixed_precision is False:
            self.mixed_precision = "no"
        if self.mixed_precision not in (None, "no", "fp16", "bf16", "auto"):
            raise ConfigError(f"train.mixed_precision must be no, fp16, bf16 or auto, got {self.mixed_precision!r}")
        if self.best_metric not in BEST_METRICS:
            raise ConfigError(f"train.best_metric must be one of {', '.join(BEST_METRICS)}, got {self.best_metric!r}")
        if self.warmup_steps < 0 or self.weight_decay < 0 or self.grad_clip < 0:
            raise ConfigError("train.warmup_steps, train.weight_decay and train.grad_clip must be >= 0")
