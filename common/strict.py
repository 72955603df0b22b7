"""A strict dict -> dataclass builder: every key and value checked, errors naming the key.

A leaf: it imports nothing of the project, so both ``configs`` (the YAML sections) and
``models`` (each architecture's options) can use it without importing each other.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any

__all__ = ["ConfigError", "build_dataclass"]


class ConfigError(ValueError):
    pass


_SCIENTIFIC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _check_type(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item_tp,) = typing.get_args(tp)
        return [_check_type(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        # PyYAML reads 3e-4 (no dot) as a string (YAML 1.1); take it as the number it is.
        if isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):  # YAML's .nan and .inf are numbers; no setting means them
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    return value


def build_dataclass(cls: type, mapping: dict | None, prefix: str):
    """``cls(**mapping)`` with every key and value checked; errors name ``prefix.key``."""
    mapping = {} if mapping is None else mapping
    if not isinstance(mapping, dict):
        raise ConfigError(f"{prefix}: expected a mapping of keys to values, got {mapping!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = [k for k in mapping if k not in names]
    if unknown:
        raise ConfigError(
            f"unknown config key {prefix}.{unknown[0]}; valid keys in {prefix}: {', '.join(names)}"
        )
    kwargs = {k: _check_type(v, hints[k], f"{prefix}.{k}") for k, v in mapping.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as e:
        msg = str(e)
        raise ConfigError(msg if msg.startswith(prefix) else f"{prefix}: {msg}") from e
