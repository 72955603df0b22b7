"""Synthetic licence plates: the embedded default dataset for training plate readers.

>>> gen = SyntheticPlateGenerator(seed=0)
>>> plate = gen()                       # SynthPlate(image HxWx3 uint8 RGB, text, country, rows)
>>> real = SyntheticPlateGenerator(seed=0, effects=SynthEffects(surround=0.6, emboss=0.4))  # realism effects

Country formats (which texts are valid) live in ``data/formats.py``; colours, layouts and
fonts in ``data/synth/countries.py``. The CLI ``python -m data.synth --out DIR --n N --seed S``
writes a fixed set (each image through ``degrade``, as the fixed val/test sets).
"""

from data.formats import is_valid_plate_text, max_label_length, plate_regex  # re-exported
from data.synth.dataset import write_synthetic_dataset
from data.synth.degrade import degrade
from data.synth.effects import EFFECT_GROUPS, SynthEffects
from data.synth.generator import SynthPlate, SyntheticPlateGenerator
from data.synth.textgen import generate_text

__all__ = [
    "EFFECT_GROUPS",
    "SynthEffects",
    "SynthPlate",
    "SyntheticPlateGenerator",
    "degrade",
    "generate_text",
    "is_valid_plate_text",
    "max_label_length",
    "plate_regex",
    "write_synthetic_dataset",
]
