"""benchmarks/general_ocr.py with a hand-made recogniser graph on generated stand-in sets."""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import onnx
import pytest
import torch

from benchmarks import general_ocr
from tests._inference_fixtures import make_plates

# the recogniser's dictionary: class 0 is the blank, then these, then a space
DICTIONARY = ["x", *"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"]


def _class(symbol):
    return 1 + DICTIONARY.index(symbol)


class _Fixed(torch.nn.Module):
    """Whatever the line: steps reading A, blank, (x or else B), 1: 'AxB1'-like, 'AB1' on plate characters."""

    def __init__(self):
        super().__init__()
        probs = torch.full((4, len(DICTIONARY) + 2), 0.01)
        probs[0, _class("A")] = 0.9
        probs[1, 0] = 0.9  # blank
        probs[2, _class("x")], probs[2, _class("B")] = 0.6, 0.3  # x is not a plate character
        probs[3, _class("1")] = 0.9
        self.register_buffer("probs", probs / probs.sum(-1, keepdim=True))

    def forward(self, x):
        return self.probs.expand(x.shape[0], -1, -1) + 0 * x.mean()


def _graph(path, dictionary=True):
    with warnings.catch_warnings():  # the TorchScript exporter (no onnxscript) warns that it is legacy
        warnings.simplefilter("ignore")
        torch.onnx.export(_Fixed(), (torch.zeros(2, 3, 48, 64),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["probs"],
                          dynamic_axes={"x": {0: "batch", 3: "width"}, "probs": {0: "batch"}})
    if dictionary:
        m = onnx.load(str(path))
        m.metadata_props.add(key="character", value="\n".join(DICTIONARY))
        onnx.save(m, str(path))
    return path


def _relabel(folder, texts):
    path = folder / "labels.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r, t in zip(rows, texts):
        r["text"] = t
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@pytest.mark.parametrize("width", [224, 0])
def test_reads_restricted_to_plate_characters_per_set_with_macro_and_worst(tmp_path, width, capsys):
    root = tmp_path / "shared"
    make_plates(root / "realplates-a", n=4, seed=3)
    make_plates(root / "realplates-b", n=2, seed=5)
    _relabel(root / "realplates-a", ["AB1", "AB1", "AB1", "ZZ9"])
    _relabel(root / "realplates-b", ["XY7", "AB1"])
    out = tmp_path / "r.json"
    report = general_ocr.main(["--rec-onnx", str(_graph(tmp_path / "rec.onnx")), "--sets", str(root / "realplates-*"),
                               "--width", str(width), "--threads", "1", "--out", str(out)])
    assert report["sets"]["realplates-a"]["exact_match"] == pytest.approx(0.75)
    assert report["sets"]["realplates-b"]["exact_match"] == pytest.approx(0.5)
    assert report["macro"]["exact_match"] == pytest.approx(0.625)
    assert report["worst"]["exact_match"] == {"set": "realplates-b", "value": pytest.approx(0.5)}
    assert json.loads(out.read_text())["macro"] == report["macro"]
    assert "macro mean over 2 sets: exact match 62.50%" in capsys.readouterr().out


def test_reader_input_is_bgr_at_the_engine_height():
    reader = general_ocr.GeneralOcrReader.__new__(general_ocr.GeneralOcrReader)
    reader.width = 0
    rgb = np.zeros((20, 100, 3), np.uint8)
    rgb[..., 0] = 255  # red
    x = general_ocr.GeneralOcrReader.preprocess(reader, rgb)
    assert x.shape == (3, 48, 240)
    assert np.allclose(x[2], 1.0) and np.allclose(x[0], -1.0)  # red is the last channel in BGR


def test_graph_without_a_dictionary_is_refused(tmp_path):
    make_plates(tmp_path / "realplates-a", n=1, seed=3)
    with pytest.raises(SystemExit, match="no 'character' dictionary"):
        general_ocr.main(["--rec-onnx", str(_graph(tmp_path / "rec.onnx", dictionary=False)),
                          "--sets", str(tmp_path / "realplates-*")])


def test_charset_outside_the_dictionary_is_refused(tmp_path):
    with pytest.raises(ValueError, match="lacks"):
        general_ocr.GeneralOcrReader(_graph(tmp_path / "rec.onnx"), charset="AB1Ä")
