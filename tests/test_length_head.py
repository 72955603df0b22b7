"""The attention model's length head (model.length_loss_weight): its loss, decoding that stops where
the head says the plate stops, old folders without it, fine-tuning into it, and its ONNX export."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from configs import ConfigError
from models import PlateRecognizer, create_model
from models.attn import NEG
from tests._attn_heads import CHARSET, SPEC, TEXTS, TINY, images, train_on_one_batch

HEAD = {**TINY, "length_loss_weight": 0.5}


@pytest.fixture(scope="module")
def trained():
    """A tiny model with a length head trained on one fixed batch: it reads it, EOS included."""
    return train_on_one_batch(HEAD)


def favour_length(model, length: int, margin: float = 30.0) -> None:
    """Hand-set the length head: length ``length`` for every image, the others ``margin`` below it."""
    last = model.length_head.body[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(-margin)
        last.bias[length] = 0.0


def test_length_loss_is_the_cross_entropy_of_the_label_lengths():
    torch.manual_seed(0)
    model = create_model("attn", HEAD, CHARSET, SPEC)
    out = model(images(), TEXTS)
    assert out["length_logits"].shape == (4, TINY["max_label_length"] + 1)
    batch = {"texts": TEXTS}
    without = {k: v for k, v in out.items() if k != "length_logits"}
    expected = 0.5 * F.cross_entropy(out["length_logits"], torch.tensor([4, 2, 5, 2]))
    torch.testing.assert_close(model.text_loss(out, batch) - model.text_loss(without, batch), expected)
    model.loss(out, batch).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.length_head.parameters())


def test_no_length_head_by_default_and_weights_are_checked():
    assert create_model("attn", TINY, CHARSET, SPEC).length_head is None
    with pytest.raises(ValueError, match="model.length_loss_weight"):
        create_model("attn", {**TINY, "length_loss_weight": -1}, CHARSET, SPEC)
    with pytest.raises(ValueError, match="model.length_weight"):
        create_model("attn", {**HEAD, "length_weight": -0.5}, CHARSET, SPEC)


def test_the_rule_takes_a_shorter_prefix_when_the_length_head_says_so():
    """Greedy reads 'ABC' (EOS at step 3); 'AB' + EOS at step 2 is less likely to the decoder, but
    the length head says 2 characters: the joint score reads 'AB'."""
    model = create_model("attn", HEAD, CHARSET, SPEC)
    steps, c = model.max_steps, model.num_classes
    logp = torch.full((1, steps, c), -20.0)
    a, b, cc = (model.tokenizer.charset.chars.index(ch) + 1 for ch in "ABC")
    logp[0, 0, a], logp[0, 1, b] = -0.1, -0.1
    logp[0, 2, cc], logp[0, 2, 0] = -0.5, -1.5  # step 2: C, or EOS (less likely)
    logp[0, 3, 0] = -0.05
    logp[0, 4:] = NEG
    logp[0, 4:, 0] = 0.0  # greedy's rows after its EOS read EOS
    uniform = torch.full((1, steps), -math.log(steps))
    assert model.decode_text({"log_probs": logp})[0].text == "ABC"
    assert torch.equal(model._stop_by_length(logp, uniform), logp)  # the greedy reading wins: unchanged

    says_two = torch.full((1, steps), -5.0)
    says_two[0, 2] = -0.1  # AB: -0.2 - 1.5 - 0.1 = -1.8 against ABC: -0.75 - 5 = -5.75
    cut = model._stop_by_length(logp, says_two)
    pred = model.decode_text({"log_probs": cut})[0]
    assert pred.text == "AB"
    assert pred.confidence == pytest.approx(math.exp(-0.1 - 0.1 - 1.5), rel=1e-5)  # characters + EOS
    assert torch.equal(cut[0, :2], logp[0, :2]) and (cut[0, 3:].argmax(-1) == 0).all()


def test_a_trained_model_reads_its_batch_and_the_head_can_cut_it(trained):
    model, x = trained
    assert model.predict(x)
    out = model(x)
    assert out["length_logits"].argmax(-1).tolist() == [4, 2, 5, 2]
    assert [p.text for p in model.decode(out)] == TEXTS
    head = {k: v.clone() for k, v in model.length_head.state_dict().items()}
    try:
        favour_length(model, 2)
        assert [p.text for p in model.predict(x)] == ["AB", "X9", "KK", "7Z"]  # greedy: shorter prefixes
        model.config.length_weight = 0.0  # weight 0: the head is not consulted
        assert [p.text for p in model.predict(x)] == TEXTS
        model.config.length_weight = 1.0
        # text_log_prob scores a text as decoding does: + length_weight x the head's log-prob of its length.
        with_head = model.text_log_prob(x, TEXTS)
        model.config.length_weight = 0.0
        plain = model.text_log_prob(x, TEXTS)
        torch.testing.assert_close(with_head - plain, torch.tensor([-30.0, 0.0, -30.0, 0.0]), atol=1e-3, rtol=0)
    finally:
        model.config.length_weight = 1.0
        model.length_head.load_state_dict(head)


def test_beam_search_with_an_indifferent_length_head_is_plain_beam_search(trained):
    """A head that gives every length the same log-prob changes no reading (the best finished beam)."""
    model, x = trained
    head = {k: v.clone() for k, v in model.length_head.state_dict().items()}
    try:
        with torch.no_grad():
            model.length_head.body[-1].weight.zero_()
            model.length_head.body[-1].bias.zero_()
            memory = model.encode(x)
            kv = [layer.memory_kv(memory) for layer in model.layers]
            plain = model._decode_beam(kv, 4, 3)
            rescored = model._decode_beam(kv, 4, 3, model._length_bonus(memory))
            torch.testing.assert_close(rescored, plain)
            favour_length(model, 2)
            texts = [p.text for p in model.decode_text({"log_probs": model.generate(x, beam_width=3)})]
        assert texts[1] == "X9" and texts[3] == "7Z"
        assert all(len(t) <= len(full) for t, full in zip(texts, TEXTS))
    finally:
        model.length_head.load_state_dict(head)


def test_folders_without_the_head_load_as_before_and_with_it_round_trip(trained, tmp_path):
    torch.manual_seed(1)
    old = create_model("attn", TINY, CHARSET, SPEC).eval()
    folder = old.save_pretrained(tmp_path / "old")
    cfg = json.loads((folder / "config.json").read_text())
    for key in ("length_loss_weight", "length_weight"):  # a folder written before the head existed
        del cfg["model"][key]
    (folder / "config.json").write_text(json.dumps(cfg))
    loaded = PlateRecognizer.from_pretrained(folder)
    assert loaded.length_head is None
    x = images(seed=3)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)["log_probs"], old(x)["log_probs"], rtol=0, atol=0)

    model, x = trained
    loaded = PlateRecognizer.from_pretrained(model.save_pretrained(tmp_path / "new"))
    assert loaded.config.length_loss_weight == 0.5 and loaded.length_head is not None
    assert [p.text for p in loaded.predict(x)] == [p.text for p in model.predict(x)]

    # Head weights that the config does not build are an error, never dropped in silence.
    cfg = json.loads((tmp_path / "new" / "config.json").read_text())
    cfg["model"]["length_loss_weight"] = 0.0
    (tmp_path / "new" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="unexpected.*length_head"):
        PlateRecognizer.from_pretrained(tmp_path / "new")


def test_init_from_a_model_without_the_head_starts_it_fresh(tmp_path):
    from training.finetune import load_init_weights

    torch.manual_seed(0)
    without = create_model("attn", TINY, CHARSET, SPEC)
    with_head = create_model("attn", HEAD, CHARSET, SPEC)
    without.save_pretrained(tmp_path / "without")
    with_head.save_pretrained(tmp_path / "with")

    target = create_model("attn", HEAD, CHARSET, SPEC)
    fresh = {k: v.clone() for k, v in target.state_dict().items() if k.startswith("length_head.")}
    info = load_init_weights(target, str(tmp_path / "without"))
    assert info["init_length_head"] == "fresh" and info["init_class_head"] == "copied"
    for k, v in target.state_dict().items():
        assert torch.equal(v, fresh[k] if k.startswith("length_head.") else without.state_dict()[k]), k

    plain = create_model("attn", TINY, CHARSET, SPEC)
    assert load_init_weights(plain, str(tmp_path / "with"))["init_length_head"] == "dropped"
    assert load_init_weights(target, str(tmp_path / "with"))["init_length_head"] == "copied"
    other = create_model("attn", {**HEAD, "dec_layers": 2}, CHARSET, SPEC)  # any other missing tensor
    with pytest.raises(ConfigError, match="do not fit"):
        load_init_weights(other, str(tmp_path / "without"))


def test_onnx_export_reads_with_the_length_head(trained, tmp_path):
    import export
    from inference import load_reader

    model, x = trained
    head = {k: v.clone() for k, v in model.length_head.state_dict().items()}
    try:
        favour_length(model, 2)
        folder = model.save_pretrained(tmp_path / "attn")
    finally:
        model.length_head.load_state_dict(head)
    onnx_path = tmp_path / "attn.onnx"
    assert export.main(["--weights", str(folder), "--output", str(onnx_path)]) == 0
    pt, ox = load_reader(folder), load_reader(onnx_path)
    ref, got = pt.forward(x), ox.forward(x)
    np.testing.assert_allclose(got["log_probs"], ref["log_probs"].numpy(), atol=1e-4, rtol=1e-4)
    texts = [p.text for p in model.decode_text({"log_probs": torch.from_numpy(got["log_probs"])})]
    assert texts == ["AB", "X9", "KK", "7Z"]


def test_stop_config_adds_the_head_to_its_init_model(tmp_path, capsys):
    """configs/stop_attn.yaml: train.init_model_options turns the head on over the init model's
    options; a model.* override on the command line wins; an unknown option is named."""
    from training import run_config

    torch.manual_seed(0)
    init = create_model("attn", TINY, CHARSET, SPEC).save_pretrained(tmp_path / "init")
    config = "configs/stop_attn.yaml"
    cfg = run_config(config=config, init_from=init, output_dir=tmp_path / "r")[0]
    assert cfg.model.length_loss_weight == 0.5 and cfg.model.d_model == TINY["d_model"]
    assert "model.length_loss_weight=0.0 -> 0.5 (train.init_model_options)" in capsys.readouterr().out
    cfg = run_config(config=config, overrides=["model.length_loss_weight=0.2"], init_from=init,
                     output_dir=tmp_path / "r")[0]
    assert cfg.model.length_loss_weight == 0.2
    with pytest.raises(ConfigError, match="train.init_model_options: 'length_los' is no attn model option"):
        run_config(config=config, overrides=["train.init_model_options={length_los: 0.5}"], init_from=init,
                   output_dir=tmp_path / "r")
