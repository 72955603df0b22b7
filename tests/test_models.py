"""Model interface: every registered architecture, several backbones and input sizes."""

import pytest
import torch

from data.text import Charset
from models import create_model, InputSpec, list_models, PlatePrediction, PlateRecognizer

CHARSET = Charset()


@pytest.mark.parametrize("arch", list_models())
def test_every_model_forward_loss_decode_roundtrip(arch, tmp_path):
    model = create_model(arch, {}, CHARSET, InputSpec(32, 160))
    images = torch.randn(3, 3, 32, 160)
    outputs = model(images)
    loss = model.loss(outputs, {"texts": ["AB123", "X9", "KK11"]})
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    preds = model.predict(images)
    assert len(preds) == 3 and all(isinstance(p, PlatePrediction) for p in preds)
    for p in preds:
        assert set(p.text) <= set(CHARSET.chars)
        assert len(p.char_confidences) == len(p.text)
        assert 0.0 <= p.confidence <= 1.0
    model.save_pretrained(tmp_path / "m")
    again = PlateRecognizer.from_pretrained(tmp_path / "m")
    model.eval()
    out, out_again = model(images), again(images)
    assert out.keys() == out_again.keys() and "country_logits" in out
    for k in out:
        assert torch.allclose(out[k], out_again[k], atol=1e-6), k


@pytest.mark.parametrize(
    "backbone,stage,size,steps",
    [
        ("resnet18", 2, (32, 160), 20),
        ("resnet34", 2, (32, 128), 16),
        ("resnet18", 3, (64, 256), 16),
        ("mobilenetv3_large_100", 3, (48, 192), 12),
        ("efficientnet_b0", 2, (32, 160), 20),
    ],
)
def test_crnn_sizes_are_derived_from_backbone_and_input(backbone, stage, size, steps):
    h, w = size
    model = create_model("crnn", {"backbone": backbone, "backbone_stage": stage}, CHARSET, InputSpec(h, w))
    out = model(torch.randn(2, 3, h, w))["logits"]
    assert out.shape == (2, steps, len(CHARSET) + 1)
    assert model.sequence_length == steps
    c, fh, fw = model.backbone.output_shape(h, w)
    assert model.rnn_features_num == c * fh == model.rnn.input_size


@pytest.mark.parametrize("backbone,stage", [("resnet18", 2), ("mobilenetv3_large_100", 2),
                                            ("efficientnet_b0", 0), ("mobilenetv4_conv_small", 2)])
def test_backbone_cut_holds_no_layers_after_the_stage(backbone, stage):
    """The cut model computes what timm's full feature model gives at that stage, with the
    parameters timm's own pruning keeps (MobileNets' feature models keep every block)."""
    import timm

    from models.backbones import TimmFeatures

    cut = TimmFeatures(backbone, stage).eval()
    pruned = timm.create_model(backbone)
    pruned.prune_intermediate_layers(indices=(stage,), prune_norm=True, prune_head=True)
    assert sum(p.numel() for p in cut.parameters()) == sum(p.numel() for p in pruned.parameters())
    whole = timm.create_model(backbone, features_only=True, out_indices=(stage,)).eval()
    whole.load_state_dict(cut.body.state_dict(), strict=False)  # the cut's weights, later blocks random
    x = torch.randn(1, 3, 32, 96)
    assert torch.equal(cut(x), whole(x)[0])


def test_crnn_steps_per_column_multiplies_the_sequence():
    model = create_model("crnn", {"steps_per_column": 2}, CHARSET, InputSpec(32, 160))
    assert model.sequence_length == 40
    assert model(torch.randn(2, 3, 32, 160))["logits"].shape == (2, 40, len(CHARSET) + 1)
    model.check_label_length(20, "data")  # needs 39
    with pytest.raises(ValueError, match=r"data.image_width to at least 168"):
        model.check_label_length(21, "data")


def test_crnn_refuses_sequence_too_short_for_labels():
    model = create_model("crnn", {}, CHARSET, InputSpec(32, 160))  # 20 steps
    model.check_label_length(10, "data")  # needs 19
    with pytest.raises(ValueError, match=r"data.image_width to at least 168"):
        model.check_label_length(11, "data")


def test_unknown_backbone_and_bad_stage_are_named():
    with pytest.raises(ValueError, match="model.backbone.*resnet18x"):
        create_model("crnn", {"backbone": "resnet18x"}, CHARSET, InputSpec(32, 160))
    with pytest.raises(ValueError, match="model.backbone_stage=9"):
        create_model("crnn", {"backbone_stage": 9}, CHARSET, InputSpec(32, 160))
    with pytest.raises(ValueError, match="unknown arch"):
        create_model("nope", {}, CHARSET, InputSpec(32, 160))


def test_ctc_greedy_decoding_collapses_repeats_and_blanks():
    from data.tokenizers import CTCTokenizer

    tok = CTCTokenizer(Charset("AB1"))
    # steps: A A blank A B B 1 blank -> "AAB1"
    ids = [1, 1, 0, 1, 2, 2, 3, 0]
    probs = torch.full((1, len(ids), 4), 0.1)
    for t, k in enumerate(ids):
        probs[0, t, k] = 0.7
    probs[0, 1, 1] = 0.9  # a run's confidence is its best step
    (d,) = tok.decode_greedy(probs)
    assert d.text == "AAB1"
    assert d.char_confidences == pytest.approx([0.9, 0.7, 0.7, 0.7])
    assert d.confidence == pytest.approx(0.9 * 0.7**3)
    assert CTCTokenizer.min_steps("AA11B") == 7


def test_crnn_label_smoothing_caps_how_sure_a_step_grows():
    from data.tokenizers import CTCTokenizer
    from models.heads import ctc_text_loss

    encode = CTCTokenizer(Charset("AB1")).encode
    ids = [0, 1, 0, 2, 0, 3, 0, 0]  # blank A blank B blank 1: "AB1", every step sure
    sure = torch.nn.functional.one_hot(torch.tensor([ids]), 4).float()
    plain = [ctc_text_loss(sure * scale, ["AB1"], encode) for scale in (4.0, 16.0)]
    smoothed = [ctc_text_loss(sure * scale, ["AB1"], encode, smoothing=0.1) for scale in (4.0, 16.0)]
    assert plain[1] < plain[0]  # CTC alone gains from ever larger logits ...
    assert smoothed[1] > smoothed[0]  # ... the smoothed loss does not
    assert ctc_text_loss(sure * 4.0, ["AB1"], encode, smoothing=0.0) == plain[0]
    with pytest.raises(ValueError, match="model.label_smoothing"):
        create_model("crnn", {"label_smoothing": 1.0}, CHARSET, InputSpec(32, 160))
    model = create_model("crnn", {"label_smoothing": 0.1}, CHARSET, InputSpec(32, 160))
    out = model(torch.randn(2, 3, 32, 160))
    batch = {"texts": ["AB1", "1BA"]}
    model.config.label_smoothing = 0.0
    unsmoothed = model.text_loss(out, batch)
    model.config.label_smoothing = 0.1
    assert model.text_loss(out, batch) != unsmoothed


def test_checkpoint_of_other_charset_or_not_a_model_is_refused(tmp_path):
    model = create_model("crnn", {}, Charset("0123456789"), InputSpec(32, 160))
    model.save_pretrained(tmp_path / "digits")
    with pytest.raises(ValueError, match="charset"):
        PlateRecognizer.from_pretrained(tmp_path / "digits", expected_charset=CHARSET)
    with pytest.raises(ValueError, match="expected 'attn'"):
        PlateRecognizer.from_pretrained(tmp_path / "digits", expected_arch="attn")
    (tmp_path / "junk").mkdir()
    with pytest.raises(ValueError, match="not a model folder"):
        PlateRecognizer.from_pretrained(tmp_path / "junk")
    (tmp_path / "junk" / "config.json").write_text((tmp_path / "digits" / "config.json").read_text())
    (tmp_path / "junk" / "model.safetensors").write_bytes(b"\x80\x04pickle? no")
    with pytest.raises(ValueError, match="safetensors"):
        PlateRecognizer.from_pretrained(tmp_path / "junk")


def test_save_pretrained_replaces_atomically(tmp_path):
    model = create_model("crnn", {}, CHARSET, InputSpec(32, 160))
    model.save_pretrained(tmp_path / "best")
    model.save_pretrained(tmp_path / "best")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]
    assert sorted(p.name for p in (tmp_path / "best").iterdir()) == ["config.json", "model.safetensors"]


def test_weights_of_another_charset_say_charset_and_both(tmp_path):
    """Weights of one charset loaded with another say "charset" and show both, not a tensor size
    mismatch (issue 26, item 11): a config.json of another charset, an older weights file without
    the charset recorded, a fine-tune into a model of another charset."""
    import json
    import shutil

    from safetensors.torch import load_file, save_file

    from configs import ConfigError
    from tests._inference_fixtures import TINY_INPUT, TINY_OPTIONS, make_tiny_model
    from training.finetune import load_init_weights

    digits = make_tiny_model(tmp_path / "digits", Charset("0123456789"))
    both = r"'0123456789' \(10 characters\).*'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ' \(36 characters\)"
    with pytest.raises(ValueError, match="charset differs: the model reads " + both):
        PlateRecognizer.from_pretrained(digits, expected_charset=CHARSET)
    edited = tmp_path / "edited"
    shutil.copytree(digits, edited)
    cfg = json.loads((edited / "config.json").read_text())
    (edited / "config.json").write_text(json.dumps({**cfg, "charset": CHARSET.chars}))
    with pytest.raises(ValueError, match="does not match its config .*charset differs: the weights were saved for "
                                         + both):
        PlateRecognizer.from_pretrained(edited)
    save_file(load_file(edited / "model.safetensors"), str(edited / "model.safetensors"), metadata={"arch": "crnn"})
    with pytest.raises(ValueError, match=r"charset differs: the weights read 10 characters, config.json says "
                                         r"'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ' \(36 characters\)"):
        PlateRecognizer.from_pretrained(edited)  # an older file: the charset size, from the tensors
    # Other model options are not called a charset.
    (edited / "config.json").write_text(json.dumps({**cfg, "model": {**cfg["model"], "rnn_hidden_size": 32}}))
    with pytest.raises(ValueError, match="size mismatch") as e:
        PlateRecognizer.from_pretrained(edited)
    assert "charset" not in str(e.value)
    model = create_model("crnn", TINY_OPTIONS, CHARSET, TINY_INPUT)
    with pytest.raises(ConfigError, match="--init-from .*charset differs: the model folder reads " + both):
        load_init_weights(model, digits)
