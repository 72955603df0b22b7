"""Fine-tuning: a run that starts from a trained model folder (``train.init_from``).

The init model is loaded once (:func:`load_init_model`); its model options and input size
become the run's (:func:`apply_init_from`), its weights the model's (:func:`load_init_weights`),
and ``train.trainable`` freezes the rest (:func:`freeze_all_but`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import torch

from configs import Config, ConfigError
from data.text import Charset
from models import build_model_config, PlateRecognizer
from models.base import charset_mismatch
from models.backbones import grown_blocks

INIT_INPUT_KEYS = {"image_height": "height", "image_width": "width", "keep_aspect": "keep_aspect",
                   "stretch_contrast": "stretch_contrast", "dark_text": "dark_text",
                   "grey": "grey"}

# Heads a run may add to or drop from its init model: the country/rows head and the attention
# model's length and CTC heads. An init model without one (or with another shape of it, e.g. other
# model.cls_head_layers) gives the run that head fresh, as a whole; a run without it
# (model.country_head=false, model.length_loss_weight=0, model.ctc_loss_weight=0) drops it. Any
# other missing or unused tensor is an error.
FRESH_HEADS = {"init_class_head": "class_head.", "init_length_head": "length_head.", "init_ctc_head": "ctc_head."}
HEAD_NAMES = {"init_class_head": "country/rows head", "init_length_head": "length head",
              "init_ctc_head": "CTC head"}  # as printed


@dataclass
class InitModel:
    """A model folder a fine-tune starts from, loaded once."""

    path: str
    model: PlateRecognizer
    sha256: str  # of its weights file, logged so the run records what it started from

    @property
    def where(self) -> str:
        return init_where(self.path)


def init_where(path: str | os.PathLike) -> str:
    return f"--init-from {path} (train.init_from)"


def load_init_model(path: str | os.PathLike, charset: Charset | None = None, arch: str | None = None) -> InitModel:
    """The model folder ``path``, checked against the run's charset and arch (errors name the flag)."""
    try:
        model = PlateRecognizer.from_pretrained(path, expected_charset=charset, expected_arch=arch)
    except ValueError as e:
        raise ConfigError(f"{init_where(path)}: {e}; a fine-tune starts from a model of the run's arch "
                          f"(--arch, --config) and charset (data.charset)") from e
    return InitModel(str(path), model, model.weights_sha256)


def apply_init_from(cfg: Config, overrides: list[str], init: InitModel | None = None) -> tuple[Config, InitModel]:
    """A fine-tune's config: the model section and input size of the ``train.init_from`` model.

    The model's arch and charset must be the run's. Its model options and input (``data.image_height``,
    ``image_width``, ``keep_aspect``, ..., its polarity as ``dark_text`` with ``read_dark_text`` unset)
    replace the config file's (the replaced values are printed); ``train.init_model_options`` and
    then a ``model.*`` or ``data.*`` override on the command line replace those in turn, and the run stops at
    start if the weights do not fit the model it describes (a head the run adds starts fresh:
    :func:`load_init_weights`).
    Not used on --resume: the run's config.yaml already holds the result.
    Returns the config and the loaded init model (for :func:`load_init_weights`).
    """
    if init is None:
        init = load_init_model(cfg.train.init_from, Charset(cfg.data.charset), cfg.arch)
    given = {o.partition("=")[0].strip() for o in overrides}
    model_opts = dataclasses.asdict(init.model.config)
    inputs = {k: getattr(init.model.input_spec, v) for k, v in INIT_INPUT_KEYS.items()}
    replaced = []
    for section, values, current in (("model", model_opts, dataclasses.asdict(cfg.model)),
                                     ("data", inputs, {k: getattr(cfg.data, k) for k in INIT_INPUT_KEYS})):
        for k in values:
            if f"{section}.{k}" in given:
                values[k] = current[k]
            elif current.get(k) != values[k]:
                replaced.append(f"{section}.{k}={current.get(k)!r} -> {values[k]!r}")
    for k, v in (cfg.train.init_model_options or {}).items():
        if k not in model_opts:
            raise ConfigError(f"train.init_model_options: {k!r} is no {cfg.arch} model option; they are "
                              f"{', '.join(model_opts)}")
        if f"model.{k}" not in given:
            if model_opts[k] != v:
                replaced.append(f"model.{k}={model_opts[k]!r} -> {v!r} (train.init_model_options)")
            model_opts[k] = v
    if cfg.data.read_dark_text is not None and "data.read_dark_text" not in given:
        # the init model's polarity (input.dark_text, now data.dark_text) is how it reads
        replaced.append(f"data.read_dark_text={cfg.data.read_dark_text!r} -> None")
        inputs["read_dark_text"] = None
    if replaced and int(os.environ.get("RANK", "0")) == 0:
        print(f"{init.where}: model options and input size from the model folder; replaced "
              f"{', '.join(replaced)}", flush=True)
    cfg = dataclasses.replace(cfg, model=build_model_config(cfg.arch, model_opts),
                              data=dataclasses.replace(cfg.data, **inputs))
    return cfg, init


def load_init_weights(model: PlateRecognizer, init: InitModel | str | os.PathLike) -> dict:
    """Copy the weights of the init model (an :class:`InitModel` or a model folder) into ``model``
    (which apply_init_from configured); returns the record the run logs at step 0.

    A deeper backbone of the same family (``model.encoder=resnet34`` from a resnet18 model) keeps
    the source's blocks and starts its extra ones as the identity (``grown_blocks``)."""
    if not isinstance(init, InitModel):
        init = load_init_model(init)
    if problem := charset_mismatch(init.model.charset, model.charset, "the model folder reads",
                                   "the run's model (data.charset) reads"):
        raise ConfigError(f"{init.where}: {problem}; a fine-tune reads its init model's charset")
    weights = model.weights_from(init.model)
    own = model.state_dict()
    grown = grown_blocks(own, weights)
    weights |= grown
    missing = [k for k in own if k not in weights]
    unused = [k for k in weights if k not in own]
    heads = {}
    if all(k.startswith(tuple(FRESH_HEADS.values())) for k in missing + unused):
        for record, prefix in FRESH_HEADS.items():
            head_missing = any(k.startswith(prefix) for k in missing)
            heads[record] = ("fresh" if head_missing else "dropped" if any(k.startswith(prefix) for k in unused)
                             else "copied")
            if head_missing:  # a head that does not fit starts fresh as a whole
                weights = {k: v for k, v in weights.items() if not k.startswith(prefix)}
                weights |= {k: v for k, v in own.items() if k.startswith(prefix)}
        weights = {k: v for k, v in weights.items() if k in own}  # heads the run does not want
    try:
        model.load_state_dict(weights)
    except (ValueError, RuntimeError) as e:
        raise ConfigError(f"{init.where}: its weights do not fit the configured "
                          f"model (a model.* or data.image_* override changed its shape): {str(e)[:500]}") from e
    return {"step": 0, "init_from": init.path, "init_sha256": init.sha256,
            **{record: heads.get(record, "copied") for record in FRESH_HEADS},
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
