"""predict.py and the inference API: inputs of every kind, unreadable files, refused weights."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import inference
import inference.weights
import predict
from data.datasets import read_image_rgb
from data.text import Charset
import torch

from inference import Prediction, WeightsError, load_reader
from models import create_model
from models.heads import COUNTRY_CLASSES
from tests._inference_fixtures import TINY_INPUT, TINY_OPTIONS, make_plates, make_tiny_model
from tests._pickle_trap import trap_pickle

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["filename", "text", "confidence", "country", "country_confidence", "rows", "error"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("w") / "tiny")


@pytest.fixture(scope="module")
def plates(tmp_path_factory) -> Path:
    return make_plates(tmp_path_factory.mktemp("d") / "plates", n=6)


@pytest.fixture(scope="module")
def reader(tiny):
    return load_reader(tiny)


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as f:
        r = csv.DictReader(f)
        return list(r.fieldnames or []), list(r)


def test_predict_folder_with_an_unreadable_image(tiny, plates, tmp_path, capsys, reader):
    folder = tmp_path / "in"
    shutil.copytree(plates / "images", folder / "sub")
    (folder / "broken.png").write_bytes(b"this is not a png")
    (folder / "notes.txt").write_text("ignored: not an image extension")
    out = tmp_path / "preds.csv"
    assert predict.main(["--input", str(folder), "--weights", str(tiny), "--output", str(out)]) == 0
    cols, rows = read_csv(out)
    assert cols == COLUMNS
    names = [r["filename"] for r in rows]
    assert names == ["broken.png"] + [f"sub/{i:06d}.png" for i in range(6)]  # relative to the folder, sorted
    bad = rows[0]
    assert bad["error"] and "decode" in bad["error"] and bad["text"] == "" and bad["confidence"] == ""
    expected = reader.predict(sorted((plates / "images").glob("*.png")))
    for row, p in zip(rows[1:], expected):
        assert row["error"] == "" and row["text"] == p.text
        assert float(row["confidence"]) == pytest.approx(p.confidence, abs=1e-6)
        assert row["country"] == p.country and row["rows"] == str(p.rows)  # the tiny model's heads
        assert float(row["country_confidence"]) == pytest.approx(p.country_confidence, abs=1e-6)
    shown = capsys.readouterr().out
    assert "broken.png" in shown and "error" in shown and "7 images, 1 unreadable" in shown


def test_predict_csv_input_with_labels_and_a_missing_file(tiny, plates, tmp_path, capsys):
    src = plates / "labels.csv"
    lines = src.read_text().splitlines()
    lines.append("images/missing.png,AB123,DE,1")
    csv_path = plates / "with_missing.csv"  # next to images/, so filenames resolve
    csv_path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "p.csv"
    assert predict.main(["--input", str(csv_path), "--weights", str(tiny), "--output", str(out),
                         "--batch-size", "4"]) == 0
    _, rows = read_csv(out)
    assert [r["filename"] for r in rows] == [f"images/{i:06d}.png" for i in range(6)] + ["images/missing.png"]
    assert "empty" in rows[-1]["error"] or "cannot read" in rows[-1]["error"]
    assert all(r["error"] == "" for r in rows[:-1])
    assert "against the CSV's text column: exact match" in capsys.readouterr().out

    no_text = tmp_path / "only_names.csv"  # text column optional; paths relative to the CSV
    shutil.copy(plates / "images" / "000001.png", tmp_path / "one.png")
    no_text.write_text("filename\none.png\n")
    assert predict.main(["--input", str(no_text), "--weights", str(tiny), "--output", str(out)]) == 0
    _, rows = read_csv(out)
    assert [r["filename"] for r in rows] == ["one.png"] and rows[0]["error"] == ""


def test_predict_cli_single_image(tiny, plates, tmp_path):
    image = plates / "images" / "000002.png"
    out = tmp_path / "one.csv"
    proc = subprocess.run([sys.executable, "predict.py", "--input", str(image), "--weights", str(tiny),
                           "--output", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    _, rows = read_csv(out)
    assert [r["filename"] for r in rows] == [str(image)]  # as given
    assert "1 images, 0 unreadable" in proc.stdout and "torch" in proc.stdout


def test_missing_default_weights_say_how_to_train(monkeypatch, tmp_path, plates, capsys):
    monkeypatch.setattr(inference.weights, "DEFAULT_WEIGHTS", Path("weights/not-shipped-here"))
    monkeypatch.chdir(tmp_path)
    assert predict.main(["--input", str(plates)]) == 2
    err = capsys.readouterr().err
    assert "weights/not-shipped-here" in err and "train_accelerate.py --arch crnn" in err


def test_default_weights_constant():
    assert inference.DEFAULT_WEIGHTS == Path("weights/crnn_ppocr")


def test_predict_bad_input_path(tiny, tmp_path, capsys):
    assert predict.main(["--input", str(tmp_path / "nope"), "--weights", str(tiny)]) == 2
    assert "input not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert predict.main(["--input", str(tmp_path / "empty"), "--weights", str(tiny)]) == 2
    assert "no image files" in capsys.readouterr().err


@pytest.mark.parametrize("device, message", [
    ("cuda:7" if torch.cuda.is_available() else "cuda", r"device 'cuda(:7)?': this machine has (no CUDA device|\d+ CUDA)"),
    ("gpu0", r"device 'gpu0' is not a PyTorch device"),
])
def test_predict_device_the_machine_lacks(tiny, plates, tmp_path, capsys, device, message):
    out = tmp_path / "p.csv"
    assert predict.main(["--input", str(plates), "--weights", str(tiny), "--device", device, "--output", str(out)]) == 2
    assert re.search(message, capsys.readouterr().err)  # one line, no traceback
    assert not out.exists()


# --------------------------------------------------------------------------- API inputs


def same(a: Prediction, b: Prediction) -> bool:
    return a.text == b.text and a.confidence == pytest.approx(b.confidence, rel=1e-5, abs=1e-7)


def test_api_numpy_inputs(reader, plates):
    path = plates / "images" / "000000.png"
    rgb = read_image_rgb(path)
    ref = reader.predict(str(path))
    assert isinstance(ref, Prediction) and ref.ok and ref.filename == str(path)
    assert ref.country in COUNTRY_CLASSES and 0 < ref.country_confidence <= 1 and ref.rows in (1, 2)
    assert same(reader.predict(rgb), ref)
    assert same(reader.predict(np.ascontiguousarray(rgb[:, :, ::-1]), bgr=True), ref)  # OpenCV order
    assert same(reader.predict(cv2.imread(str(path)), bgr=True), ref)
    assert same(reader.predict(rgb.astype(np.uint16) * 257), ref)  # 16-bit
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    assert same(reader.predict(rgba), ref)
    bgra = np.dstack([rgb[:, :, ::-1], np.full(rgb.shape[:2], 7, np.uint8)])
    assert same(reader.predict(bgra, bgr=True), ref)
    assert same(reader.predict(rgb.astype(np.float32) / 255.0), ref)

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    gray_ref = reader.predict(np.dstack([gray] * 3))
    assert same(reader.predict(gray), gray_ref)
    assert same(reader.predict(gray[:, :, None]), gray_ref)
    assert same(reader.predict(gray.astype(np.uint16) * 257), gray_ref)

    # Lists and 4-D arrays give lists, in order; a tiny or huge image is resized like any other.
    big = cv2.resize(rgb, None, fx=7, fy=7)
    out = reader.predict([rgb, big, rgb[:3, :5]], batch_size=2)
    assert isinstance(out, list) and len(out) == 3 and same(out[0], ref) and all(p.ok for p in out)
    assert [same(p, ref) for p in reader.predict(np.stack([rgb, rgb]))] == [True, True]


def test_api_pil_inputs(reader, plates):
    path = plates / "images" / "000003.png"
    rgb = read_image_rgb(path)
    ref = reader.predict(rgb)
    im = Image.fromarray(rgb)
    assert same(reader.predict(im), ref)
    assert same(reader.predict(im.convert("RGBA")), ref)
    gray = im.convert("L")
    assert same(reader.predict(gray), reader.predict(np.asarray(gray)))
    pal = im.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    assert same(reader.predict(pal), reader.predict(np.asarray(pal.convert("RGB"))))
    g16 = Image.fromarray(np.asarray(gray).astype(np.uint16) * 257)  # mode I;16
    assert same(reader.predict(g16), reader.predict(np.asarray(gray)))
    with Image.open(path) as opened:
        p = reader.predict(opened)
        assert same(p, reader.predict(path)) and p.filename == str(path)


def test_api_bad_inputs_are_reported_per_item(reader, plates, tmp_path):
    rgb = read_image_rgb(plates / "images" / "000000.png")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff garbage")
    out = reader.predict([rgb, 42, np.zeros((4, 5, 6), np.uint8), str(broken), np.zeros((0, 5, 3), np.uint8),
                          str(tmp_path / "missing.png"), rgb])
    assert [p.ok for p in out] == [True, False, False, False, False, False, True]
    assert "unsupported input type int" in out[1].error
    assert "shape" in out[2].error
    assert out[3].filename == str(broken) and "decode" in out[3].error
    assert "empty" in out[4].error
    assert out[5].text == "" and out[5].filename.endswith("missing.png")
    with pytest.raises(TypeError):
        reader.predict(42, raise_errors=True)


# --------------------------------------------------------------------------- refused weights


def test_weights_of_another_arch_or_charset_are_refused(tiny, tmp_path):
    other = tmp_path / "other_arch"
    shutil.copytree(tiny, other)
    cfg = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**cfg, "arch": "transformer9000"}))
    with pytest.raises(WeightsError, match="unknown arch 'transformer9000'"):
        load_reader(other)

    with pytest.raises(WeightsError, match="holds a 'crnn' model, expected 'attn'"):
        load_reader(tiny, expected_arch="attn")
    with pytest.raises(WeightsError, match="charset"):
        load_reader(tiny, expected_charset=Charset("0123456789"))

    # A config whose charset does not fit the weights (head of 37 classes): refused, named.
    wrong = tmp_path / "wrong_charset"
    shutil.copytree(tiny, wrong)
    (wrong / "config.json").write_text(json.dumps({**cfg, "charset": "0123456789"}))
    with pytest.raises(WeightsError, match="does not match its config"):
        load_reader(wrong)


def test_non_models_and_pickles_are_refused_without_unpickling(tiny, tmp_path):
    marker = tmp_path / "UNPICKLED"
    payload = trap_pickle(marker)
    for name in ("model.pt", "pytorch_model.bin", "weights.ckpt", "checkpoint"):
        f = tmp_path / name
        f.write_bytes(payload)
        with pytest.raises(WeightsError, match="pickled|not a model"):
            load_reader(f)
    # torch.save's zip format, with no suffix hint
    (tmp_path / "zipped").write_bytes(b"PK\x03\x04" + b"\0" * 60)
    with pytest.raises(WeightsError, match="pickled"):
        load_reader(tmp_path / "zipped")
    # a folder of pickles (a Hugging Face style checkpoint)
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "pytorch_model.bin").write_bytes(payload)
    with pytest.raises(WeightsError, match="never loaded"):
        load_reader(hf)
    # a model folder whose "safetensors" is a pickle
    fake = tmp_path / "fake"
    shutil.copytree(tiny, fake)
    (fake / "model.safetensors").write_bytes(payload)
    with pytest.raises(WeightsError, match="safetensors"):
        load_reader(fake)
    assert not marker.exists()

    text = tmp_path / "readme.txt"
    text.write_text("hello")
    with pytest.raises(WeightsError, match="is not a model"):
        load_reader(text)
    with pytest.raises(WeightsError, match="pass the folder"):
        load_reader(tiny / "model.safetensors")
    with pytest.raises(WeightsError, match="not found"):
        load_reader(tmp_path / "nothing")
    bad_onnx = tmp_path / "bad.onnx"
    bad_onnx.write_bytes(payload)
    with pytest.raises(WeightsError, match="not a readable ONNX model"):
        load_reader(bad_onnx)
    assert not marker.exists()


def test_foreign_onnx_without_metadata_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["logits"])], "g",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])])
    path = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(WeightsError, match="not one written by export.py"):
        load_reader(path)


def test_a_model_without_heads_leaves_the_class_columns_empty(tmp_path, plates):
    torch.manual_seed(0)
    model = create_model("crnn", {**TINY_OPTIONS, "country_head": False, "row_split": False}, Charset(), TINY_INPUT)
    folder = model.save_pretrained(tmp_path / "plain")
    out = tmp_path / "preds.csv"
    predict.main(["--input", str(plates / "images"), "--weights", str(folder), "--output", str(out)])
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    assert all(r["error"] == "" and r["country"] == r["country_confidence"] == r["rows"] == "" for r in rows)


# --- the output CSV: checked before reading, never an input, written as rows are read (issue 26, item 4)
class _FakeReader:
    """Reads every path as "AB123"; raises KeyboardInterrupt (a Ctrl-C) on call ``interrupt_at``."""

    backend, arch, input_size = "fake", "fake", "1x1"

    def __init__(self, interrupt_at: int | None = None):
        self.calls = 0
        self.interrupt_at = interrupt_at

    def predict(self, paths):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        return [Prediction(text="AB123", confidence=0.9, filename=str(p)) for p in paths]


def _no_reader(*a, **k):
    raise AssertionError("the model was loaded before the output path was checked")


def test_predict_unwritable_output_fails_before_reading(plates, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(predict, "reader_from_args", _no_reader)
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    out = blocker / "preds.csv"
    assert predict.main(["--input", str(plates / "images"), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --output ") and str(out) in err and "Traceback" not in err


@pytest.mark.parametrize("which", ["labels.csv", "image"])
def test_predict_refuses_to_overwrite_an_input(plates, tmp_path, capsys, monkeypatch, which):
    monkeypatch.setattr(predict, "reader_from_args", _no_reader)
    data = tmp_path / "data"
    shutil.copytree(plates, data)
    first_image = sorted((data / "images").iterdir())[0]
    target = data / "labels.csv" if which == "labels.csv" else first_image
    before = target.read_bytes()
    src = data / "labels.csv" if which == "labels.csv" else data / "images"
    assert predict.main(["--input", str(src), "--output", str(target)]) == 2
    err = capsys.readouterr().err
    assert "is an input of this run" in err and str(target) in err
    assert target.read_bytes() == before


def test_predict_interrupt_keeps_the_rows_read(tmp_path, capsys, monkeypatch):
    names = [f"img_{i:04d}.png" for i in range(600)]  # 3 chunks of 256: interrupted in the third
    src = tmp_path / "list.csv"
    src.write_text("filename\n" + "\n".join(names) + "\n")
    fake = _FakeReader(interrupt_at=3)
    monkeypatch.setattr(predict, "reader_from_args", lambda *a, **k: fake)
    out = tmp_path / "preds.csv"
    assert predict.main(["--input", str(src), "--output", str(out)]) == 130
    err = capsys.readouterr().err
    assert "interrupted: 512 of 600" in err and str(out) in err and "Traceback" not in err
    columns, rows = read_csv(out)
    assert columns == COLUMNS
    assert [r["filename"] for r in rows] == names[:512] and all(r["text"] == "AB123" for r in rows)


def test_predict_progress_bar_on_a_terminal_unless_quiet(tmp_path, capsys, monkeypatch):
    src = tmp_path / "list.csv"
    src.write_text("filename\na.png\nb.png\n")
    monkeypatch.setattr(predict, "reader_from_args", lambda *a, **k: _FakeReader())
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    out = tmp_path / "preds.csv"
    assert predict.main(["--input", str(src), "--output", str(out)]) == 0
    assert "reading" in capsys.readouterr().err
    assert predict.main(["--input", str(src), "--output", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "reading" not in captured.err
    assert "2 images, 0 unreadable" in captured.out and len(read_csv(out)[1]) == 2


def test_predict_several_inputs(tiny, plates, tmp_path, capsys, reader):
    """--input takes several images, folders and CSVs and reads them all (issue 26, item 11)."""
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(plates / "images", a)
    shutil.copytree(plates / "images", b)
    one = plates / "images" / "000003.png"
    out = tmp_path / "preds.csv"
    assert predict.main(["--input", str(one), str(a), str(b / "000001.png"), str(plates / "labels.csv"),
                         "--weights", str(tiny), "--output", str(out)]) == 0
    _, rows = read_csv(out)
    names = [r["filename"] for r in rows]
    assert names == ([str(one)] + [f"{a.as_posix()}/{i:06d}.png" for i in range(6)] + [str(b / "000001.png")]
                     + [f"{plates.as_posix()}/images/{i:06d}.png" for i in range(6)])  # paths as given: apart
    assert all(r["error"] == "" for r in rows)
    texts = {p.text for p in reader.predict([one])}
    assert rows[0]["text"] in texts and rows[1 + 3]["text"] == rows[0]["text"]  # the same image, read alike
    shown = capsys.readouterr().out
    assert "14 images, 0 unreadable" in shown and "against the CSV's text column: exact match" in shown
    # Scored where a label is known: the CSV's 6 rows, and the first image, which is one of them.
    assert re.search(r"exact match [\d.]+% \(\d/7\)", shown)
    # A missing one among several is named; nothing is read.
    assert predict.main(["--input", str(a), str(tmp_path / "nope"), "--weights", str(tiny),
                         "--output", str(tmp_path / "x.csv")]) == 2
    assert "nope: input not found" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("kind", ["folder", "onnx"])
def test_polarity_both_keeps_the_more_confident_of_the_crop_and_its_inverse(tiny, plates, tmp_path, kind):
    import export
    from models import PlateRecognizer

    weights = tiny if kind == "folder" else export.export_onnx(PlateRecognizer.from_pretrained(tiny),
                                                                tmp_path / "tiny.onnx")
    given, both = load_reader(weights), load_reader(weights, polarity="both")
    assert both.polarity == "both" and given.polarity == "given"
    images = [read_image_rgb(p) for p in sorted((plates / "images").glob("*.png"))]
    a, b = given.predict(images), given.predict([255 - im for im in images])
    got = both.predict(images)
    expected = [q if q.confidence > p.confidence else p for p, q in zip(a, b)]
    assert all(same(p, q) for p, q in zip(got, expected)) and len(got) == len(expected) == 6
    # A crop and its inverse read alike, though read as given they differ: each polarity won somewhere.
    got_inverse = both.predict([255 - im for im in images])
    assert all(same(p, q) for p, q in zip(got, got_inverse))
    assert any(p.text != q.text for p, q in zip(a, b))


@pytest.mark.parametrize("kind", ["folder", "onnx"])
def test_polarity_auto_reads_light_text_crops_inverted_and_others_as_given(tiny, plates, tmp_path, kind):
    import export
    from data.images import light_text, resize_plate
    from models import PlateRecognizer

    weights = tiny if kind == "folder" else export.export_onnx(PlateRecognizer.from_pretrained(tiny),
                                                                tmp_path / "tiny.onnx")
    given, auto = load_reader(weights), load_reader(weights, polarity="auto")
    images = [read_image_rgb(p) for p in sorted((plates / "images").glob("*.png"))]
    mixed = [255 - im if i % 2 else im for i, im in enumerate(images)]
    # Judged on the model's input: a light-text crop's input is negated (255 - x once normalised).
    spec = given.input_spec
    light = [light_text(resize_plate(im, spec.height, spec.width)) for im in mixed]
    assert light == [i % 2 == 1 for i in range(6)]  # the generator's plates are dark on light
    x = given.collate([-given.transform(im) if t else given.transform(im) for im, t in zip(mixed, light)])
    got, expected = auto.predict(mixed), given.predict_tensor(x)
    assert all(same(p, q) for p, q in zip(got, expected)) and len(got) == 6
    # A crop and its inverse read alike.
    assert all(same(p, q) for p, q in zip(got, auto.predict([255 - im for im in mixed])))


def test_a_model_trained_with_dark_text_reads_every_crop_turned(tiny, plates, tmp_path):
    from models import PlateRecognizer
    from models.interface import InputSpec

    model = PlateRecognizer.from_pretrained(tiny)
    s = model.input_spec
    model.input_spec = InputSpec(s.height, s.width, s.keep_aspect, s.stretch_contrast, dark_text=True)
    model.save_pretrained(tmp_path / "dark")
    turned = load_reader(tmp_path / "dark")
    assert turned.input_spec.dark_text and turned.transform.dark
    images = [read_image_rgb(p) for p in sorted((plates / "images").glob("*.png"))]
    mixed = [255 - im if i % 2 else im for i, im in enumerate(images)]
    expected = load_reader(tiny, polarity="auto").predict(mixed)  # the same turn, on the normalised input
    assert all(same(p, q) for p, q in zip(turned.predict(mixed), expected))


def test_a_model_trained_on_grey_reads_every_crop_as_its_luma(tiny, plates, tmp_path):
    import dataclasses

    from models import PlateRecognizer

    model = PlateRecognizer.from_pretrained(tiny)
    model.input_spec = dataclasses.replace(model.input_spec, grey=True)
    model.save_pretrained(tmp_path / "grey")
    reader = load_reader(tmp_path / "grey")
    assert reader.input_spec.grey and reader.transform.grey
    images = [read_image_rgb(p) for p in sorted((plates / "images").glob("*.png"))]
    swapped = [im[..., ::-1].copy() for im in images]  # other colours, other luma
    x = reader.collate([reader.transform(im) for im in images])
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])
    assert not torch.equal(x, reader.collate([reader.transform(im) for im in swapped]))
    assert all(same(p, q) for p, q in zip(reader.predict(images), reader.predict_tensor(x)))


def test_polarity_errors_are_named(tiny, plates, tmp_path, capsys):
    with pytest.raises(ValueError, match="polarity: expected one of given, both, auto"):
        load_reader(tiny, polarity="inverse")
    with pytest.raises(ValueError, match="does not combine with views"):
        load_reader(tiny, polarity="both", views="none,pad5")
    out = tmp_path / "p.csv"
    assert predict.main(["--input", str(plates), "--weights", str(tiny), "--joint", str(tiny), "--polarity", "both",
                         "--output", str(out)]) == 2
    assert "--polarity both" in capsys.readouterr().err and not out.exists()
    assert predict.main(["--input", str(plates), "--weights", str(tiny), "--polarity", "both", "--output", str(out),
                         "--quiet"]) == 0
    assert len(read_csv(out)[1]) == 6
