"""Architecture registry: ``@register_model("name")`` on a PlateRecognizer subclass, and building
a model by name.

Torch is imported only when an architecture is first asked for: the built-in architectures
(:data:`BUILTIN`) are imported by name on first use, so ``models.interface`` and the ONNX reading
path stay torch-free. A new architecture is one file under ``models/`` plus its line here.
"""

from __future__ import annotations

import importlib

from common.strict import build_dataclass

# arch -> the module that defines and registers it.
BUILTIN = {"attn": "models.attn", "crnn": "models.crnn"}

_REGISTRY: dict[str, type] = {}


def register_model(name: str):
    def wrap(cls):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = cls
        return cls

    return wrap


def get_model_class(name: str) -> type:
    if name not in _REGISTRY and name in BUILTIN:
        importlib.import_module(BUILTIN[name])
    if name not in _REGISTRY:
        raise ValueError(f"unknown arch {name!r}; registered: {', '.join(list_models())}")
    return _REGISTRY[name]


def list_models() -> list[str]:
    for module in BUILTIN.values():
        importlib.import_module(module)
    return sorted(_REGISTRY)


def build_model_config(arch: str, options: dict | None, prefix: str = "model"):
    """The architecture's config dataclass from a plain dict; unknown keys are errors naming them."""
    return build_dataclass(get_model_class(arch).config_class, options or {}, prefix)


def create_model(arch: str, options: dict | None, charset, input_spec):
    """A new ``arch`` model (a PlateRecognizer) from its options, charset and ``InputSpec``."""
    cls = get_model_class(arch)
    return cls(build_model_config(arch, options), charset, input_spec)
