"""export.py: a self-contained ONNX file whose onnxruntime outputs match PyTorch."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

import export
import predict
from data.datasets import read_image_rgb
from inference import ONNX_META_CONFIG, OnnxPlateReader, TorchPlateReader, WeightsError, load_model
from tests._inference_fixtures import make_plates, make_tiny_model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    tiny = make_tiny_model(root / "tiny")
    onnx_path = root / "out" / "tiny.onnx"
    assert export.main(["--weights", str(tiny), "--format", "onnx", "--output", str(onnx_path)]) == 0
    return tiny, onnx_path


@pytest.fixture(scope="module")
def plates(tmp_path_factory):
    return make_plates(tmp_path_factory.mktemp("d") / "plates", n=6)


def test_onnx_matches_pytorch_texts_and_logits(exported, plates):
    tiny, onnx_path = exported
    pt, ox = load_model(tiny), load_model(onnx_path)
    assert isinstance(pt, TorchPlateReader) and isinstance(ox, OnnxPlateReader)
    assert (ox.arch, ox.charset, ox.input_spec) == (pt.arch, pt.charset, pt.input_spec)
    images = [read_image_rgb(p) for p in sorted((plates / "images").glob("*.png"))]
    x = torch.stack([pt.preprocess(im) for im in images])
    for batch in (x[:1], x, torch.rand(9, *x.shape[1:]) * 2 - 1):  # dynamic batch: 1, 6, 9
        ref = pt.forward(batch).numpy()
        got = ox.forward(batch)["logits"]
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)
    a, b = pt.predict(images), ox.predict(images)
    assert [p.text for p in a] == [p.text for p in b]
    assert any(p.text for p in a)  # not a vacuous comparison of empty strings
    np.testing.assert_allclose([p.confidence for p in a], [p.confidence for p in b], rtol=1e-3, atol=1e-6)
    for p, q in zip(a, b):
        np.testing.assert_allclose(p.char_confidences, q.char_confidences, rtol=1e-3, atol=1e-6)


def test_onnx_file_is_self_contained(exported, plates, tmp_path):
    import onnx

    tiny, onnx_path = exported
    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert json.loads(meta[ONNX_META_CONFIG]) == json.loads((tiny / "config.json").read_text())
    # predict.py with the .onnx alone (copied away from the model folder) writes the same CSV texts.
    alone = tmp_path / "model.onnx"
    alone.write_bytes(onnx_path.read_bytes())
    rows = {}
    for w in (tiny, alone):
        out = tmp_path / f"{w.name}.csv"
        assert predict.main(["--input", str(plates), "--weights", str(w), "--output", str(out), "--show", "0"]) == 0
        with open(out, newline="") as f:
            rows[w.name] = [(r["filename"], r["text"]) for r in csv.DictReader(f)]
    assert rows["tiny"] == rows["model.onnx"] and len(rows["tiny"]) == 6
    # A folder holding only model.onnx is read too.
    assert isinstance(load_model(tmp_path), OnnxPlateReader)


def test_export_refuses_non_folders(exported, tmp_path, capsys):
    _, onnx_path = exported
    assert export.main(["--weights", str(onnx_path), "--output", str(tmp_path / "x.onnx")]) == 2
    assert "already an ONNX model" in capsys.readouterr().err
    with pytest.raises(WeightsError):
        load_model(tmp_path / "missing")


@pytest.mark.skipif("attn" not in __import__("models").list_models(), reason="no attention model registered")
def test_attention_model_exports_its_greedy_loop(tmp_path, plates):
    from data.text import Charset
    from models import InputSpec, create_model

    torch.manual_seed(0)
    model = create_model("attn", {"encoder_stage": 1, "d_model": 32, "dec_heads": 2, "max_label_length": 10},
                         Charset(), InputSpec(32, 96))
    with torch.no_grad():
        model.head.weight.mul_(10.0)  # sharper outputs: readings of several characters, EOS at various steps
    folder = model.save_pretrained(tmp_path / "attn")
    onnx_path = tmp_path / "attn.onnx"
    export.export_onnx(model, onnx_path)
    pt, ox = load_model(folder), load_model(onnx_path)
    images = [read_image_rgb(p) for p in sorted((plates / "images").glob("*.png"))]
    x = torch.stack([pt.preprocess(im) for im in images])
    for batch in (x[:1], x):
        np.testing.assert_allclose(ox.forward(batch)["log_probs"], pt.forward(batch).numpy(), atol=1e-4, rtol=1e-4)
    a, b = pt.predict(images), ox.predict(images)
    assert [p.text for p in a] == [p.text for p in b] and len({len(p.text) for p in a}) > 1
    np.testing.assert_allclose([p.confidence for p in a], [p.confidence for p in b], rtol=1e-3, atol=1e-6)
