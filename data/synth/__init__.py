"""Synthetic licence plates: the embedded default dataset for training plate readers.

>>> gen = SyntheticPlateGenerator(seed=0)
>>> plate = gen()                       # SynthPlate(image HxWx3 uint8 RGB, text, country, lines)

Country formats, colours and layouts live in ``data/synth/countries.py``; the CLI
``python -m data.synth --out DIR --n N --seed S`` writes a fixed set.
"""

from data.synth.capture import capture_effects
from data.synth.dataset import write_synthetic_dataset
from data.synth.generator import SynthPlate, SyntheticPlateGenerator
from data.synth.textgen import generate_text, is_valid_plate_text, max_label_length, plate_regex

__all__ = [
    "SynthPlate",
    "SyntheticPlateGenerator",
    "capture_effects",
    "generate_text",
    "is_valid_plate_text",
    "max_label_length",
    "plate_regex",
    "write_synthetic_dataset",
]
