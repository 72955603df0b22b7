"""inference.cli: the --joint/--beam/--tta options predict.py and val.py share, and the reader they describe."""

from __future__ import annotations

import argparse

import pytest

from data.transforms import DEFAULT_READING_VIEWS
from inference import JointPlateReader, TorchPlateReader, WeightsError
from inference.cli import add_reader_args, reader_from_args
from tests._inference_fixtures import make_tiny_model


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="x")
    p.add_argument("--weights")
    add_reader_args(p)
    return p


def test_options_parse_to_what_the_loaders_take(capsys):
    args = parser().parse_args([])
    assert (args.joint, args.beam, args.tta) == (None, None, None)
    assert parser().parse_args(["--tta"]).tta == DEFAULT_READING_VIEWS
    assert parser().parse_args(["--tta", "pad5, crop5", "--beam", "3"]).tta == ("pad5", "crop5")
    with pytest.raises(SystemExit) as e:
        parser().parse_args(["--tta", "pad7"])
    assert e.value.code == 2 and "argument --tta: unknown view 'pad7'" in capsys.readouterr().err


def test_reader_from_args(tmp_path):
    a, b = make_tiny_model(tmp_path / "a"), make_tiny_model(tmp_path / "b", seed=1)
    plain = reader_from_args(parser().parse_args(["--weights", str(a)]), "cpu", country="BR", batch_size=5)
    assert isinstance(plain, TorchPlateReader) and plain.country == "BR" and plain.batch_size == 5
    joint = reader_from_args(parser().parse_args(["--weights", str(a), "--joint", str(b), "--tta", "pad5"]), "cpu")
    assert isinstance(joint, JointPlateReader) and joint.views == ("pad5",)
    assert [r.source for r in joint.readers] == [a, b]
    views = reader_from_args(parser().parse_args(["--weights", str(a), "--tta"]), "cpu")
    assert isinstance(views, JointPlateReader) and views.views == DEFAULT_READING_VIEWS
    with pytest.raises(WeightsError, match="no beam search"):
        reader_from_args(parser().parse_args(["--weights", str(a), "--beam", "2"]), "cpu")
