"""Train a plate reader with Hugging Face Accelerate.

    accelerate launch train_accelerate.py --arch crnn [--config FILE] [section.key=value ...]
    python train_accelerate.py --arch crnn train.max_steps=200
    accelerate launch train_accelerate.py --resume runs/crnn/20261123-101500

One process or many (multi-GPU, multi-node, or CPU processes under torchrun):
Accelerate places the model, shards map-style data, syncs gradients and
handles mixed precision and gradient accumulation. Synthetic training data is
generated independently on every process (seeded by rank and worker).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, broadcast_object_list, set_seed
from timm.utils import ModelEmaV3
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from configs import SYNTH, Config, ConfigError, load_config
from configs.schema import BEST_METRICS
from data.datasets import MixedPlateDataset, PlateDataset, SyntheticPlateDataset, collate_plates, load_records
from data.synth import SyntheticPlateGenerator, write_synthetic_dataset
from data.synth.capture import capture_effects
from data.files import swap_into_place
from data.text import Charset
from data.transforms import build_transform
from evaluation import evaluate
from metrics import format_metrics_table
from models import InputSpec, PlateRecognizer, build_model_config, create_model, load_model
from models.backbones import grown_blocks
from models.heads import has_country_labels

RUN_CONFIG = "config.yaml"
CHECKPOINT_DIR = "checkpoint"
BEST_DIR, LAST_DIR = "best", "last"
LOG_FILE = "log.jsonl"
TEST_METRICS = "test_metrics.json"


# --------------------------------------------------------------------------- data
def synth_set_path(cfg: Config, split: str) -> Path:
    d = cfg.data
    n, seed = (d.synth_val_size, d.synth_val_seed) if split == "val" else (d.synth_test_size, d.synth_test_seed)
    name = f"{split}_n{n}_seed{seed}_2row{d.synth_two_row_prob:g}"
    if d.synth_countries:
        name += "_" + "-".join(sorted(d.synth_countries))
    return Path(d.synth_dir) / name


def ensure_synth_set(cfg: Config, split: str) -> Path:
    """The fixed synthetic val/test set, written once (deterministic for its seed)."""
    path = synth_set_path(cfg, split)
    if not (path / "labels.csv").is_file():
        d = cfg.data
        n, seed = (d.synth_val_size, d.synth_val_seed) if split == "val" else (d.synth_test_size, d.synth_test_seed)
        print(f"writing the fixed synthetic {split} set ({n} plates, seed {seed}) to {path}", flush=True)
        write_synthetic_dataset(path, n=n, seed=seed, countries=d.synth_countries,
                                two_row_prob=d.synth_two_row_prob, augment=capture_effects)
    return path


def resolve_source(cfg: Config, key: str, source: str) -> Path:
    if source == SYNTH:
        if key == "data.train":
            raise AssertionError("synthetic training data has no path")
        return ensure_synth_set(cfg, key.split(".")[1])
    path = Path(source)
    if not path.exists():
        raise ConfigError(f"{key}: dataset {source!r} not found")
    return path


def file_records(cfg: Config, key: str, source: str, charset: Charset, allow_mask: bool) -> tuple[Path, list]:
    """Records of a dataset named by config key ``key``; errors name the key."""
    path = resolve_source(cfg, key, source)
    try:
        records = load_records(path, charset, on_invalid_label=cfg.data.on_invalid_label, allow_mask=allow_mask)
    except ValueError as e:
        raise ConfigError(f"{key}: {e}") from e
    if not records:
        raise ConfigError(f"{key}: dataset {path} has no usable rows")
    return path, records


def eval_dataset(cfg: Config, key: str, source: str, charset: Charset) -> tuple[str, PlateDataset]:
    path, records = file_records(cfg, key, source, charset, allow_mask=True)
    transform = build_transform(cfg.data.eval_pipeline, cfg.data.image_height, cfg.data.image_width,
                                cfg.data.keep_aspect)
    name = "synth-" + key.split(".")[1] if source == SYNTH else path.name
    return name, PlateDataset(records, transform)


def max_train_label_length(cfg: Config, train_ds) -> tuple[int, str]:
    if cfg.data.train == SYNTH:
        gen = SyntheticPlateGenerator(seed=0, countries=cfg.data.synth_countries,
                                      two_row_prob=cfg.data.train_two_row_prob)
        return gen.max_label_length, "the synthetic generator"
    records = getattr(train_ds, "real", train_ds).records  # a MixedPlateDataset's real part
    real = max(len(r.text) for r in records), f"data.train ({cfg.data.train})"
    if cfg.data.synth_mix > 0:
        gen = SyntheticPlateGenerator(seed=0, countries=cfg.data.synth_countries,
                                      two_row_prob=cfg.data.train_two_row_prob)
        return max(real, (gen.max_label_length, "the synthetic generator (data.synth_mix)"))
    return real


def model_options(cfg: Config, charset: Charset) -> dict:
    """The model section, with ``country_head: null`` resolved: on when the training data has
    country labels (the synthetic generator always has). The run's config.yaml keeps null;
    the saved model folders say what was built."""
    options = dataclasses.asdict(cfg.model)
    if "country_head" in options and options["country_head"] is None:
        if cfg.data.train == SYNTH:
            options["country_head"] = True
        else:
            _, records = file_records(cfg, "data.train", cfg.data.train, charset, allow_mask=False)
            options["country_head"] = has_country_labels([r.country for r in records])
    return options


def loader_workers(cfg: Config, accelerator: Accelerator) -> int:
    if cfg.data.num_workers >= 0:
        return cfg.data.num_workers
    # On CPU the loader would compete with the model for the same cores.
    return 0 if accelerator.device.type == "cpu" else 4


def build_train_data(cfg: Config, charset: Charset, accelerator: Accelerator, seed: int, start_step: int = 0):
    bs = cfg.train.batch_size * cfg.train.grad_accum_steps
    ramp = (cfg.data.synth_effects_ramp_steps * bs, start_step * bs)  # in samples of this process
    transform = build_transform(cfg.data.train_pipeline, cfg.data.image_height, cfg.data.image_width,
                                cfg.data.keep_aspect, cfg.data.capture)
    workers = loader_workers(cfg, accelerator)
    rank, world = accelerator.process_index, accelerator.num_processes

    def synth_stream() -> SyntheticPlateDataset:
        return SyntheticPlateDataset(transform, seed=seed, countries=cfg.data.synth_countries,
                                     two_row_prob=cfg.data.train_two_row_prob, effects=cfg.data.effects,
                                     effects_ramp=ramp, country_weights=cfg.data.synth_country_weights,
                                     rank=rank, world_size=world)

    def stream_loader(stream) -> DataLoader:
        # Not passed to accelerator.prepare: streams are sharded by rank and worker inside the dataset.
        return DataLoader(stream, batch_size=cfg.train.batch_size, num_workers=workers,
                          collate_fn=collate_plates, persistent_workers=workers > 0,
                          prefetch_factor=4 if workers > 0 else None)

    if cfg.data.train == SYNTH:  # every process generates its own stream
        ds = synth_stream()
        return ds, stream_loader(ds), False
    _, records = file_records(cfg, "data.train", cfg.data.train, charset, allow_mask=False)
    ds = PlateDataset(records, transform)
    if cfg.data.synth_mix > 0:  # real crops in shuffled passes, interleaved with the synthetic stream
        ds = MixedPlateDataset(ds, synth_stream(), cfg.data.synth_mix, seed=seed, rank=rank, world_size=world)
        return ds, stream_loader(ds), False
    loader = DataLoader(ds, batch_size=cfg.train.batch_size, shuffle=True, drop_last=True,
                        num_workers=workers, collate_fn=collate_plates, persistent_workers=workers > 0)
    return ds, loader, True


def eval_loader(cfg: Config, ds, workers: int) -> DataLoader:
    return DataLoader(ds, batch_size=cfg.train.eval_batch_size, shuffle=False,
                      num_workers=workers, collate_fn=collate_plates)


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


def is_better(metric: str, value: float, best: float | None) -> bool:
    if best is None or math.isnan(best):
        return not math.isnan(value)
    return value > best if BEST_METRICS[metric] == "max" else value < best


def best_metric_value(results: dict, metric: str) -> float:
    return results["country"]["accuracy"] if metric == "country_accuracy" else results["overall"][metric]


def save_checkpoint(accelerator: Accelerator, run_dir: Path) -> None:
    """Accelerate state (model, optimiser, scheduler, RNG, RunState), swapped in atomically."""
    final, tmp = run_dir / CHECKPOINT_DIR, run_dir / f"{CHECKPOINT_DIR}.tmp"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        swap_into_place(tmp, final)
    accelerator.wait_for_everyone()


def lr_lambda(warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


def new_run_dir(cfg: Config) -> Path:
    if cfg.train.output_dir:
        return Path(cfg.train.output_dir)
    return Path("runs") / cfg.arch / time.strftime("%Y%m%d-%H%M%S")


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", help="model architecture (crnn, ...); default from the config")
    p.add_argument("--config", help="YAML config (default configs/<arch>.yaml)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint")
    p.add_argument("--output-dir", help="run folder (default runs/<arch>/<timestamp>)")
    p.add_argument("--init-from", metavar="MODEL_DIR",
                   help="fine-tune: start from the weights of a trained model folder (sets train.init_from); "
                        "its model options and input size are the run's; optimiser and schedule start fresh")
    p.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"],
                   help="overrides train.mixed_precision and Accelerate's launch config")
    p.add_argument("overrides", nargs="*", metavar="section.key=value", help="config overrides")
    return p.parse_args(argv)


def resolve_config(args: argparse.Namespace) -> tuple[Config, Path]:
    overrides = list(args.overrides)
    if args.mixed_precision:
        overrides.append(f"train.mixed_precision={args.mixed_precision}")
    if args.resume and args.init_from:
        raise ConfigError("--init-from starts a new run from a model's weights; --resume continues a run "
                          "(a fine-tune run resumes from its own checkpoint): give one of them")
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / RUN_CONFIG).is_file() or not (run_dir / CHECKPOINT_DIR).is_dir():
            raise ConfigError(f"--resume {run_dir}: no {RUN_CONFIG} and {CHECKPOINT_DIR}/ in that folder")
        cfg = load_config(args.arch, run_dir / RUN_CONFIG, overrides)
        return cfg, run_dir
    if args.arch is None and args.config is None:
        raise ConfigError("give --arch (e.g. --arch crnn) or --config FILE")
    if args.output_dir:
        overrides.append(f"train.output_dir={args.output_dir}")
    if args.init_from:
        overrides.append(f"train.init_from={json.dumps(args.init_from)}")
    cfg = load_config(args.arch, args.config, overrides)
    if cfg.train.init_from:
        cfg = apply_init_from(cfg, overrides)
    return cfg, new_run_dir(cfg)


INIT_INPUT_KEYS = {"image_height": "height", "image_width": "width", "keep_aspect": "keep_aspect"}


def apply_init_from(cfg: Config, overrides: list[str]) -> Config:
    """A fine-tune's config: the model section and input size of the ``train.init_from`` model.

    The model's arch and charset must be the run's. Its model options and input size
    (``data.image_height``, ``image_width``, ``keep_aspect``) replace the config file's (the
    replaced values are printed); a ``model.*`` or ``data.image_*`` override on the command line
    is kept, and the run stops at start if the weights do not fit the model it describes.
    Not used on --resume: the run's config.yaml already holds the result.
    """
    where = f"--init-from {cfg.train.init_from} (train.init_from)"
    try:
        init = load_model(cfg.train.init_from, expected_charset=Charset(cfg.data.charset), expected_arch=cfg.arch)
    except ValueError as e:
        raise ConfigError(f"{where}: {e}; a fine-tune starts from a model of the run's arch (--arch, --config) "
                          f"and charset (data.charset)") from e
    given = {o.partition("=")[0].strip() for o in overrides}
    model_opts = dataclasses.asdict(init.config)
    inputs = {k: getattr(init.input_spec, v) for k, v in INIT_INPUT_KEYS.items()}
    replaced = []
    for section, values, current in (("model", model_opts, dataclasses.asdict(cfg.model)),
                                     ("data", inputs, {k: getattr(cfg.data, k) for k in INIT_INPUT_KEYS})):
        for k in values:
            if f"{section}.{k}" in given:
                values[k] = current[k]
            elif current.get(k) != values[k]:
                replaced.append(f"{section}.{k}={current.get(k)!r} -> {values[k]!r}")
    if replaced and int(os.environ.get("RANK", "0")) == 0:
        print(f"{where}: model options and input size from the model folder; replaced "
              f"{', '.join(replaced)}", flush=True)
    return dataclasses.replace(cfg, model=build_model_config(cfg.arch, model_opts),
                               data=dataclasses.replace(cfg.data, **inputs))


# The country/rows head: an init model without one (or with another shape of head, e.g. other
# model.cls_head_layers) gives the run a fresh head; a run with model.country_head=false drops it.
CLASS_HEAD_PREFIX = "class_head."


def load_init_weights(model: PlateRecognizer, source: str) -> dict:
    """Copy the weights of model folder ``source`` into ``model`` (which apply_init_from configured).

    A deeper backbone of the same family (``model.encoder=resnet34`` from a resnet18 model) keeps
    the source's blocks and starts its extra ones as the identity (``grown_blocks``)."""
    weights = model.weights_from(load_model(source))
    own = model.state_dict()
    grown = grown_blocks(own, weights)
    weights |= grown
    missing = [k for k in own if k not in weights]
    unused = [k for k in weights if k not in own]
    if all(k.startswith(CLASS_HEAD_PREFIX) for k in missing + unused):
        # A head that does not fit (none in the init model, or another shape of head) starts
        # fresh as a whole; one the run does not want is dropped.
        fresh = {k: v for k, v in own.items() if k.startswith(CLASS_HEAD_PREFIX)} if missing else {}
        weights = {k: v for k, v in weights.items() if k in own} | fresh
    try:
        model.load_state_dict(weights)
    except (ValueError, RuntimeError) as e:
        raise ConfigError(f"--init-from {source} (train.init_from): its weights do not fit the configured "
                          f"model (a model.* or data.image_* override changed its shape): {str(e)[:500]}") from e
    digest = hashlib.sha256((Path(source) / "model.safetensors").read_bytes()).hexdigest()
    head = "fresh" if missing else "dropped" if unused else "copied"
    return {"step": 0, "init_from": str(source), "init_sha256": digest, "init_class_head": head,
            "init_grown_blocks": sorted({k.rsplit(".", 2)[0] for k in grown})}


def freeze_all_but(model: torch.nn.Module, trainable: list[str]) -> list[torch.nn.Module]:
    """Freeze every parameter outside the modules named in ``trainable`` (train.trainable).

    Returns the frozen modules (the largest ones with nothing trainable inside), which the
    training loop keeps in eval mode so that their BatchNorm statistics and dropout stay fixed.
    """
    def owners(name: str) -> list[str]:
        return [t for t in trainable if name == t or name.startswith(t + ".")]

    used = set()
    for name, param in model.named_parameters():
        param.requires_grad_(bool(hits := owners(name)))
        used.update(hits)
    if unknown := [t for t in trainable if t not in used]:
        parts = ", ".join(n for n, _ in model.named_children())
        raise ConfigError(f"train.trainable: {', '.join(map(repr, unknown))} names no part of the model "
                          f"with weights; its parts: {parts}")
    frozen = []

    def visit(prefix: str, module: torch.nn.Module) -> None:
        for name, child in module.named_children():
            full = prefix + name
            if owners(full):
                continue
            if any(t.startswith(full + ".") for t in trainable):
                visit(full + ".", child)
            else:
                frozen.append(child)

    visit("", model)
    return frozen


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    cfg, run_dir = resolve_config(args)
    tc, dc = cfg.train, cfg.data

    kwargs = {}
    if tc.mixed_precision is not None:
        kwargs["mixed_precision"] = tc.mixed_precision
    trackers = [t for t in tc.trackers if t]
    accelerator = Accelerator(
        gradient_accumulation_steps=tc.grad_accum_steps,
        log_with=trackers or None,
        project_config=ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(run_dir / "tb")),
        **kwargs,
    )
    # Every process must agree on the run folder (timestamps may differ by a second).
    run_dir = Path(broadcast_object_list([str(run_dir)])[0])
    main_proc = accelerator.is_main_process
    set_seed(tc.seed, device_specific=True)
    charset = Charset(dc.charset)

    # Data first: bad input is reported before any model is built or step taken.
    with accelerator.main_process_first():
        val_sets = [eval_dataset(cfg, "data.val", dc.val, charset)]
        test_sets = [eval_dataset(cfg, "data.test", dc.test, charset)]
        test_sets += [eval_dataset(cfg, f"data.extra_test[{i}]", s, charset) for i, s in enumerate(dc.extra_test)]
    state = RunState()
    try:
        model = create_model(cfg.arch, model_options(cfg, charset), charset,
                             InputSpec(dc.image_height, dc.image_width, dc.keep_aspect))
    except ValueError as e:
        raise ConfigError(str(e)) from e
    init_info = None
    if tc.init_from and not args.resume:  # a resumed fine-tune continues from its own checkpoint
        init_info = load_init_weights(model, tc.init_from)
    frozen = freeze_all_but(model, tc.trainable) if tc.trainable else []
    if tc.best_metric == "country_accuracy":
        if getattr(model, "class_head", None) is None:
            raise ConfigError("train.best_metric=country_accuracy: the model has no country head (model.country_head)")
        if not has_country_labels([r.country for r in val_sets[0][1].records]):
            raise ConfigError(f"train.best_metric=country_accuracy: data.val ({dc.val}) has no country labels")

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=tc.lr,
                                  weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(tc.warmup_steps, tc.max_steps))
    val_loader = eval_loader(cfg, val_sets[0][1], loader_workers(cfg, accelerator))
    model, optimizer, val_loader = accelerator.prepare(model, optimizer, val_loader)
    accelerator.register_for_checkpointing(scheduler, state)
    ema = None
    if tc.ema_decay is not None:  # every process holds the same average (the weights are in sync)
        ema = ModelEmaV3(accelerator.unwrap_model(model), decay=tc.ema_decay, use_warmup=True)
        accelerator.register_for_checkpointing(ema)

    if args.resume:
        accelerator.load_state(str(run_dir / CHECKPOINT_DIR))
        accelerator.print(f"resumed {run_dir} at step {state.step}")
    if main_proc:  # on resume too: overrides such as a larger train.max_steps belong to the run
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = run_dir / f"{RUN_CONFIG}.tmp"
        tmp.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        os.replace(tmp, run_dir / RUN_CONFIG)
    accelerator.wait_for_everyone()

    # A resumed synthetic stream continues from a seed tied to the step, not from the start.
    train_ds, train_loader, prepared = build_train_data(cfg, charset, accelerator, seed=tc.seed + 7919 * state.step,
                                                        start_step=state.step)
    net: PlateRecognizer = accelerator.unwrap_model(model)
    scored: PlateRecognizer = ema.module if ema is not None else net  # what is validated and saved
    try:
        net.check_label_length(*max_train_label_length(cfg, train_ds))
        for name, ds in val_sets + test_sets:
            net.check_label_length(max(len(r.text) for r in ds.records), name)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    if prepared:
        train_loader = accelerator.prepare(train_loader)

    if trackers:
        accelerator.init_trackers("train", config=flatten(cfg.to_dict()))
    log_file = (run_dir / LOG_FILE).open("a") if main_proc else None

    def log(record: dict) -> None:
        accelerator.log({k: v for k, v in record.items() if isinstance(v, (int, float))}, step=state.step)
        if log_file is not None:
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()

    if init_info is not None:
        log(init_info)
        accelerator.print(f"initialised from {tc.init_from} (sha256 {init_info['init_sha256'][:12]}); "
                          "fresh optimiser and learning-rate schedule"
                          + {"fresh": "; the country/rows head starts fresh (the init model has none, "
                                      "or one of another shape)",
                             "dropped": "; the init model's country/rows head is not used"}.get(
                              init_info["init_class_head"], ""))
        if init_info["init_grown_blocks"]:
            accelerator.print(f"blocks the init model does not have start as the identity: "
                              f"{', '.join(init_info['init_grown_blocks'])}")
    accelerator.print(
        f"{cfg.arch}: {net.num_parameters() / 1e6:.2f}M parameters, input {dc.image_height}x{dc.image_width}, "
        f"{accelerator.num_processes} process(es) on {accelerator.device}, mixed precision {accelerator.mixed_precision}; "
        f"run folder {run_dir}"
        + (f"; validated and saved: the weights' moving average (decay {tc.ema_decay})" if ema is not None else "")
        + (f"; training only {', '.join(tc.trainable)} ({net.num_parameters(trainable_only=True) / 1e6:.2f}M "
           "parameters), the rest frozen" if frozen else "")
    )
    batches = iterate_forever(train_loader, prepared, accelerator, start_step=state.step * tc.grad_accum_steps)
    model.train()
    progress = tqdm(total=tc.max_steps, initial=state.step, desc="train", disable=not main_proc,
                    dynamic_ncols=True, mininterval=1 if sys.stderr.isatty() else 30)
    t_start, time_at_start = time.time(), state.train_seconds
    loss_sum, loss_n, stop = 0.0, 0, False
    while state.step < tc.max_steps and not stop:
        batch = next(batches)
        for m in frozen:  # model.train() (here and after each validation) would switch them back
            m.eval()
        if not prepared:
            batch["images"] = batch["images"].to(accelerator.device, non_blocking=True)
        with accelerator.accumulate(model):
            outputs = model(batch["images"], batch["texts"], batch["lines"])
            loss = net.loss(outputs, batch)
            accelerator.backward(loss)
            if accelerator.sync_gradients and tc.grad_clip > 0:
                accelerator.clip_grad_norm_(model.parameters(), tc.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        loss_sum += loss.item()
        loss_n += 1
        if not accelerator.sync_gradients:
            continue
        scheduler.step()
        state.step += 1
        if ema is not None:
            ema.update(net, step=state.step)
        state.train_seconds = time_at_start + time.time() - t_start
        progress.update(1)
        if state.step % tc.log_every == 0:
            avg = loss_sum / max(1, loss_n)
            progress.set_postfix(loss=f"{avg:.3f}")
            log({"step": state.step, "loss": avg, "lr": scheduler.get_last_lr()[0], "time_s": round(state.train_seconds, 1)})
            loss_sum, loss_n = 0.0, 0
        if tc.time_limit_minutes is not None and state.step % 10 == 0:
            stop = broadcast_object_list([state.train_seconds > 60 * tc.time_limit_minutes])[0]
        last = state.step >= tc.max_steps or stop
        if state.step % tc.eval_every == 0 or last:
            results = evaluate(model if ema is None else scored, val_loader, accelerator, desc="val").metrics
            value = best_metric_value(results, tc.best_metric)
            log({"step": state.step, **{f"val/{k}": v for k, v in results["overall"].items()},
                 **{f"val/{k}_accuracy": results[k]["accuracy"] for k in ("country", "rows") if k in results}})
            progress.write(f"step {state.step}: val exact match {results['overall']['exact_match']:.4f}, "
                           f"CER {results['overall']['cer']:.4f}")
            if is_better(tc.best_metric, value, state.best):
                state.best = value
                if main_proc:
                    scored.save_pretrained(run_dir / BEST_DIR)
        if state.step % tc.checkpoint_every == 0 or last:
            if main_proc:
                scored.save_pretrained(run_dir / LAST_DIR)
            save_checkpoint(accelerator, run_dir)
    progress.close()
    accelerator.wait_for_everyone()

    # Final test with the best model.
    best = load_model(run_dir / BEST_DIR, expected_charset=charset).to(accelerator.device)
    report = {"arch": cfg.arch, "steps": state.step, "train_seconds": round(state.train_seconds, 1),
              "best_val": {tc.best_metric: state.best}, "num_parameters": best.num_parameters(), "test": {}}
    best = accelerator.prepare(best)
    tables = []
    for name, ds in test_sets:
        loader = accelerator.prepare(eval_loader(cfg, ds, loader_workers(cfg, accelerator)))
        results = evaluate(best, loader, accelerator, desc=name).metrics
        report["test"][name] = results
        tables.append(format_metrics_table(results, title=f"{name} ({cfg.arch}, best of {state.step} steps)"))
    if main_proc:
        tmp = run_dir / f"{TEST_METRICS}.tmp"
        tmp.write_text(json.dumps(report, indent=2) + "\n")
        os.replace(tmp, run_dir / TEST_METRICS)
        log({"step": state.step, **{f"test/{k}": v for k, v in report["test"][test_sets[0][0]]["overall"].items()}})
        print("\n\n".join(tables))
        print(f"\nrun folder: {run_dir}  (best model: {run_dir / BEST_DIR}, metrics: {run_dir / TEST_METRICS})")
        log_file.close()
    accelerator.end_training()
    return report


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


def iterate_forever(loader, prepared: bool, accelerator: Accelerator, start_step: int):
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


if __name__ == "__main__":
    try:
        main()
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
