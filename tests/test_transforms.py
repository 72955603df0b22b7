"""Transform pipelines: output contract, geometry limits, seeding, the grid command (tools/augment_grid.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from data.datasets import PlateDataset, PlateRecord, collate_plates
from data.images import STRETCH_MIN_RANGE, dark_text, light_text, resize_plate, stretch_contrast
from data.transforms import PIPELINES, PlateWarp, build_transform, to_image, to_tensor
from tools import augment_grid


def plate_image(h=44, w=200, seed=0):
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 230, np.uint8)
    for i in range(7):
        x = 10 + i * (w - 20) // 7
        img[8 : h - 8, x + 3 : x + (w - 20) // 7 - 3] = rng.integers(0, 80, 3)
    return img


@pytest.mark.parametrize("name", PIPELINES)
@pytest.mark.parametrize("keep_aspect", [False, True])
@pytest.mark.parametrize("shape", [(44, 200, 3), (12, 30, 3), (300, 900, 3), (60, 90, 3), (40, 160)])
def test_output_contract(name, keep_aspect, shape):
    tf = build_transform(name, 32, 128, keep_aspect=keep_aspect)
    tf.set_seed(0)
    img = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    for _ in range(5):
        out = tf(img)
        assert out.shape == (3, 32, 128) and out.dtype == torch.float32
        assert out.min() >= -1.0 and out.max() <= 1.0


def test_to_tensor_is_channels_first_in_minus_one_to_one_and_writable():
    img = np.random.default_rng(0).integers(0, 256, size=(8, 12, 3), dtype=np.uint8)
    t = to_tensor(img)
    assert t.dtype == torch.float32 and t.shape == (3, 8, 12)
    expected = torch.from_numpy(img.astype(np.float64)).permute(2, 0, 1) / 127.5 - 1.0
    assert torch.allclose(t.double(), expected, atol=1e-6)
    assert np.array_equal(to_image(t), img)
    t.mul_(0.5)  # a tensor of its own (the collate and the model may write into it)
    assert np.array_equal(to_image(to_tensor(img)), img)


def test_eval_is_plain_resize_and_normalisation():
    img = np.zeros((32, 128, 3), np.uint8)
    img[:, :64] = 255
    out = build_transform("eval", 32, 128)(img)
    assert torch.all(out[:, :, :64] == 1.0) and torch.all(out[:, :, 64:] == -1.0)
    assert np.array_equal(to_image(out), img)
    assert torch.equal(to_tensor(img), out)
    # Letterbox: a square image in a 32x128 frame is padded left and right.
    sq = np.full((50, 50, 3), 255, np.uint8)
    out = build_transform("eval", 32, 128, keep_aspect=True)(sq)
    assert torch.all(out[:, :, 48:80] == 1.0) and torch.all(out[:, :, :40] == -1.0)


def _luma_range(img: np.ndarray) -> float:
    lo, hi = np.percentile(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), (1, 99))
    return hi - lo


def test_stretch_contrast_spans_the_levels_with_one_map_for_every_channel():
    ramp = np.tile(np.linspace(60, 120, 200).astype(np.uint8), (40, 1))
    dim = np.stack([ramp, ramp // 2 + 30, ramp], -1)  # a dim, bluish-grey frame; R and B equal
    out = stretch_contrast(dim)
    grey = np.repeat(ramp[..., None], 3, -1)
    assert _luma_range(grey) < 60 and _luma_range(stretch_contrast(grey)) > 245
    assert _luma_range(out) > 4 * _luma_range(dim)
    assert np.array_equal(out[..., 0], out[..., 2])  # one map for every channel
    for c in range(3):  # monotonic: the order of levels is kept
        order = np.argsort(dim[..., c].ravel(), kind="stable")
        assert np.all(np.diff(out[..., c].ravel()[order].astype(int)) >= 0)
    flat = np.full((20, 80, 3), 100, np.uint8)
    flat[:, :40] += STRETCH_MIN_RANGE - 1  # below the least range: left as it is
    assert stretch_contrast(flat) is flat
    full = np.zeros((20, 80, 3), np.uint8)
    full[:, 40:] = 255
    assert np.array_equal(stretch_contrast(full), full)  # already spans the levels


def test_stretch_contrast_comes_last_in_both_pipelines():
    img = (plate_image() // 3 + 60).astype(np.uint8)
    ev = build_transform("eval", 32, 128, stretch=True)
    assert ev.stretch and torch.equal(ev(img), to_tensor(stretch_contrast(resize_plate(img, 32, 128))))
    tr = build_transform("train", 32, 128, stretch=True)
    tr.set_seed(3)
    outs = [tr.augment(img) for _ in range(8)]
    assert all(_luma_range(o) > 200 for o in outs)
    plain = build_transform("train", 32, 128)
    plain.set_seed(3)
    assert all(np.array_equal(stretch_contrast(plain.augment(img)), o) for o in outs)  # the same draws, then the map


def text_plate(h=44, w=200):
    """Dark characters (strokes, as printed) on a light plate."""
    img = np.full((h, w, 3), 225, np.uint8)
    cv2.putText(img, "AB 123", (8, h - 9), cv2.FONT_HERSHEY_SIMPLEX, h / 32, (30, 30, 30), max(2, h // 14))
    return img


def test_light_text_tells_the_polarity_of_plates_and_crops():
    plate = text_plate()
    assert not light_text(plate) and light_text(255 - plate)
    assert dark_text(plate) is plate and np.array_equal(dark_text(255 - plate), plate)
    # Colour and size do not change the answer: a light-on-blue plate, its enlargement, a grey one.
    blue = np.where(plate < 128, np.array([240, 240, 240], np.uint8), np.array([20, 40, 150], np.uint8))
    assert light_text(blue) and light_text(cv2.resize(blue, None, fx=3, fy=3))
    assert not light_text(cv2.cvtColor(plate, cv2.COLOR_RGB2GRAY))
    # A loose crop: a dark car body around a light plate with dark text still reads as dark text.
    loose = np.full((60, 250, 3), 25, np.uint8)
    loose[8:52, 25:225] = plate
    assert not light_text(loose) and light_text(255 - loose)
    flat = np.full((40, 160, 3), 128, np.uint8)
    flat[:, :80] += STRETCH_MIN_RANGE - 1  # no text to tell by: left as it is
    assert not light_text(flat) and dark_text(flat) is flat


def test_dark_text_comes_last_in_both_pipelines():
    light = 255 - text_plate()
    ev = build_transform("eval", 32, 128, dark=True)
    assert ev.dark and torch.equal(ev(light), to_tensor(255 - resize_plate(light, 32, 128)))
    torch.testing.assert_close(ev(light), -build_transform("eval", 32, 128)(light))  # the inverse, normalised
    tr = build_transform("train", 32, 128, dark=True)
    tr.set_seed(3)
    outs = [tr.augment(light) for _ in range(8)]
    plain = build_transform("train", 32, 128)
    plain.set_seed(3)
    assert all(np.array_equal(dark_text(plain.augment(light)), o) for o in outs)  # the same draws, then the turn
    assert not any(light_text(o) for o in outs)


def test_grey_input_turns_every_image_to_its_luma_first_in_both_pipelines():
    red = np.where(text_plate() < 128, np.array([240, 240, 240], np.uint8), np.array([170, 20, 30], np.uint8))
    ev = build_transform("eval", 32, 128, grey=True)
    x = ev(red)
    assert ev.grey and torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
    assert not torch.equal(x, build_transform("eval", 32, 128)(red))
    luma = cv2.cvtColor(cv2.cvtColor(resize_plate(red, 32, 128), cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    assert torch.equal(build_transform("eval", 32, 128, dark=True, grey=True)(red),
                       to_tensor(dark_text(luma)))  # after the resize, before the turn to dark text
    tr = build_transform("train", 32, 128, grey=True)
    tr.set_seed(3)
    outs = [tr.augment(red) for _ in range(8)]  # after every effect, false colours included
    assert all(np.array_equal(o[..., 0], o[..., 1]) and np.array_equal(o[..., 1], o[..., 2]) for o in outs)


def test_unknown_pipeline():
    with pytest.raises(ValueError, match=r"unknown transform pipeline 'trian'; choices: train, eval"):
        build_transform("trian", 32, 128)


def test_train_augments_and_is_seeded():
    img = plate_image()
    a, b = build_transform("train", 32, 128), build_transform("train", 32, 128)
    a.set_seed(7)
    b.set_seed(7)
    xs = [a(img) for _ in range(10)]
    ys = [b(img) for _ in range(10)]
    assert all(torch.equal(x, y) for x, y in zip(xs, ys))
    assert not all(torch.equal(xs[0], x) for x in xs[1:])
    ev = build_transform("eval", 32, 128)(img)
    assert sum(not torch.allclose(x, ev) for x in xs) >= 5


def test_geometry_never_leaves_frame_beyond_tolerance():
    warp = PlateWarp(32, 128, jitter=True)
    warp.set_random_seed(0)
    tx, ty = warp.tight * 32 / 128, warp.tight
    for _ in range(500):
        q = warp._random_quad(0.0, 0.0, 128.0, 32.0)
        assert q[:, 0].min() >= -tx * 128 - 1e-3 and q[:, 0].max() <= 128 * (1 + tx) + 1e-3
        assert q[:, 1].min() >= -ty * 32 - 1e-3 and q[:, 1].max() <= 32 * (1 + ty) + 1e-3
        assert q[1, 0] - q[0, 0] > 0.6 * 128 and q[3, 1] - q[0, 1] > 0.6 * 32  # not shrunk to nothing


def test_workers_without_seed_do_not_repeat_each_other(tmp_path):
    path = tmp_path / "p.png"
    cv2.imwrite(str(path), plate_image())
    ds = PlateDataset([PlateRecord(path, "AB1", "DE", 1)] * 8, build_transform("train", 32, 128))
    loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate_plates)
    b0, b1 = list(loader)
    assert not torch.equal(b0["images"], b1["images"])


def test_grid_command_from_dataset(tmp_path):
    data = tmp_path / "crops"
    data.mkdir()
    for i, text in enumerate(["AB123CD", "XY987", "KL55MN"]):
        cv2.imwrite(str(data / f"{i:03d}_{text}.png"), plate_image(seed=i))
    out = tmp_path / "grid.png"
    assert augment_grid.main(["--out", str(out), "--data", str(data), "--n", "3", "--pipeline", "train"]) == 0
    grid = cv2.imread(str(out))
    assert grid is not None and grid.shape[0] > 64 and grid.shape[1] > 4 * 256


def test_grid_command_shows_the_turn_to_dark_text(tmp_path):
    data = tmp_path / "crops"
    data.mkdir()
    for i, text in enumerate(["AB123", "XY987"]):
        cv2.imwrite(str(data / f"{i:03d}_{text}.png"), 255 - text_plate())  # light characters on dark
    grids = {}
    for flag in ([], ["--dark-text"]):
        out = tmp_path / f"grid{len(flag)}.png"
        assert augment_grid.main(["--out", str(out), "--data", str(data), "--n", "2", "--pipeline", "eval", *flag]) == 0
        grids[bool(flag)] = cv2.imread(str(out), cv2.IMREAD_GRAYSCALE).astype(float)
    # The same tiles, each plate inverted: the dark plates became light ones.
    assert grids[True].shape == grids[False].shape and grids[True].mean() > grids[False].mean() + 25


def test_grid_command_synthetic(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert augment_grid.main(["--out", str(out), "--n", "6", "--cols", "3", "--height", "32", "--width", "96"]) == 0
    assert "6 samples" in capsys.readouterr().out
    grid = cv2.imread(str(out))
    assert grid is not None and grid.shape[1] == 3 * (2 * 96 + 6) + 6


def test_motion_kernel_is_albumentations_own():
    import random

    from albumentations.augmentations.blur import functional as fblur

    from data.transforms import _motion_kernel

    for i in range(400):
        r = random.Random(i)
        ksize, angle = r.choice([3, 5, 7, 9]), r.uniform(0, 360)
        direction = 0.0 if i % 20 == 0 else r.uniform(-1, 1)
        shifted = i % 3 > 0
        theirs, ours = random.Random(i + 1000), random.Random(i + 1000)
        ref = fblur.create_motion_kernel(ksize, angle, direction, shifted, theirs)
        np.testing.assert_array_equal(_motion_kernel(ksize, angle, direction, shifted, ours), ref / ref.sum())
        assert theirs.random() == ours.random()  # the same draws consumed


@pytest.mark.parametrize("per_channel", [False, True])
def test_sensor_noise_has_the_drawn_spread(per_channel):
    import random

    from data.transforms import SensorNoise

    op = SensorNoise(std_range=(0.04, 0.04), per_channel=per_channel, p=1.0)
    op.set_random_state(np.random.default_rng(0), random.Random(0))
    img = np.full((64, 128, 3), 128, np.uint8)
    outs = [op(image=img)["image"].astype(np.float32) - 128 for _ in range(4)]
    for out in outs:
        assert abs(out.std() - 0.04 * 255) < 0.6 and abs(out.mean()) < 0.6
        assert np.array_equal(out[..., 0], out[..., 1]) != per_channel  # shared: one map on every channel
    assert not np.array_equal(outs[0], outs[1])  # each draw its own window of the field


def test_speckle_noise_hits_as_many_pixels_as_iso_noise():
    import random

    import albumentations as A

    from data.transforms import SpeckleNoise

    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (64, 128, 3), dtype=np.uint8)
    ours = SpeckleNoise(intensity=(0.4, 0.4), p=1.0)
    theirs = A.ISONoise(color_shift=(0.01, 0.01), intensity=(0.4, 0.4), p=1.0)
    lit = {}
    for name, op in (("ours", ours), ("theirs", theirs)):
        op.set_random_state(np.random.default_rng(0), random.Random(0))
        light = cv2.cvtColor(img, cv2.COLOR_RGB2HLS)[..., 1].astype(int)
        lit[name] = np.mean([(cv2.cvtColor(op(image=img)["image"], cv2.COLOR_RGB2HLS)[..., 1].astype(int) - light > 3).mean()
                             for _ in range(8)])
    # Poisson mean = lightness spread x intensity, ~0.11: about a tenth of the pixels brighten
    assert 0.05 < lit["theirs"] < 0.2
    assert abs(lit["ours"] - lit["theirs"]) < 0.02, lit


def test_warp_corners_gives_cv2s_pixels_for_every_border():
    from data.images import warp_corners

    shift = np.array([[1.0, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])  # corners to cv2's pixel centres

    rng = np.random.default_rng(0)
    for i in range(60):
        h, w = int(rng.integers(20, 90)), int(rng.integers(40, 260))
        img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
        dst = (np.array([[0, 0], [128, 0], [128, 64], [0, 64]]) + rng.uniform(-12, 12, (4, 2))).astype(np.float32)
        M = cv2.getPerspectiveTransform(src, dst)
        centred = np.linalg.inv(shift) @ M @ shift
        border, value = ((cv2.BORDER_REPLICATE, 0), (cv2.BORDER_CONSTANT, (3, 120, 250)))[i % 2]
        ref = cv2.warpPerspective(img, centred, (128, 64), flags=cv2.INTER_LINEAR, borderMode=border,
                                  borderValue=value)
        assert np.array_equal(warp_corners(img, M, (128, 64), border, value), ref), i
        grey = img[..., 0].copy()  # other layouts go to cv2 as they are
        ref = cv2.warpPerspective(grey, centred, (128, 64), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=7)
        assert np.array_equal(warp_corners(grey, M, (128, 64), border, 7), ref), i


@pytest.mark.parametrize("ours, theirs, kwargs", [
    ("Shadow", "RandomShadow", dict(shadow_roi=(0, 0, 1, 1), num_shadows_limit=(1, 2), shadow_dimension=4,
                                    shadow_intensity_range=(0.2, 0.5))),
    ("HueSaturationValue", "HueSaturationValue", dict(hue_shift_limit=6, sat_shift_limit=25, val_shift_limit=0)),
    ("HueSaturationValue", "HueSaturationValue", dict(hue_shift_limit=30, sat_shift_limit=40, val_shift_limit=30)),
])
def test_faster_ops_give_albumentations_images_byte_for_byte(ours, theirs, kwargs):
    import random

    import albumentations as A

    import data.transforms as T

    mine, ref = getattr(T, ours)(p=1.0, **kwargs), getattr(A, theirs)(p=1.0, **kwargs)
    for op in (mine, ref):
        op.set_random_state(np.random.default_rng(5), random.Random(5))
    rng = np.random.default_rng(1)
    grey = np.repeat(rng.integers(0, 256, size=(64, 128, 1), dtype=np.uint8), 3, axis=2)  # saturation 0
    changed = 0
    for i in range(300):
        img = grey if i % 10 == 0 else rng.integers(0, 256, size=(64, 128, 3), dtype=np.uint8)
        a, b = mine(image=img)["image"], ref(image=img)["image"]
        assert np.array_equal(a, b), i
        changed += not np.array_equal(a, img)
    assert changed > 250  # the draws did act
