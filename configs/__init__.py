"""YAML configs: ``configs/<arch>.yaml`` plus ``key=value`` overrides, validated on load."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from common.strict import ConfigError, build_dataclass
from configs.schema import SYNTH, DataConfig, TrainConfig
from models import build_model_config

CONFIG_DIR = Path(__file__).resolve().parent
SECTIONS = ("arch", "model", "data", "train")

__all__ = ["Config", "ConfigError", "DataConfig", "TrainConfig", "SYNTH", "load_config", "read_raw",
           "default_config_path"]


@dataclass
class Config:
    arch: str
    model: Any  # the architecture's config dataclass
    data: DataConfig
    train: TrainConfig

    def to_dict(self) -> dict:
        return {
            "arch": self.arch,
            "model": dataclasses.asdict(self.model),
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
        }


# Renamed keys: the old name still loads for one release, with a warning naming the new one.
RENAMED_KEYS = {"data.capture_effects": "data.camera_effects"}


def _warn_renamed(old: str, new: str, where: str) -> None:
    warnings.warn(f"{where}: config key {old} is deprecated, use {new} (the old name goes in the next release)",
                  FutureWarning, stacklevel=4)


def _rename_keys(raw: dict, where: str) -> None:
    """Move renamed keys of a raw config (a YAML file) to their new names."""
    for old, new in RENAMED_KEYS.items():
        (section_name, old_key), new_key = old.split("."), new.split(".")[1]
        section = raw.get(section_name)
        if isinstance(section, dict) and old_key in section:
            if new_key in section:
                raise ConfigError(f"{where}: both {old} and {new} given; {old} is the old name of {new}, "
                                  f"keep only {new}")
            _warn_renamed(old, new, where)
            section[new_key] = section.pop(old_key)


def _rename_override_keys(overrides: list[str] | tuple[str, ...]) -> list[str]:
    """Overrides with renamed keys (``data.capture_effects.night=0.5``) rewritten to the new names."""
    out = []
    for o in overrides:
        key, eq, value = o.partition("=")
        for old, new in RENAMED_KEYS.items():
            if key.strip() == old or key.strip().startswith(old + "."):
                if any(k.partition("=")[0].strip().split(".")[:2] == new.split(".") for k in overrides):
                    raise ConfigError(f"override {o!r}: both {old} and {new} given; {old} is the old name "
                                      f"of {new}, keep only {new}")
                _warn_renamed(old, new, "override")
                key = new + key.strip()[len(old):]
        out.append(key + eq + value)
    return out


def default_config_path(arch: str) -> Path:
    return CONFIG_DIR / f"{arch}.yaml"


def apply_override(raw: dict, override: str) -> None:
    """Apply ``section.key=value`` (value parsed as YAML) to a raw config dict."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} must look like section.key=value, e.g. train.lr=0.001")
    key, _, text = override.partition("=")
    parts = key.strip().split(".")
    if parts[0] not in SECTIONS or (parts[0] == "arch") != (len(parts) == 1) or len(parts) > 3:
        raise ConfigError(f"override key {key!r} must be arch or one of model.*, data.*, train.* "
                          "(or a mapping's entry, e.g. data.synth_effects.dirt)")
    value = yaml.safe_load(text) if text.strip() else ""
    if len(parts) == 1:
        raw["arch"] = value
        return
    section = raw.setdefault(parts[0], {}) or {}
    raw[parts[0]] = section
    if len(parts) == 2:
        section[parts[1]] = value
        return
    inner = section.get(parts[1])
    if inner is None:
        inner = section[parts[1]] = {}
    if not isinstance(inner, dict):
        raise ConfigError(f"override {key!r}: {parts[0]}.{parts[1]} is not a mapping")
    inner[parts[2]] = value


def read_raw(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """A YAML config file as a dict, its ``base:`` (another config file, relative to this one's
    folder) read first: the file's sections are merged into the base's key by key, and a key the
    file gives replaces the base's value whole (an effects mapping too: the file's list is the list)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with sections {', '.join(SECTIONS)}")
    _rename_keys(raw, str(path))
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"{path}: base must be a config file name (e.g. base: crnn.yaml), got {base!r}")
    base_path, seen = (path.parent / base).resolve(), (*_seen, path.resolve())
    if base_path in seen:
        raise ConfigError(f"{path}: base {base} leads back to {path.name} (a loop of base: keys)")
    try:
        merged = read_raw(base_path, seen)
    except ConfigError as e:
        raise ConfigError(f"{path}: base {base}: {e}") from e
    for key, value in raw.items():
        if key in SECTIONS[1:] and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def load_config(arch: str | None = None, path: str | Path | None = None,
                overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config (default ``configs/<arch>.yaml``), apply overrides, validate."""
    if path is None:
        if arch is None:
            raise ConfigError("give --arch or --config")
        path = default_config_path(arch)
    path = Path(path)
    raw = read_raw(path)
    for o in _rename_override_keys(overrides):
        apply_override(raw, o)
    unknown = [k for k in raw if k not in SECTIONS]
    if unknown:
        raise ConfigError(f"{path}: unknown config key {unknown[0]!r}; sections are {', '.join(SECTIONS)}")
    if arch is not None and raw.get("arch", arch) != arch:
        raise ConfigError(f"{path} is a config for arch {raw['arch']!r}, not {arch!r}")
    arch = raw.get("arch", arch)
    if not isinstance(arch, str):
        raise ConfigError(f"{path}: arch must be a model name, got {arch!r}")

    try:
        model_cfg = build_model_config(arch, raw.get("model"))
    except ConfigError:
        raise
    except ValueError as e:  # unknown arch
        raise ConfigError(f"{path}: {e}") from e
    return Config(
        arch=arch,
        model=model_cfg,
        data=build_dataclass(DataConfig, raw.get("data"), "data"),
        train=build_dataclass(TrainConfig, raw.get("train"), "train"),
    )
