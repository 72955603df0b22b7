"""Synthetic licence plates: the embedded default dataset for training plate readers.

>>> gen = SyntheticPlateGenerator(seed=0)
>>> plate = gen()                       # SynthPlate(image HxWx3 uint8 RGB, text, country, lines)
>>> real = SyntheticPlateGenerator(seed=0, effects=SynthEffects(surround=0.6, emboss=0.4))  # realism effects

Country formats, colours and layouts live in ``data/synth/countries.py``; the CLI
``python -m data.synth --out DIR --n N --seed S`` writes a fixed set.
"""

from data.synth.capture import capture_effects
from data.synth.dataset import write_synthetic_dataset
from data.synth.effects import EFFECT_GROUPS, SynthEffects
from data.synth.generator import SynthPlate, SyntheticPlateGenerator
from data.synth.textgen import generate_text, is_valid_plate_text, max_label_length, plate_regex

__all__ = [
    "EFFECT_GROUPS",
    "SynthEffects",
    "SynthPlate",
    "SyntheticPlateGenerator",
    "capture_effects",
    "generate_text",
    "is_valid_plate_text",
    "max_label_length",
    "plate_regex",
    "write_synthetic_dataset",
]
