"""Reading views (test-time augmentation): each crop read as several views, one reading kept."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

import predict
import val
from data.datasets import read_image_rgb
from data.transforms import (
    DEFAULT_READING_VIEWS,
    READING_VIEWS,
    ViewTransform,
    build_transform,
    check_reading_views,
)
from inference import JointPlateReader, WeightsError, load_joint_model, load_reader
from tests.test_joint import folders, plates  # noqa: F401  (module fixtures: two tiny models, 8 plates)


def _view(name: str, image: np.ndarray) -> np.ndarray:
    op = READING_VIEWS[name]
    return image if op is None else op(image=image)["image"]


def test_views_pad_crop_and_stretch_as_named():
    rng = np.random.default_rng(0)
    image = rng.integers(60, 180, (40, 120, 3), dtype=np.uint8)
    assert _view("none", image) is image
    assert _view("pad5", image).shape == (44, 132, 3)  # 5 % of each side added
    assert _view("pad10", image).shape == (48, 144, 3)
    cropped = _view("crop5", image)
    assert cropped.shape == (36, 108, 3) and (cropped == image[2:38, 6:114]).all()
    padded = _view("pad5", image)
    assert (padded[2:42, 6:126] == image).all() and (padded[0, 6:126] == image[0]).all()  # edge repeated
    stretched = _view("stretch", image)
    assert stretched.dtype == np.uint8 and stretched.min() == 0 and stretched.max() == 255
    assert image.min() >= 60 and image.max() < 180  # the stretch widened the levels


@pytest.mark.parametrize("name", list(READING_VIEWS))
@pytest.mark.parametrize("shape", [(1, 1, 3), (3, 5), (7, 20, 4), (30, 90, 3)])
def test_every_view_feeds_the_model_any_crop(name, shape):
    """Tiny, grey and RGBA crops pass every view into the model's input size."""
    image = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    x = ViewTransform(name, build_transform("eval", 32, 96))(image)
    assert x.shape == (3, 32, 96) and x.dtype == torch.float32 and torch.isfinite(x).all()


def test_view_lists_are_checked_with_the_option_named():
    assert check_reading_views("none, pad5") == ("none", "pad5")
    assert check_reading_views(list(DEFAULT_READING_VIEWS)) == DEFAULT_READING_VIEWS
    with pytest.raises(ValueError, match=r"--tta: unknown view 'pad7'; choices: none, stretch"):
        check_reading_views("none,pad7", "--tta")
    with pytest.raises(ValueError, match="twice"):
        check_reading_views(["pad5", "pad5"])
    with pytest.raises(ValueError, match="one or more views"):
        check_reading_views("")


def test_reading_with_views_keeps_the_reading_the_views_score_highest(folders, plates):  # noqa: F811
    attn, _ = folders
    views = ("none", "pad10", "crop5", "stretch")
    reader = load_reader(attn, views=views)
    assert isinstance(reader, JointPlateReader) and reader.views == views and len(reader.members) == 4
    assert reader.arch == "attn" and reader.input_size == "32x64" and "views=" in repr(reader)
    plain = load_reader(attn)
    paths = sorted(str(p) for p in (plates / "images").iterdir())
    preds = reader.predict(paths)
    disagreements = 0
    for path, p in zip(paths, preds):
        inputs = [ViewTransform(v, plain.transform)(read_image_rgb(path))[None] for v in views]
        readings = {plain.predict_tensor(x)[0].text for x in inputs}
        assert p.text in readings and 0.0 <= p.confidence <= 1.0

        def score(text: str) -> float:
            return sum(float(plain.model.text_log_prob(x, [text])) for x in inputs)

        if len(readings) > 1:
            disagreements += 1
            assert score(p.text) >= max(score(t) for t in readings) - 1e-4
    assert disagreements > 0  # a random model reads the views differently: the rule was exercised
    # the first view's country and rows
    assert [p.country for p in preds] == [p.country for p in plain.predict(paths)]


def test_views_and_models_combine(folders, plates):  # noqa: F811
    joint = load_joint_model(folders, views="none,pad5")
    assert [(r.arch, v) for r, v in joint.members] == [
        ("attn", "none"), ("attn", "pad5"), ("crnn", "none"), ("crnn", "pad5")]
    paths = sorted(str(p) for p in (plates / "images").iterdir())
    preds = joint.predict(paths)
    assert len(preds) == 8 and all(p.error is None for p in preds)
    # one view other than none: that view read alone
    padded = load_reader(folders[0], views="pad10")
    x = padded.transform(read_image_rgb(paths[0]))
    assert [p.text for p in padded.predict(paths[:1])] == [
        load_reader(folders[0]).predict_tensor(x[0][None])[0].text]
    # the view none only is the plain reader, and the plain joint reader
    assert not isinstance(load_reader(folders[0], views=["none"]), JointPlateReader)
    assert load_joint_model(folders).views == ("none",)


def test_views_need_a_model_folder(folders):  # noqa: F811
    class FakeOnnx:  # any reader that is not a PyTorch model folder
        source = Path("model.onnx")
    with pytest.raises(WeightsError, match="reading with views needs model folders"):
        JointPlateReader([FakeOnnx()], views=DEFAULT_READING_VIEWS)
    with pytest.raises(ValueError, match="unknown view"):
        load_reader(folders[0], views="blur")


def test_val_and_predict_read_with_views(folders, plates, tmp_path, capsys):  # noqa: F811
    attn, _ = folders
    plain = val.main(["--weights", str(attn), "--data", str(plates), "--no-gallery",
                      "--confusion", str(tmp_path / "c.png")])
    results = val.main(["--weights", str(attn), "--tta", "--data", str(plates), "--no-gallery",
                        "--confusion", str(tmp_path / "c.png")])
    assert results["overall"]["n"] == plain["overall"]["n"] == 8
    out = tmp_path / "preds.csv"
    assert predict.main(["--input", str(plates / "images"), "--weights", str(attn), "--tta", "pad5,crop5",
                         "--output", str(out), "--show", "0"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 8 and all(r["error"] == "" for r in rows)
    with pytest.raises(SystemExit) as e:
        predict.main(["--input", str(plates / "images"), "--weights", str(attn), "--tta", "pad7"])
    assert e.value.code == 2 and "unknown view 'pad7'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        val.main(["--weights", str(attn), "--tta", "pad7", "--data", str(plates)])
    assert e.value.code == 2 and "unknown view 'pad7'" in capsys.readouterr().err
