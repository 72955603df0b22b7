"""The capture effects of other cameras (data/camera.py): validation, output contract, each one
changes the image, seeding, labels kept (no blank frames, no plate cut off), the robust configs."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest

from configs import ConfigError, load_config
from data.camera import (_QUANT, Bend, Ghost, PartialOcclusion, RandConv, Soft, StrongExposure, StrongGeometry,
                         block_quantise, robust_ops)
from data.camera_effects import ROBUST_EFFECTS
from data.synth import SyntheticPlateGenerator
from data.synth.effects import EFFECT_GROUPS, SynthEffects
from data.transforms import CAMERA_EFFECTS, build_transform, check_camera_effects
from tools import augment_grid


def plate_image(h=32, w=128, seed=0):
    """Dark characters on a light plate, with a grey surround."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 90, np.uint8)
    img[3:h - 3, 4:w - 4] = 225
    for i in range(7):
        x = 10 + i * (w - 20) // 7
        img[8:h - 8, x + 3:x + (w - 20) // 7 - 3] = rng.integers(0, 60, 3)
    return img


@pytest.fixture(scope="module")
def plates():
    gen = SyntheticPlateGenerator(seed=5, effects=SynthEffects(surround=0.6, gradient=0.3, frame=0.3))
    return [gen() for _ in range(80)]


def test_every_effect_is_a_camera_effect_and_off_by_default():
    assert set(ROBUST_EFFECTS) <= set(CAMERA_EFFECTS) and set(robust_ops()) == set(ROBUST_EFFECTS)
    for name in ROBUST_EFFECTS:
        assert name not in load_config(path="configs/classic_crnn.yaml").data.camera
        assert name not in load_config(path="configs/realism_crnn.yaml").data.camera
        assert name not in load_config("attn").data.camera
        assert name in load_config("crnn").data.camera  # the main command trains the robust mix


@pytest.mark.parametrize("name", ROBUST_EFFECTS)
def test_validation_names_the_key(name):
    assert check_camera_effects({name: 0.25}) == {name: 0.25}
    with pytest.raises(ValueError, match=rf"data\.camera_effects\.{name}: expected a probability"):
        check_camera_effects({name: 1.5})
    with pytest.raises(ConfigError, match=rf"data\.camera_effects\.{name}"):
        load_config("crnn", overrides=[f"data.camera_effects.{name}=-0.1"])
    with pytest.raises(ConfigError, match=r"data\.camera_effects\.false_color"):  # a misspelling is unknown
        load_config("crnn", overrides=["data.camera_effects.false_color=0.1"])


@pytest.mark.parametrize("name", ROBUST_EFFECTS)
def test_each_effect_keeps_the_contract_changes_the_image_and_is_seeded(name):
    img = plate_image()
    outs = []
    for seed in (0, 0, 1):
        op = robust_ops()[name]
        op.set_random_seed(seed)
        outs.append([op(image=img)["image"] for _ in range(4)])
    for out in outs[0]:
        assert out.shape == img.shape and out.dtype == np.uint8
    assert any(not np.array_equal(o, img) for o in outs[0])  # it does something
    assert all(np.array_equal(a, b) for a, b in zip(outs[0], outs[1]))  # the same seed, the same frames
    assert any(not np.array_equal(a, b) for a, b in zip(outs[0], outs[2]))  # another seed, other frames


@pytest.mark.parametrize("name", ROBUST_EFFECTS)
def test_each_effect_in_the_training_pipeline(name, plates):
    """On at 1.0 in the pipeline: the output contract, seeded, different from the pipeline without it."""
    def frames(camera, seed=3):
        tf = build_transform("train", 32, 128, camera_effects=camera)
        tf.set_seed(seed)
        return [tf.augment(p.image) for p in plates[:6]]

    on, again, off = frames({name: 1.0}), frames({name: 1.0}), frames({})
    assert all(o.shape == (32, 128, 3) and o.dtype == np.uint8 for o in on)
    assert all(np.array_equal(a, b) for a, b in zip(on, again))
    assert any(not np.array_equal(a, b) for a, b in zip(on, off))
    t = build_transform("train", 32, 128, camera_effects={name: 1.0})(plates[0].image)
    assert t.shape == (3, 32, 128) and float(t.min()) >= -1.0 and float(t.max()) <= 1.0


@pytest.mark.parametrize("camera", [
    {name: 1.0 for name in ROBUST_EFFECTS},
    {**{name: 1.0 for name in ROBUST_EFFECTS}, "night": 1.0, "faded": 1.0},
    {"exposure": 1.0, "faded": 1.0}, {"exposure": 1.0, "night": 1.0}, {"halo": 1.0, "exposure": 1.0},
])
def test_stacked_effects_never_leave_a_blank_frame(camera, plates):
    """Every effect on at once (and with the light looks): the text stays. Before the guards, strong
    exposure then bloom washed frames to white, and heavy compression quantised faded ones flat."""
    for seed in (1, 2):
        tf = build_transform("train", 32, 128, camera_effects=camera)
        tf.set_seed(seed)
        outs = [tf.augment(p.image) for p in plates]
        assert min(float(o.std()) for o in outs) >= 3.0
        assert min(float(np.percentile(o, 99)) for o in outs) >= 30.0


def test_exposure_clips_but_keeps_contrast():
    img = plate_image()
    op = StrongExposure()
    op.set_random_seed(0)
    outs = [op(image=img)["image"] for _ in range(30)]
    assert all(o.std() >= 0.35 * 0.25 * img.std() for o in outs)  # keep x the darkest gain
    assert any((o == 255).mean() > 0.3 for o in outs)  # over-exposed: the plate clipped white
    assert any((o == 0).mean() > 0.05 for o in outs)  # under-exposed: the characters crushed black
    faint = np.full((32, 128, 3), 120, np.uint8)
    faint[10:20, 20:100] = 135
    assert np.array_equal(op(image=faint)["image"], faint)  # too faint to clip further


def test_geometry_keeps_the_whole_plate():
    """A plate filling the frame with a coloured mark in each corner: tilted strongly, every mark is
    still in the frame (the tilted plate is fitted into it, never cropped), and the plate touches
    every side within the margin."""
    img = np.zeros((32, 128, 3), np.uint8)
    img[1:-1, 1:-1] = 200
    marks = {(0, 0): (255, 0, 0), (0, 1): (0, 255, 0), (1, 1): (0, 0, 255), (1, 0): (255, 255, 0)}
    for (bottom, right), colour in marks.items():
        y, x = (26 if bottom else 2), (118 if right else 2)
        img[y:y + 4, x:x + 8] = colour
    op = StrongGeometry()
    op.set_random_seed(0)
    for _ in range(30):
        out = op(image=img)["image"].astype(int)
        for colour in marks.values():
            near = np.abs(out - np.array(colour)).sum(axis=2) < 60
            assert near.sum() >= 2, colour
        ys, xs = np.nonzero(out.sum(axis=2) > 100)
        assert ys.min() <= 4 and ys.max() >= 27 and xs.min() <= 10 and xs.max() >= 117


def test_occlusion_hides_little():
    img = plate_image()
    op = PartialOcclusion()
    op.set_random_seed(0)
    for _ in range(50):
        changed = (op(image=img)["image"] != img).any(axis=2).mean()
        assert changed <= 0.2


def test_robust_configs_are_the_realism_configs_plus_the_new_effects():
    for arch in ("crnn", "attn"):
        robust = load_config(path=f"configs/robust_{arch}.yaml")
        realism = load_config(path=f"configs/realism_{arch}.yaml")
        assert all(0 < robust.data.camera[n] <= 0.2 for n in ROBUST_EFFECTS)
        # ... and reversed polarity (kept by the rule on each recipe, at its own share)
        assert robust.data.camera["invert"] == {"attn": 0.25, "crnn": 0.1}[arch]
        added = (*ROBUST_EFFECTS, "invert")
        assert {k: v for k, v in robust.data.camera.items() if k not in added} == realism.data.camera
        # ... and the generator's plates group (data.synth.effects), off in the realism configs
        plates = EFFECT_GROUPS["plates"]
        assert all(0 < getattr(robust.data.effects, n) <= 0.3 for n in plates)
        # ... and crops that hug the characters (kept by the rule on both recipes)
        assert robust.data.effects.text_crop == 0.5
        # ... and printed backgrounds (kept by the rule on the CRNN's recipe only)
        assert robust.data.effects.pattern == {"attn": 0.0, "crnn": 0.3}[arch]
        # ... and other forms of characters (kept by the rule on the CRNN's recipe only)
        assert robust.data.effects.glyph_forms == {"attn": 0.0, "crnn": 0.5}[arch]
        # ... and each character in its own font (kept by the rule on the CRNN's recipe only)
        assert robust.data.effects.mixed_fonts == {"attn": 0.0, "crnn": 0.3}[arch]
        assert dataclasses.replace(robust.data.effects.without("plates"), text_crop=0.0, pattern=0.0,
                                   glyph_forms=0.0, mixed_fonts=0.0) == realism.data.effects
        a, b = robust.to_dict(), realism.to_dict()
        for d in (a, b):
            d["data"].pop("camera_effects")
            d["data"].pop("synth_effects")
            # both start from a trained model, whose options replace the config's model section and
            # whose polarity replaces data.read_dark_text (training.finetune.apply_init_from)
            assert d["train"]["init_from"]
            d.pop("model")
            d["data"].pop("read_dark_text")
        assert a == b


@pytest.mark.parametrize("name", ["false_colour", "geometry", "bend", "ghost", "soft", "rand_conv"])
def test_grid_shows_a_new_effect(tmp_path, name):
    out = tmp_path / f"{name}.png"
    assert augment_grid.main(["--out", str(out), "--n", "4", "--effect", name]) == 0
    assert out.stat().st_size > 1000


def test_block_quantise_is_the_blockwise_dct():
    """The whole-image matrix form equals 8x8 cv2.dct/idct block by block, on a shifted grid."""
    img = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (30, 70, 3), dtype=np.uint8), (0, 0), 1.5)
    oy, ox = 3, 5
    y = cv2.copyMakeBorder(cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)[..., 0], oy, 7, ox, 5,
                           cv2.BORDER_REPLICATE).astype(np.float32) - 128.0
    ref = np.zeros_like(y)
    for i in range(0, y.shape[0], 8):
        for j in range(0, y.shape[1], 8):
            coef = cv2.dct(y[i:i + 8, j:j + 8])
            ref[i:i + 8, j:j + 8] = cv2.idct(np.round(coef / (_QUANT * 3.0)) * (_QUANT * 3.0))
    ref = np.clip(ref[oy:oy + 30, ox:ox + 70] + 128.0, 0, 255).astype(np.uint8)
    out = cv2.cvtColor(block_quantise(img, 3.0, (oy, ox)), cv2.COLOR_RGB2YCrCb)[..., 0]
    assert np.abs(out.astype(int) - ref).max() <= 1
    assert not np.array_equal(out, cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)[..., 0])


def test_bend_curves_the_rows_and_keeps_the_frame():
    """A bend moves a row along a smooth curve, by a bounded amount, and keeps the frame's shape."""
    H, W = 32, 128
    img = np.full((H, W, 3), 230, np.uint8)
    img[H // 2] = 0  # one dark row across the frame
    op = Bend()
    op.set_random_seed(1)
    bound = op.bow * H + op.radial * math.hypot(W / 2, H / 2) + 1
    curved = 0
    for _ in range(30):
        out = op(image=img)["image"]
        assert out.shape == img.shape and out.dtype == np.uint8
        rows = out[..., 0].argmin(axis=0)  # where the row is, column by column
        assert np.abs(rows - H // 2).max() <= bound
        assert np.abs(np.diff(rows.astype(int))).max() <= 2  # a smooth curve, not broken pieces
        curved += np.ptp(rows) >= 1
    assert curved >= 15


def test_ghost_lays_a_fainter_shifted_copy_over_the_frame():
    """A dark bar stays where it was, a little fainter, and a fainter copy of it appears beside it,
    no further than the largest shift; the frame keeps its shape."""
    H, W = 32, 128
    img = np.full((H, W, 3), 220, np.uint8)
    img[:, 60:64] = 20  # one dark vertical bar
    op = Ghost()
    op.set_random_seed(3)
    reach = op.shift[1] * H + 1
    beside = 0
    for _ in range(30):
        out = op(image=img)["image"]
        assert out.shape == img.shape and out.dtype == np.uint8
        cols = out[H // 2, :, 0].astype(int)
        assert cols[60:64].max() <= 20 + op.weight[1] * 200 + 1  # the bar keeps most of its darkness
        assert cols[60:64].min() < 220 - 0.5 * 200  # still dark: the copy is the fainter one
        far = np.r_[0:int(60 - reach) - 1, int(64 + reach) + 1:W]
        assert (cols[far] >= 219).all()  # nothing beyond the largest shift
        near = np.r_[int(60 - reach):60, 64:int(64 + reach)]
        beside += cols[near].min() < 200  # the copy, where a sideways shift put it
    assert beside >= 10


def test_soft_blurs_past_the_defocus_and_often_lowers_the_contrast():
    """Every frame loses most of its edge energy (a sigma of 1 or more at 64 pixels high); about half
    also keep only 30-70 % of their contrast; shape, type and the mean level stay."""
    img = plate_image(64, 224)
    lap = cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_32F).var()
    op = Soft()
    op.set_random_seed(0)
    squeezed = 0
    for _ in range(40):
        out = op(image=img)["image"]
        assert out.shape == img.shape and out.dtype == np.uint8
        assert cv2.Laplacian(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY), cv2.CV_32F).var() < 0.3 * lap
        assert abs(float(out.mean()) - float(img.mean())) < 3
        squeezed += out.std() < 0.75 * cv2.GaussianBlur(img, (0, 0), 1.0).std()
    assert 8 <= squeezed <= 32


def test_rand_conv_keeps_the_frames_level_and_contrast_and_varies_its_look():
    """Each frame keeps its shape, type, mean level and much of its contrast, the characters stay
    apart from the plate in some channel, and no two draws give the same look."""
    img = plate_image(64, 224)
    box = (slice(20, 44), slice(20, 200))
    chars = img[box].min(axis=-1) < 60  # the character boxes (dark on light)
    op = RandConv()
    op.set_random_seed(0)
    looks = set()
    for _ in range(40):
        out = op(image=img)["image"]
        assert out.shape == img.shape and out.dtype == np.uint8
        assert abs(float(out.mean()) - float(img.mean())) < 15  # moved only by the clipping
        assert out.std() > 0.4 * img.std()
        inside = out[box].astype(float)
        assert np.abs(inside[chars].mean(axis=0) - inside[~chars].mean(axis=0)).max() > 20
        looks.add(out.tobytes())
    assert len(looks) == 40
