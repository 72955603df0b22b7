"""Plate-reading models behind one interface, built by name.

    model = create_model("crnn", {"backbone": "resnet34"}, Charset(), InputSpec(32, 160))
    model.save_pretrained("runs/x/best"); model = PlateRecognizer.from_pretrained("runs/x/best")

Importing the package imports no torch (the ONNX reading path uses ``models.interface`` and
``models.plate_formats`` alone); ``PlateRecognizer`` and the architectures load on first use.
"""

from __future__ import annotations

from models.interface import InputSpec, PlatePrediction
from models.registry import build_model_config, create_model, get_model_class, list_models, register_model

__all__ = [
    "InputSpec", "PlatePrediction", "PlateRecognizer", "create_model",
    "list_models", "register_model", "build_model_config", "get_model_class",
]


def __getattr__(name: str):
    # PlateRecognizer imports torch: only when asked for.
    if name == "PlateRecognizer":
        from models.base import PlateRecognizer

        return PlateRecognizer
    raise AttributeError(f"module 'models' has no attribute {name!r}")
