"""Scoring a given text (``PlateRecognizer.text_log_prob``) and two models reading together."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest
import torch

import predict
import val
from data.datasets import read_image_rgb
from data.text import Charset
from data.tokenizers import CTCTokenizer
from inference import JointPlateReader, WeightsError, load_joint_model, load_reader
from models import InputSpec, create_model, list_models
from tests._inference_fixtures import make_plates, make_tiny_model

TINY = {
    "crnn": {"backbone": "resnet18", "backbone_stage": 1, "rnn_hidden_size": 8, "rnn_layers": 1,
             "steps_per_column": 1},
    "attn": {"encoder": "resnet18", "encoder_stage": 1, "d_model": 16, "dec_heads": 2, "dec_mlp_ratio": 2.0,
             "max_label_length": 3, "dropout": 0.0},
}


@pytest.mark.parametrize("arch", list_models())
def test_text_log_probs_are_a_distribution_over_texts(arch):
    """Over every text a model can emit (charset "AB", a 4-step CTC sequence, a 3-character decoder),
    the probabilities sum to 1 (CTC: every path is some text) or at most 1 (the decoder's last step
    may pick a character with no room left for EOS); longer texts are impossible."""
    torch.manual_seed(0)
    model = create_model(arch, TINY[arch], Charset("AB"), InputSpec(16, 16)).eval()
    longest = model.sequence_length if arch == "crnn" else model.config.max_label_length
    texts = [""] + ["".join(p) for n in range(1, longest + 1) for p in itertools.product("AB", repeat=n)]
    image = torch.randn(1, 3, 16, 16)
    logp = model.text_log_prob(image.expand(len(texts), -1, -1, -1), texts)
    assert logp.shape == (len(texts),) and (logp <= 0).all()
    # CTC needs a blank between repeated characters: "AAA" does not fit in 4 steps.
    possible = torch.tensor([arch != "crnn" or CTCTokenizer.min_steps(t) <= longest for t in texts])
    assert torch.isfinite(logp[possible]).all() and (logp[~possible] == float("-inf")).all()
    total = float(logp.exp().sum())
    if arch == "crnn":
        assert total == pytest.approx(1.0, abs=1e-5)
    else:
        assert 0.0 < total <= 1.0 + 1e-5
    too_long = model.text_log_prob(image, ["A" * (longest + 1)])
    assert too_long.item() == float("-inf")


@pytest.mark.parametrize("arch", list_models())
def test_text_log_prob_with_an_index_encodes_each_image_once_and_scores_the_same(arch):
    """Several texts on one image (the joint reader's case): the same scores as the image repeated."""
    torch.manual_seed(3)
    model = create_model(arch, TINY[arch], Charset("AB"), InputSpec(16, 16)).eval()
    images = torch.randn(3, 3, 16, 16)
    texts = ["A", "AB", "ABAB", "B", "BA"]  # "ABAB" is too long for the tiny decoder: -inf either way
    index = torch.tensor([2, 2, 0, 0, 2])
    with torch.no_grad():
        expected = model.text_log_prob(images[index], texts)
        got = model.text_log_prob(images, texts, index)
    assert torch.isfinite(expected).sum() >= 3
    assert torch.equal(torch.isinf(got), torch.isinf(expected))
    assert torch.allclose(got[torch.isfinite(got)], expected[torch.isfinite(expected)], atol=1e-5)


def test_attn_text_log_prob_follows_its_greedy_decoding_steps():
    """Every prefix of the greedy reading, ended there: the greedy steps' log-probabilities up to
    the prefix's end, plus the log-probability of EOS at the next step (the decoder conditions on
    the same characters in both)."""
    torch.manual_seed(1)
    model = create_model("attn", {**TINY["attn"], "max_label_length": 6}, Charset(), InputSpec(16, 32)).eval()
    images = torch.randn(3, 3, 16, 32)
    log_probs = model(images)["log_probs"].float()  # [B, steps, classes], free-running greedy
    best, classes = log_probs.max(-1)
    for k in range(4):
        prefixes = ["".join(model.charset.chars[int(c) - 1] for c in row[:k]) for row in classes]
        assert all(len(p) == k for p in prefixes), prefixes  # no EOS in the first k steps
        expected = best[:, :k].sum(1) + log_probs[:, k, 0]  # class 0 is EOS
        assert torch.allclose(model.text_log_prob(images, prefixes), expected, atol=1e-4), k


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("joint")
    crnn = make_tiny_model(root / "crnn")
    torch.manual_seed(2)
    attn = create_model("attn", {**TINY["attn"], "max_label_length": 10}, Charset(), InputSpec(32, 64))
    return attn.save_pretrained(root / "attn"), crnn


@pytest.fixture(scope="module")
def plates(tmp_path_factory) -> Path:
    return make_plates(tmp_path_factory.mktemp("joint_plates") / "p", n=8)


def test_joint_reader_keeps_the_reading_both_models_find_most_probable(folders, plates):
    joint = load_joint_model(folders)
    assert joint.input_size == "32x64+32x96" and joint.arch == "attn+crnn"
    paths = sorted(str(p) for p in (plates / "images").iterdir())
    preds = joint.predict(paths)
    alone = [load_reader(f).predict(paths) for f in folders]
    images = [read_image_rgb(q) for q in paths]

    def score(image, text: str) -> float:  # summed log-probability under both models
        return sum(float(r.model.text_log_prob(r.preprocess(image)[None], [text])) for r in joint.readers)

    disagreements = 0
    for i, p in enumerate(preds):
        readings = {a[i].text for a in alone}
        assert p.text in readings
        assert 0.0 <= p.confidence <= 1.0
        if len(readings) > 1:
            disagreements += 1
            assert score(images[i], p.text) >= max(score(images[i], t) for t in readings) - 1e-4
    assert disagreements > 0  # two random models: the rule above was exercised
    # country and rows come from the first model's head
    assert [p.country for p in preds] == [p.country for p in alone[0]]


def test_joint_reader_country_reaches_both_models(folders, plates):
    paths = sorted(str(p) for p in (plates / "images").iterdir())
    loaded = load_joint_model(folders, country="BR")
    assert loaded.country == "BR" and all(r.country == "BR" for r in loaded.readers)
    joint = load_joint_model(folders)
    joint.country = "BR"
    assert all(r.country == "BR" for r in joint.readers)
    assert [p.text for p in joint.predict(paths)] == [p.text for p in loaded.predict(paths)]


def test_joint_reader_refuses_other_charsets_and_onnx(folders, tmp_path):
    attn, _ = folders
    other = make_tiny_model(tmp_path / "digits", charset=Charset("0123456789"))
    with pytest.raises(WeightsError, match="charset"):
        load_joint_model([attn, other])
    with pytest.raises(ValueError, match="at least two"):
        JointPlateReader([load_reader(attn)])

    class FakeOnnx:  # any reader that is not a PyTorch model folder
        source = Path("model.onnx")
    with pytest.raises(WeightsError, match="onnx"):
        JointPlateReader([load_reader(attn), FakeOnnx()])


def test_val_and_predict_read_jointly(folders, plates, tmp_path, capsys):
    attn, crnn = folders
    results = val.main(["--weights", str(attn), "--joint", str(crnn), "--data", str(plates), "--no-gallery",
                        "--confusion", str(tmp_path / "c.png"), "--out", str(tmp_path / "m.json")])
    assert results["overall"]["n"] == 8 and 0.0 <= results["overall"]["exact_match"] <= 1.0
    out = tmp_path / "preds.csv"
    assert predict.main(["--input", str(plates / "images"), "--weights", str(attn), "--joint", str(crnn),
                         "--output", str(out), "--show", "0"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 8 and all(r["error"] == "" for r in rows)
    assert "attn+crnn 32x64+32x96" in capsys.readouterr().out


def test_beam_width_is_a_reading_option_of_attention_models(folders, plates, tmp_path, capsys):
    attn, crnn = folders
    paths = sorted(str(p) for p in (plates / "images").iterdir())
    reader = load_reader(attn, beam_width=4)
    assert reader.model.config.beam_width == 4 and load_reader(attn).model.config.beam_width == 1
    x = torch.stack([reader.preprocess(read_image_rgb(p)) for p in paths])
    with torch.no_grad():
        expected = reader.model.decode({"log_probs": reader.model.generate(x, beam_width=4)})
    assert [p.text for p in reader.predict(paths)] == [p.text for p in expected]
    # the joint reader passes it to its attention models only
    joint = load_joint_model([attn, crnn], beam_width=4)
    assert [getattr(r.model.config, "beam_width", None) for r in joint.readers] == [4, None]
    with pytest.raises(WeightsError, match=f"{crnn}.*no beam search"):
        load_reader(crnn, beam_width=2)
    with pytest.raises(WeightsError, match="beam_width must be an integer >= 1"):
        load_reader(attn, beam_width=0)
    out = tmp_path / "p.csv"
    assert predict.main(["--input", str(plates / "images"), "--weights", str(attn), "--beam", "4",
                         "--output", str(out), "--show", "0"]) == 0
    assert [r["text"] for r in csv.DictReader(out.open())] == [p.text for p in expected]
    assert predict.main(["--input", str(plates / "images"), "--weights", str(crnn), "--beam", "2",
                         "--output", str(out), "--show", "0"]) == 2
    assert "no beam search" in capsys.readouterr().err
