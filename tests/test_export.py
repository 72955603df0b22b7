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
from inference import ONNX_META_CONFIG, OnnxPlateReader, TorchPlateReader, WeightsError, load_reader
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
    pt, ox = load_reader(tiny), load_reader(onnx_path)
    assert isinstance(pt, TorchPlateReader) and isinstance(ox, OnnxPlateReader)
    assert (ox.arch, ox.charset, ox.input_spec) == (pt.arch, pt.charset, pt.input_spec)
    images = [read_image_rgb(p) for p in sorted((plates / "images").glob("*.png"))]
    x = torch.stack([pt.preprocess(im) for im in images])
    for batch in (x[:1], x, torch.rand(9, *x.shape[1:]) * 2 - 1):  # dynamic batch: 1, 6, 9
        ref = {k: v.numpy() for k, v in pt.forward(batch).items()}
        got = ox.forward(batch)
        assert set(got) == set(ref) == {"logits", "rows_logits", "country_logits"}
        for k in ref:
            assert got[k].shape == ref[k].shape
            np.testing.assert_allclose(got[k], ref[k], atol=1e-4, rtol=1e-4)
    a, b = pt.predict(images), ox.predict(images)
    assert [p.text for p in a] == [p.text for p in b]
    assert [(p.country, p.rows) for p in a] == [(p.country, p.rows) for p in b]
    assert all(p.country is not None and p.rows in (1, 2) for p in b)
    np.testing.assert_allclose([p.country_confidence for p in a], [p.country_confidence for p in b], rtol=1e-3)
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
    assert isinstance(load_reader(tmp_path), OnnxPlateReader)


def test_export_refuses_non_folders(exported, tmp_path, capsys):
    _, onnx_path = exported
    assert export.main(["--weights", str(onnx_path), "--output", str(tmp_path / "x.onnx")]) == 2
    assert "already an ONNX model" in capsys.readouterr().err
    with pytest.raises(WeightsError):
        load_reader(tmp_path / "missing")


@pytest.mark.parametrize("route,cls_head_layers", [("one-row", 0), ("two-row", 0), ("one-row", 1)])
def test_crnn_with_read_height_exports_both_routes(tmp_path, plates, route, cls_head_layers):
    from data.text import Charset
    from models import InputSpec, create_model
    from tests._inference_fixtures import TINY_OPTIONS

    torch.manual_seed(0)
    model = create_model("crnn", {**TINY_OPTIONS, "read_height": 32, "country_head": True,
                                  "cls_head_layers": cls_head_layers}, Charset(), InputSpec(64, 96))
    with torch.no_grad():
        model.head.fc.weight.mul_(20.0)
        model.router.fc.bias.copy_(torch.tensor([100.0, -100.0] if route == "one-row" else [-100.0, 100.0]))
    folder = model.save_pretrained(tmp_path / "crnn64")
    onnx_path = tmp_path / "crnn64.onnx"
    export.export_onnx(model, onnx_path)
    pt, ox = load_reader(folder), load_reader(onnx_path)
    assert ox.input_spec.height == 64
    images = [read_image_rgb(p) for p in sorted((plates / "images").glob("*.png"))]
    x = torch.stack([pt.preprocess(im) for im in images])
    ref, got = pt.forward(x), ox.forward(x)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k].numpy(), atol=1e-4, rtol=1e-4)
    b = ox.predict(images)
    assert [p.text for p in pt.predict(images)] == [p.text for p in b]
    assert {p.rows for p in b} == {1 if route == "one-row" else 2}


@pytest.mark.skipif("attn" not in __import__("models").list_models(), reason="no attention model registered")
@pytest.mark.parametrize("cls_head_layers", [0, 1])
def test_attention_model_exports_its_greedy_loop(tmp_path, plates, cls_head_layers):
    from data.text import Charset
    from models import InputSpec, create_model

    torch.manual_seed(0)
    model = create_model("attn", {"encoder_stage": 1, "d_model": 32, "dec_heads": 2, "max_label_length": 10,
                                  "cls_head_layers": cls_head_layers}, Charset(), InputSpec(32, 96))
    with torch.no_grad():
        model.head.weight.mul_(10.0)  # sharper outputs: readings of several characters, EOS at various steps
    folder = model.save_pretrained(tmp_path / "attn")
    onnx_path = tmp_path / "attn.onnx"
    export.export_onnx(model, onnx_path)
    pt, ox = load_reader(folder), load_reader(onnx_path)
    images = [read_image_rgb(p) for p in sorted((plates / "images").glob("*.png"))]
    x = torch.stack([pt.preprocess(im) for im in images])
    for batch in (x[:1], x):
        ref, got = pt.forward(batch), ox.forward(batch)
        assert set(got) == set(ref) == {"log_probs", "rows_logits", "country_logits"}
        for k in ref:
            np.testing.assert_allclose(got[k], ref[k].numpy(), atol=1e-4, rtol=1e-4)
    a, b = pt.predict(images), ox.predict(images)
    assert [p.text for p in a] == [p.text for p in b] and len({len(p.text) for p in a}) > 1
    assert [(p.country, p.rows) for p in a] == [(p.country, p.rows) for p in b]
    np.testing.assert_allclose([p.confidence for p in a], [p.confidence for p in b], rtol=1e-3, atol=1e-6)


@pytest.mark.skipif("attn" not in __import__("models").list_models(), reason="no attention model registered")
def test_a_beam_search_model_exports_its_greedy_reading(tmp_path, plates, capsys):
    from data.text import Charset
    from models import InputSpec, create_model

    torch.manual_seed(0)
    model = create_model("attn", {"encoder_stage": 1, "d_model": 32, "dec_heads": 2, "max_label_length": 10,
                                  "beam_width": 3}, Charset(), InputSpec(32, 96))
    folder = model.save_pretrained(tmp_path / "attn")
    onnx_path = tmp_path / "attn.onnx"
    assert export.main(["--weights", str(folder), "--output", str(onnx_path)]) == 0
    out = capsys.readouterr().out
    assert "beam_width=3" in out and "texts equal: True" in out
    ox = load_reader(onnx_path)
    assert ox.config["model"]["beam_width"] == 1 and model.config.beam_width == 3  # the caller's model kept
    images = [read_image_rgb(p) for p in sorted((plates / "images").glob("*.png"))]
    greedy = load_reader(folder, beam_width=1).predict(images)
    assert [p.text for p in ox.predict(images)] == [p.text for p in greedy]


# --------------------------------------------------------------------------- int8 (export.py --int8)


@pytest.fixture(scope="module")
def exported_int8(exported, tmp_path_factory):
    """``export.py --int8`` on the tiny CRNN: (model folder, float .onnx, int8 .onnx).

    The int8 check's bar is lowered: a random tiny model has many near-ties between readings
    (~89% agreement); the shipped CRNN's is ~98%.
    """
    tiny, _ = exported
    out = tmp_path_factory.mktemp("int8") / "tiny.onnx"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(export, "INT8_MIN_AGREEMENT", 0.0)
        assert export.main(["--weights", str(tiny), "--output", str(out), "--int8", "--calib-size", "16"]) == 0
    return tiny, out, out.with_name("tiny.int8.onnx")


def test_int8_export_reads_like_the_float_graph(exported_int8, plates, tmp_path):
    import onnx

    tiny, float_path, int8_path = exported_int8
    assert int8_path.is_file()  # the default name, beside the float graph
    g = onnx.load(str(int8_path)).graph
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= {n.op_type for n in g.node}
    # Every conv's weight is an int8 constant, including those torch.onnx shared through Identity
    # nodes (the tiny untrained model has some; see export._copy_shared_constants), except in the
    # row router, which the CRNN keeps in float32 (CRNN.int8_float_modules).
    inits = {t.name: t for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    convs = [n for n in g.node if n.op_type == "Conv"]
    router = [c for c in convs if "/router/" in c.name]
    assert router and len(router) < len(convs)
    for conv in convs:
        if conv in router:
            assert conv.input[1] in inits and inits[conv.input[1]].data_type == onnx.TensorProto.FLOAT
            continue
        dq = producer[conv.input[1]]
        assert dq.op_type == "DequantizeLinear" and inits[dq.input[0]].data_type == onnx.TensorProto.INT8
    fl, q = load_reader(float_path), load_reader(int8_path)
    assert isinstance(q, OnnxPlateReader)
    assert (q.arch, q.charset, q.input_spec, q.decoder) == (fl.arch, fl.charset, fl.input_spec, fl.decoder)
    images = [read_image_rgb(p) for p in sorted((plates / "images").glob("*.png"))]
    x = fl.collate([fl.preprocess(im) for im in images])  # numpy: the ONNX path has no torch
    for batch in (x[:1], x):  # dynamic batch; whatever outputs the float graph has, with their shapes
        ref, got = fl.forward(batch), q.forward(batch)
        assert list(got) == list(ref)
        assert all(got[k].shape == ref[k].shape and got[k].dtype == np.float32 for k in ref)
    a, b = fl.predict(images), q.predict(images)
    assert [type(p) for p in a] == [type(p) for p in b]
    assert all(isinstance(p.text, str) and 0.0 <= p.confidence <= 1.0 and p.error is None for p in b)
    assert [(type(p.country), type(p.rows)) for p in a] == [(type(p.country), type(p.rows)) for p in b]
    # Not garbage (a broken quantisation reads ~nothing alike; see AttnRecognizer.int8_refusal).
    c = export.check_int8_agreement(tiny, int8_path, n=64)
    assert c.plates == 64 and c.share >= 0.5
    # predict.py takes the int8 file as it is.
    out = tmp_path / "preds.csv"
    assert predict.main(["--input", str(plates), "--weights", str(int8_path), "--output", str(out), "--show", "0"]) == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and not any(r["error"] for r in rows)


def test_int8_keeps_the_metadata(exported_int8):
    import onnx

    tiny, float_path, int8_path = exported_int8
    fmeta = {p.key: p.value for p in onnx.load(str(float_path)).metadata_props}
    qmeta = {p.key: p.value for p in onnx.load(str(int8_path)).metadata_props}
    assert json.loads(qmeta[ONNX_META_CONFIG]) == json.loads((tiny / "config.json").read_text())
    for k in (ONNX_META_CONFIG, export.ONNX_META_GRAPH):
        assert qmeta[k] == fmeta[k]
    assert export.ONNX_META_QUANT not in fmeta
    quant = json.loads(qmeta[export.ONNX_META_QUANT])
    assert quant["calibration_plates"] == 16 and quant["calibration_seed"] == export.CALIB_SEED
    assert quant["format"] == "QDQ"


def test_int8_is_deterministic(exported_int8, tmp_path):
    _, float_path, int8_path = exported_int8
    again = export.quantize_onnx_int8(float_path, tmp_path / "again.onnx", n=16)
    assert again.read_bytes() == int8_path.read_bytes()


def test_int8_refusals(exported_int8, tmp_path, capsys):
    tiny, float_path, int8_path = exported_int8
    assert export.int8_output_path("out/crnn.onnx").as_posix() == "out/crnn.int8.onnx"
    assert export.int8_output_path("model").as_posix() == "model.int8.onnx"
    with pytest.raises(ValueError, match="already quantised"):
        export.quantize_onnx_int8(int8_path, tmp_path / "twice.onnx")
    with pytest.raises(ValueError, match="would replace"):
        export.quantize_onnx_int8(float_path, float_path)
    with pytest.raises(ValueError, match="at least 1"):
        export.quantize_onnx_int8(float_path, tmp_path / "none.onnx", n=0)
    out = tmp_path / "x.onnx"
    assert export.main(["--weights", str(tiny), "--output", str(out), "--int8", "--int8-output", str(out)]) == 2
    assert "is the float32 --output itself" in capsys.readouterr().err and not out.exists()
    with pytest.raises(SystemExit):
        export.main(["--weights", str(tiny), "--output", str(out), "--int8", "--calib-size", "0"])


def test_int8_check_fails_below_the_bar(exported, tmp_path, monkeypatch, capsys):
    tiny, _ = exported
    monkeypatch.setattr(export, "INT8_MIN_AGREEMENT", 1.01)  # no model can pass
    out = tmp_path / "m.onnx"
    assert export.main(["--weights", str(tiny), "--output", str(out), "--int8", "--calib-size", "8"]) == 1
    captured = capsys.readouterr()
    assert "check (int8): texts equal to PyTorch's on " in captured.out
    assert "reads too many plates differently" in captured.err


def test_int8_refuses_the_attention_model(tmp_path, capsys):
    from data.text import Charset
    from models import InputSpec, create_model, list_models

    with pytest.raises(ValueError, match="int8 quantisation of arch 'attn' is not supported"):
        export.check_int8_supported("attn")
    if "attn" not in list_models():
        return
    model = create_model("attn", {"encoder_stage": 1, "d_model": 32, "dec_heads": 2, "max_label_length": 10},
                         Charset(), InputSpec(32, 96))
    folder = model.save_pretrained(tmp_path / "attn")
    out = tmp_path / "attn.onnx"
    assert export.main(["--weights", str(folder), "--output", str(out), "--int8"]) == 2
    err = capsys.readouterr().err
    assert "int8 quantisation of arch 'attn' is not supported (supported: crnn)" in err and "without --int8" in err
    assert not out.exists()  # refused before writing anything
