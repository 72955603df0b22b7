"""The CRNN on PP-OCRv4's recogniser (``model.backbone: ppocrv4_rec``, models/ppocr.py)."""

import numpy as np
import pytest
import torch

from data.text import Charset
from models import InputSpec, PlateRecognizer, create_model
from models.ppocr import GRAPH, HEIGHT, PPOCRFeatures

PPOCR = {"backbone": "ppocrv4_rec", "pretrained": True, "read_height": HEIGHT, "rnn_layers": 0,
         "steps_per_column": 1}


@pytest.fixture(scope="module")
def engine():
    import onnxruntime as ort

    return ort.InferenceSession(str(GRAPH), providers=["CPUExecutionProvider"])


def test_backbone_and_its_head_compute_the_engine_s_readings(engine):
    """Features times the engine's classifier, softmaxed, equal the published graph's output."""
    features = PPOCRFeatures(pretrained=True).eval()
    bgr = torch.randn(2, 3, HEIGHT, 160)
    with torch.no_grad():
        f = features(bgr.flip(1))  # the backbone takes RGB and flips it itself
    assert f.shape == (2, features.channels, 1, 160 // features.stride)
    weight, bias = features._head
    probs = (f.squeeze(2).transpose(1, 2) @ weight + bias).softmax(-1).numpy()
    expected = engine.run(None, {engine.get_inputs()[0].name: bgr.numpy()})[0]
    assert probs.shape == expected.shape
    np.testing.assert_allclose(probs, expected, atol=1e-4)


def test_crnn_starts_from_the_engine_s_classifier_cut_to_the_charset():
    charset = Charset("0123456789ABCÄ")  # Ä is not in the engine's dictionary
    model = create_model("crnn", PPOCR, charset, InputSpec(64, 224))
    weight, bias = model.backbone._head
    dictionary = model.backbone.dictionary
    fc = model.head.fc
    assert model.rnn is None and fc.in_features == model.backbone.channels
    assert torch.equal(fc.weight[0], weight[:, 0])  # the CTC blank
    for i, c in enumerate(charset.chars[:-1]):
        assert torch.equal(fc.weight[i + 1], weight[:, dictionary.index(c) + 1]), c
        assert fc.bias[i + 1] == bias[dictionary.index(c) + 1]
    assert not fc.weight[-1].any() and fc.bias[-1] < bias.min()  # Ä: never read at the start


def test_crnn_on_the_engine_reads_a_rendered_plate_before_any_training():
    """The pretrained start reads clean text: a plate's characters drawn with OpenCV."""
    import cv2

    img = np.full((64, 224, 3), 255, np.uint8)
    cv2.putText(img, "AB123", (14, 48), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (0, 0, 0), 4, cv2.LINE_AA)
    x = torch.from_numpy(img.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1)[None]
    model = create_model("crnn", PPOCR, Charset(), InputSpec(64, 224)).eval()
    with torch.no_grad():  # the one-row view (the router is untrained)
        one_row = torch.nn.functional.interpolate(x, size=(HEIGHT, 224), mode="bilinear", align_corners=False)
        logits = model.head(model.backbone(one_row).squeeze(2).transpose(1, 2))
    text = model.decode_text({"logits": logits})[0].text
    assert text == "AB123"


def test_not_pretrained_is_not_the_engine_s_weights():
    a = PPOCRFeatures(pretrained=True)
    b = PPOCRFeatures(pretrained=False)
    conv = "p2o/Conv/0.weight"
    assert not torch.equal(a.body.state_dict()[conv], b.body.state_dict()[conv])
    assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters())


def test_every_weight_of_the_engine_trains():
    features = PPOCRFeatures(pretrained=True)
    frozen = [n for n, b in features.named_buffers() if b.numel() > 1 and "running_" not in n]
    assert frozen == []
    f = features(torch.randn(2, 3, HEIGHT, 64))
    f.sum().backward()
    assert all(p.grad is not None for p in features.parameters())


def test_other_read_heights_are_refused_with_the_key_to_set():
    with pytest.raises(ValueError, match="model.read_height: 48"):
        create_model("crnn", {**PPOCR, "read_height": 32}, Charset(), InputSpec(64, 224))


def test_saved_model_loads_and_reads_the_same(tmp_path):
    model = create_model("crnn", PPOCR, Charset(), InputSpec(64, 224)).eval()
    model.save_pretrained(tmp_path / "m")
    again = PlateRecognizer.from_pretrained(tmp_path / "m").eval()
    x = torch.randn(2, 3, 64, 224)
    with torch.no_grad():
        out, out_again = model(x), again(x)
    for k in out:
        assert torch.allclose(out[k], out_again[k], atol=1e-6), k
