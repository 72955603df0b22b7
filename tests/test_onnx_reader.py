"""The ONNX reading path without torch, and what each architecture declares about its export."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import export
from data.images import preprocess_eval
from data.transforms import build_transform
from models import PlateRecognizer, create_model, get_model_class, list_models
from models.base import Capabilities
from data.text import Charset
from models.interface import InputSpec
from tests._inference_fixtures import make_tiny_model

REPO = Path(__file__).resolve().parent.parent


def _images(rng: np.random.Generator) -> list[np.ndarray]:
    """Crops of many sizes and aspect ratios (smaller and larger than the input), gray and RGBA too."""
    out = []
    for h, w in [(1, 1), (7, 30), (20, 200), (32, 96), (33, 95), (64, 64), (120, 500), (300, 90), (45, 400)]:
        out.append(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    out.append(rng.integers(0, 256, (40, 120), dtype=np.uint8))  # gray HxW
    out.append(rng.integers(0, 256, (40, 120, 1), dtype=np.uint8))  # gray HxWx1
    out.append(rng.integers(0, 256, (50, 160, 4), dtype=np.uint8))  # RGBA
    smooth = cv2.GaussianBlur(rng.integers(0, 256, (90, 310, 3), dtype=np.uint8), (9, 9), 3)
    out.append(smooth)  # a photo-like image: resampling differences would show
    return out


@pytest.mark.parametrize("height,width,keep_aspect,stretch,dark,grey", [
    (32, 96, False, False, False, False), (64, 224, False, False, False, False), (64, 128, True, False, False, False),
    (31, 97, True, False, False, False), (64, 224, False, True, False, False), (31, 97, True, True, False, False),
    (64, 224, False, False, True, False), (31, 97, True, True, True, False), (64, 224, False, False, False, True),
    (31, 97, True, True, True, True)])
def test_numpy_preprocessing_equals_the_eval_transform(height, width, keep_aspect, stretch, dark, grey):
    transform = build_transform("eval", height, width, keep_aspect, stretch=stretch, dark=dark, grey=grey)
    images = _images(np.random.default_rng(0))
    images += [im // 4 + 50 for im in images]  # dim and flat: the contrast stretch has work to do
    images += [255 - im for im in images]  # either polarity: dark_text has work to do
    for img in images:
        ref = transform(img).numpy()
        got = preprocess_eval(img, height, width, keep_aspect, stretch=stretch, dark=dark, grey=grey)
        assert got.dtype == np.float32 and got.shape == ref.shape == (3, height, width)
        np.testing.assert_array_equal(got, ref)  # exact: one resize, the same float32 arithmetic


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    root = tmp_path_factory.mktemp("nontorch")
    tiny = make_tiny_model(root / "tiny")
    onnx_path = export.export_onnx(PlateRecognizer.from_pretrained(tiny), root / "tiny.onnx")
    plate = root / "plate.png"
    cv2.imwrite(str(plate), np.random.default_rng(1).integers(0, 256, (40, 150, 3), dtype=np.uint8))
    return tiny, onnx_path, plate


def test_reading_an_onnx_file_imports_neither_torch_nor_albumentations(tiny_onnx):
    tiny, onnx_path, plate = tiny_onnx
    code = (
        "import sys, numpy as np\n"
        "from inference import load_reader\n"
        f"reader = load_reader({str(onnx_path)!r}, threads=1, country='auto')\n"
        f"preds = reader.predict([{str(plate)!r}, np.zeros((20, 60, 3), np.uint8)])\n"
        "assert all(p.error is None for p in preds), preds\n"
        "print(type(reader).__name__, [m for m in ('torch', 'albumentations', 'timm') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "OnnxPlateReader []"


def test_onnx_reader_reads_as_the_torch_reader(tiny_onnx):
    from inference import load_reader

    tiny, onnx_path, plate = tiny_onnx
    images = _images(np.random.default_rng(2))
    a, b = load_reader(tiny).predict(images), load_reader(onnx_path).predict(images)
    assert [p.text for p in a] == [p.text for p in b]
    np.testing.assert_allclose([p.confidence for p in a], [p.confidence for p in b], rtol=1e-3, atol=1e-6)


def _conditionals_naming_archs(path: Path) -> list[str]:
    """Source of the if/while tests and comparisons in ``path`` that name an architecture."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        tests = [node.test] if isinstance(node, (ast.If, ast.IfExp, ast.While)) else []
        if isinstance(node, ast.Compare):
            tests.append(node)
        for t in tests:
            names = {n.value for n in ast.walk(t) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
            if names & set(list_models()):
                found.append(f"{path.name}:{t.lineno}: {ast.unparse(t)}")
    return found


def test_export_and_readers_have_no_per_architecture_branches():
    files = [REPO / "export.py", *sorted((REPO / "inference").glob("*.py"))]
    assert [f for p in files for f in _conditionals_naming_archs(p)] == []
    for p in files:
        src = p.read_text()
        assert "hasattr(" not in src or p.name == "export.py", p  # export.py: one probe of a torch.onnx type


@pytest.mark.parametrize("arch", list_models())
def test_each_architecture_declares_its_export(arch):
    from data.tokenizers import NUMPY_DECODERS

    cls = get_model_class(arch)
    assert cls.onnx_decoder in NUMPY_DECODERS
    assert cls.int8_refusal is None or isinstance(cls.int8_refusal, str)
    options = {"backbone": "resnet18"} if arch == "crnn" else {"encoder": "resnet18", "d_model": 32,
                                                                 "dec_heads": 2, "max_label_length": 4}
    model = create_model(arch, {**options, "pretrained": False}, Charset("AB12"), InputSpec(32, 96)).eval()
    assert isinstance(model.capabilities, Capabilities)
    module, names = model.export_module()
    assert names[0] == model.text_output and names == model.output_names()
    with torch.no_grad():
        out = module(torch.zeros(2, 3, 32, 96))
        ref = model(torch.zeros(2, 3, 32, 96))
    assert len(out) == len(names)
    for name, t in zip(names, out):
        torch.testing.assert_close(t, ref[name])
    assert ("country_logits" in names) == model.capabilities.class_head
    if not model.capabilities.beam_search:
        with pytest.raises(ValueError, match="no beam search"):
            model.set_beam_width(3)


def test_from_pretrained_and_the_old_names(tmp_path):
    import inference
    import models
    from models.crnn import CRNN

    tiny = make_tiny_model(tmp_path / "m")
    model = PlateRecognizer.from_pretrained(tiny)
    assert isinstance(model, CRNN) and isinstance(CRNN.from_pretrained(tiny), CRNN)
    with pytest.raises(ValueError, match="expected 'attn'"):
        get_model_class("attn").from_pretrained(tiny)
    # One name per loader: a reader (inference.load_reader), a module (PlateRecognizer.from_pretrained).
    assert not hasattr(models, "load_model") and not hasattr(inference, "load_model")
