"""Plate-reading models behind one interface, built by name.

    model = create_model("crnn", {"backbone": "resnet34"}, Charset(), InputSpec(32, 160))
    model.save_pretrained("runs/x/best"); model = load_model("runs/x/best")
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file

from common.strict import build_dataclass
from data.text import Charset
from models import attn, crnn  # noqa: F401  (registers "attn", "crnn")
from models.base import CONFIG_FILE, WEIGHTS_FILE, InputSpec, PlatePrediction, PlateRecognizer
from models.registry import get_model_class, list_models, register_model

__all__ = [
    "InputSpec", "PlatePrediction", "PlateRecognizer", "create_model", "load_model",
    "list_models", "register_model", "build_model_config",
]


# Options added after format 1 folders were written: absent from an old config.json,
# they mean "the feature was not there", not the new default.
_ABSENT_IN_OLD_FOLDERS = {"row_split": False, "country_head": False}


def build_model_config(arch: str, options: dict | None, prefix: str = "model"):
    """The architecture's config dataclass from a plain dict; unknown keys are errors naming them."""
    return build_dataclass(get_model_class(arch).config_class, options or {}, prefix)


def create_model(arch: str, options: dict | None, charset: Charset, input_spec: InputSpec) -> PlateRecognizer:
    cls = get_model_class(arch)
    return cls(build_model_config(arch, options), charset, input_spec)


def load_model(path: str | Path, expected_charset: Charset | None = None,
               expected_arch: str | None = None) -> PlateRecognizer:
    """Load a folder written by ``save_pretrained`` (weights through safetensors only)."""
    path = Path(path)
    cfg_file, weights = path / CONFIG_FILE, path / WEIGHTS_FILE
    if not path.is_dir() or not cfg_file.is_file() or not weights.is_file():
        raise ValueError(
            f"{path} is not a model folder: expected {CONFIG_FILE} and {WEIGHTS_FILE} inside it"
        )
    try:
        cfg = json.loads(cfg_file.read_text())
        arch, charset = cfg["arch"], Charset(cfg["charset"])
        spec = InputSpec(**cfg["input"])
        model_options = cfg["model"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{cfg_file} is not a valid model config: {e!r}") from e
    if expected_arch is not None and arch != expected_arch:
        raise ValueError(f"{path} holds a {arch!r} model, expected {expected_arch!r}")
    if expected_charset is not None and charset != expected_charset:
        raise ValueError(
            f"{path} was trained with charset {charset.chars!r}, which differs from the "
            f"configured data.charset {expected_charset.chars!r}"
        )
    # Weights come from the folder; never fetch a backbone's pretrained weights here.
    fields = get_model_class(arch).config_class.__dataclass_fields__ if arch in list_models() else {}
    old = {k: v for k, v in _ABSENT_IN_OLD_FOLDERS.items() if k in fields and k not in model_options}
    options = {**old, **model_options, **({"pretrained": False} if "pretrained" in model_options else {})}
    model = create_model(arch, options, charset, spec)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{weights} is not a readable safetensors file: {e}") from e
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # tensor shapes differ from what the config builds
        raise ValueError(f"{weights} does not match its config {cfg_file}: {e}") from e
    if missing or unexpected:
        raise ValueError(
            f"{weights} does not match its config: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )
    model.eval()
    return model
