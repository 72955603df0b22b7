"""Every configured effect still fires, at its probability: counted over a few thousand samples
of the robust config's stream (the realism config's synth effects plus the plates group) and of its
camera effects (synth effects through data.synth.effects.recording, camera effects through the ops
of data.transforms.camera_effect_ops)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from configs import read_raw
from configs.schema import DataConfig, build_dataclass
from data.synth import SyntheticPlateGenerator
from data.synth.effects import EFFECT_GROUPS, SynthEffects, recording
from data.transforms import CAMERA_EFFECTS, build_transform, camera_effect_ops

CONFIG = "configs/realism_attn.yaml"
ROBUST_CONFIG = "configs/robust_attn.yaml"  # the realism camera effects plus those of other cameras
PLATES = 1500
CAMERA_SAMPLES = 2000
MORE_US = {"US": 5.0}  # US-only effects (us_scenes, state_formats) get enough draws
# Effects added after the robust recipe was judged: the rate test switches them on itself.
LATER = {"any_text": 0.25, "lookalikes": 0.3, "glyph_warp": 0.3, "pattern": 0.3, "glyph_forms": 0.5,
         "any_letters": 0.5, "mixed_fonts": 0.3, "fixed_pitch": 0.3}
LATER_CAMERA = {"bend": 0.15, "ghost": 0.1, "soft": 0.1, "rand_conv": 0.2}  # the same for camera effects
ROBUST_ONLY = (*EFFECT_GROUPS["plates"], "text_crop")  # on in the robust recipe, off in the realism one


def within_binomial(applied: int, drawn: int, p: float, z: float = 4.5) -> bool:
    """``applied`` of ``drawn`` is a plausible count for probability ``p`` (z standard deviations)."""
    return abs(applied - drawn * p) <= z * math.sqrt(drawn * p * (1 - p)) + 1


def test_within_binomial_can_fail():
    assert within_binomial(300, 1000, 0.3)
    assert not within_binomial(150, 1000, 0.3)  # an effect at half its probability is caught
    assert not within_binomial(0, 1000, 0.05)


@pytest.fixture(scope="module")
def realism() -> DataConfig:
    return data_section(CONFIG)


def data_section(path: str) -> DataConfig:
    # The data section alone (load_config also builds the model config, which imports timm: seconds).
    return build_dataclass(DataConfig, read_raw(path)["data"], "data")


def test_the_robust_config_is_the_realism_mix_plus_the_plates_group_and_text_crop(realism):
    robust = data_section(ROBUST_CONFIG).effects
    for f in dataclasses.fields(SynthEffects):
        if f.name in LATER:
            continue
        if f.name in ROBUST_ONLY:
            assert getattr(realism.effects, f.name) == 0 < getattr(robust, f.name), f.name
        else:
            assert getattr(realism.effects, f.name) == getattr(robust, f.name) > 0, f.name


def test_every_synth_effect_fires_at_its_probability():
    robust = data_section(ROBUST_CONFIG)
    assert not any(getattr(robust.effects, k) for k in LATER)  # else LATER is out of date
    fx = dataclasses.replace(robust.effects, **LATER)
    configured = {f.name: getattr(fx, f.name) for f in dataclasses.fields(SynthEffects) if getattr(fx, f.name) > 0}
    assert len(configured) == len(dataclasses.fields(SynthEffects))  # the config switches every effect on
    gen = SyntheticPlateGenerator(seed=5, effects=fx, two_row_prob=robust.train_two_row_prob,
                                  country_weights=MORE_US)
    with recording() as counts:
        for _ in range(PLATES):
            gen()
    for name, p in configured.items():
        drawn, applied = counts.get(name, (0, 0))
        assert drawn >= 50, f"{name}: drawn for only {drawn} of {PLATES} plates"
        assert within_binomial(applied, drawn, p), f"{name}: applied to {applied} of {drawn}, expected p={p}"


def test_recording_sees_an_effect_switched_off(realism):
    # The counter is not vacuous: an effect at 0 is never drawn, one at 1 always applied.
    fx = dataclasses.replace(realism.effects, dirt=0.0, glare=1.0)
    gen = SyntheticPlateGenerator(seed=6, effects=fx)
    with recording() as counts:
        for _ in range(100):
            gen()
    assert "dirt" not in counts
    assert counts["glare"] == [100, 100]
    with recording() as after:
        pass
    assert after == {}  # recording stops with its block


def test_every_camera_effect_fires_at_its_probability():
    configured = data_section(ROBUST_CONFIG).camera
    assert not set(configured) & set(LATER_CAMERA)  # else LATER_CAMERA is out of date
    camera = {**configured, **LATER_CAMERA}
    assert set(camera) == set(CAMERA_EFFECTS)  # the config (and LATER_CAMERA) switch every camera effect on
    tf = build_transform("train", 16, 48, camera_effects=camera)
    tf.set_seed(7)
    ops = camera_effect_ops(tf)
    assert set(ops) == set(CAMERA_EFFECTS)
    applied = dict.fromkeys(ops, 0)
    for name, op in ops.items():
        def counting(*a, _name=name, _orig=op.should_apply, **k):
            hit = _orig(*a, **k)
            applied[_name] += bool(hit)
            return hit

        op.should_apply = counting
    img = np.random.default_rng(0).integers(0, 256, size=(16, 48, 3), dtype=np.uint8)
    for _ in range(CAMERA_SAMPLES):
        tf.augment(img)
    for name, p in camera.items():
        assert within_binomial(applied[name], CAMERA_SAMPLES, p), (
            f"{name}: applied to {applied[name]} of {CAMERA_SAMPLES} samples, expected p={p}")
