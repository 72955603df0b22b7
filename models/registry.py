"""Architecture registry: ``@register_model("name")`` on a PlateRecognizer subclass."""

from __future__ import annotations

_REGISTRY: dict[str, type] = {}


def register_model(name: str):
    def wrap(cls):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = cls
        return cls

    return wrap


def get_model_class(name: str) -> type:
    if name not in _REGISTRY:
        raise ValueError(f"unknown arch {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def list_models() -> list[str]:
    return sorted(_REGISTRY)
