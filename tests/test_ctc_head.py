"""The attention model's CTC head (model.ctc_loss_weight): its loss, joint CTC-attention scoring of
one-row readings, old folders without it, fine-tuning into it, and its ONNX export."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from models import PlateRecognizer, create_model
from models.attn import NEG
from tests._attn_heads import CHARSET, SPEC, TEXTS, TINY, images, train_on_one_batch

HEAD = {**TINY, "ctc_loss_weight": 1.0}


@pytest.fixture(scope="module")
def trained():
    """A tiny model with a CTC head trained on one fixed batch: its decoder reads the batch."""
    model, x = train_on_one_batch(HEAD)
    assert [p.text for p in model.predict(x)] == TEXTS
    return model, x


def ctc_reads_only(model, char: str) -> dict:
    """Make the CTC head read ``char`` on every plate, whatever it sees; returns its old weights."""
    saved = {k: v.clone() for k, v in model.ctc_head.state_dict().items()}
    with torch.no_grad():
        model.ctc_head.fc.weight.zero_()
        model.ctc_head.fc.bias.fill_(0.0)
        model.ctc_head.fc.bias[CHARSET.chars.index(char) + 1] = 30.0
    return saved


def test_no_ctc_head_by_default_and_options_are_checked():
    assert create_model("attn", TINY, CHARSET, SPEC).ctc_head is None
    with pytest.raises(ValueError, match="model.ctc_loss_weight"):
        create_model("attn", {**TINY, "ctc_loss_weight": -1}, CHARSET, SPEC)
    with pytest.raises(ValueError, match="model.ctc_weight"):
        create_model("attn", {**HEAD, "ctc_weight": 1.5}, CHARSET, SPEC)


def test_the_head_reads_a_step_sequence_from_the_token_columns():
    model = create_model("attn", HEAD, CHARSET, SPEC)
    grid = model.encoder.grid
    out = model(images(2))
    assert out["ctc_logits"].shape == (2, 2 * grid[1], len(CHARSET) + 1)  # two steps per column, blank first


def test_the_ctc_loss_trains_the_head_on_one_row_plates_only():
    torch.manual_seed(0)
    model = create_model("attn", HEAD, CHARSET, SPEC)
    x = images()
    out = model(x, TEXTS)
    plain = create_model("attn", TINY, CHARSET, SPEC)
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("ctc_head.")})
    without = plain.text_loss(plain(x, TEXTS), {"texts": TEXTS}).item()
    one_row = model.text_loss(out, {"texts": TEXTS, "rows": torch.tensor([1, 1, 1, 1])})
    two_row = model.text_loss(out, {"texts": TEXTS, "rows": torch.tensor([2, 2, 2, 2])}).item()
    assert one_row.item() > without + 0.1  # an untrained head's CTC loss adds to the decoder's
    assert two_row == pytest.approx(without, abs=1e-5)  # no one-row plate: nothing added
    model.zero_grad()
    one_row.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.ctc_head.parameters())


def test_the_prefix_scorer_ends_at_the_ctc_log_likelihood():
    from data.tokenizers import CTCTokenizer
    from models.heads import CTCPrefixScorer, ctc_log_likelihood

    tok = CTCTokenizer(CHARSET)
    logits = torch.randn(3, 12, len(CHARSET) + 1, generator=torch.Generator().manual_seed(0)) * 2
    texts = ["AB1", "77", ""]  # a repeat needs a blank between; the empty reading is blanks only
    scorer = CTCPrefixScorer(logits)
    prefix = []
    for i in range(3):
        scores, r_nonblank, r_blank = scorer.extend()
        prefix.append(scores)
        scorer.advance(torch.tensor([CHARSET.chars.index(t[i]) + 1 if i < len(t) else 0 for t in texts]),
                       scores, r_nonblank, r_blank)
    ended = scorer.extend()[0][:, 0]
    assert torch.allclose(ended, ctc_log_likelihood(logits, texts, tok.encode), atol=1e-4)
    # a prefix is at least as likely as any reading that begins with it
    assert bool((prefix[1][0, CHARSET.chars.index("B") + 1] >= ended[0] - 1e-4).all())


def test_the_prefix_scorer_may_begin_at_the_prefix_length():
    from models.heads import CTCPrefixScorer

    logits = torch.randn(2, 6, len(CHARSET) + 1, generator=torch.Generator().manual_seed(1)) * 2
    texts = ["A7A77", "12345"]  # 5 characters in 6 steps: the last prefixes fit only just
    scorer = CTCPrefixScorer(logits)
    for i in range(len(texts[0]) + 2):  # and past where any g + c fits
        full, late = scorer.extend(), scorer.extend(start=i)
        for a, b in zip(full, late):
            assert torch.equal(a.isinf(), b.isinf())
            assert torch.allclose(a[a.isfinite()], b[b.isfinite()], atol=1e-5)
        if i < len(texts[0]):
            scorer.advance(torch.tensor([CHARSET.chars.index(t[i]) + 1 for t in texts]), *full)


def test_greedy_joint_decoding_follows_a_sure_ctc_head_on_one_row_plates(trained):
    model, x = trained
    saved = ctc_reads_only(model, "7")
    try:
        with torch.no_grad():
            joint = model.generate(x, one_row=torch.ones(4, dtype=torch.bool))
            assert [p.text for p in model.decode({"log_probs": joint})] == ["7"] * 4
            assert torch.allclose(torch.logsumexp(joint[:, :2], -1), torch.zeros(4, 2), atol=1e-4)  # distributions
            assert (joint[:, 2:] == model._eos_rows(4, model.max_steps - 2, joint)).all()  # EOS rows after "7" + EOS
            # two-row plates read by the decoder alone, exactly as without the head's weight
            two = model.generate(x, one_row=torch.zeros(4, dtype=torch.bool))
            model.config = dataclasses.replace(model.config, ctc_weight=0.0)
            alone = model.generate(x)
            assert torch.equal(two, alone) and [p.text for p in model.decode({"log_probs": two})] == TEXTS
            assert [p.text for p in model.predict(x)] == TEXTS
    finally:
        model.config = dataclasses.replace(model.config, ctc_weight=0.5)
        model.ctc_head.load_state_dict(saved)


def test_beam_search_reads_the_candidate_of_the_higher_joint_score(trained):
    """Beam search and a weakly sure CTC head: the best beam or the CTC reading, whichever has
    the higher joint score, recomputed from the two scores plate by plate."""
    from models.heads import ctc_log_likelihood

    model, x = trained
    saved = ctc_reads_only(model, "7")
    try:
        with torch.no_grad():
            model.ctc_head.fc.bias.mul_(0.02)  # "7" barely above the other classes
            out = model.generate(x, beam_width=2, one_row=torch.ones(4, dtype=torch.bool))
            read = [p.text for p in model.decode({"log_probs": out})]
            ctc_logits = model(x)["ctc_logits"]
            model.config = dataclasses.replace(model.config, ctc_weight=0.0)
            joint = {t: 0.5 * model.text_log_prob(x, [t] * 4) + 0.5 * ctc_log_likelihood(ctc_logits, [t] * 4,
                                                                                          model.ctc_tokenizer.encode)
                     for t in ("7", *TEXTS)}
    finally:
        model.config = dataclasses.replace(model.config, ctc_weight=0.5)
        model.ctc_head.load_state_dict(saved)
    expected = [TEXTS[i] if joint[TEXTS[i]][i] >= joint["7"][i] else "7" for i in range(4)]
    assert read == expected
    assert 0 < read.count("7") < 4  # both outcomes occur: the test tells the rule from always or never


def test_text_log_prob_mixes_the_ctc_log_likelihood_on_one_row_plates(trained):
    model, x = trained
    with torch.no_grad():
        joint = model.text_log_prob(x, TEXTS)
        model.config = dataclasses.replace(model.config, ctc_weight=0.0)
        decoder = model.text_log_prob(x, TEXTS)
        model.config = dataclasses.replace(model.config, ctc_weight=0.5)
        from models.heads import ctc_log_likelihood
        ctc = ctc_log_likelihood(model(x)["ctc_logits"], TEXTS, model.ctc_tokenizer.encode)
        one_row = model(x)["rows_logits"].argmax(-1) == 0
    expected = torch.where(one_row, 0.5 * decoder + 0.5 * ctc, decoder)
    assert torch.allclose(joint, expected, atol=1e-4)
    assert all(math.isfinite(v) for v in joint.tolist())


def test_old_folders_have_no_head_and_a_fine_tune_starts_it_fresh(tmp_path):
    import json

    from training.finetune import load_init_weights

    torch.manual_seed(0)
    without = create_model("attn", TINY, CHARSET, SPEC)
    without.save_pretrained(tmp_path / "old")
    cfg = json.loads((tmp_path / "old" / "config.json").read_text())
    for key in ("ctc_loss_weight", "ctc_weight"):  # a folder written before the head existed
        cfg["model"].pop(key)
    (tmp_path / "old" / "config.json").write_text(json.dumps(cfg))
    assert PlateRecognizer.from_pretrained(tmp_path / "old").ctc_head is None

    target = create_model("attn", HEAD, CHARSET, SPEC)
    fresh = {k: v.clone() for k, v in target.state_dict().items() if k.startswith("ctc_head.")}
    info = load_init_weights(target, str(tmp_path / "old"))
    assert info["init_ctc_head"] == "fresh" and info["init_class_head"] == "copied"
    for k, v in target.state_dict().items():
        assert torch.equal(v, fresh[k] if k.startswith("ctc_head.") else without.state_dict()[k]), k
    target.save_pretrained(tmp_path / "with")
    assert load_init_weights(create_model("attn", TINY, CHARSET, SPEC), str(tmp_path / "with"))["init_ctc_head"] == "dropped"


def test_onnx_export_holds_joint_decoding(trained, tmp_path, capsys):
    """The exported graph scores one-row readings with the CTC head as PyTorch does: with a head
    sure of "7" and a rows head sure of one-row plates, both read "7" where the decoder alone
    reads the batch's texts."""
    import export
    from inference import load_reader

    model, x = trained
    saved = ctc_reads_only(model, "7")
    rows = {k: v.clone() for k, v in model.class_head.rows.state_dict().items()}
    try:
        with torch.no_grad():
            model.class_head.rows.weight.zero_()
            model.class_head.rows.bias.copy_(torch.tensor([10.0, -10.0]))  # ROW_CLASSES[0]: one row
        model.save_pretrained(tmp_path / "m")
    finally:
        model.ctc_head.load_state_dict(saved)
        model.class_head.rows.load_state_dict(rows)
    assert export.main(["--weights", str(tmp_path / "m"), "--output", str(tmp_path / "m.onnx")]) == 0
    assert "texts equal: True" in capsys.readouterr().out
    onnx, torch_reader = load_reader(tmp_path / "m.onnx"), load_reader(tmp_path / "m")
    assert onnx.config["model"]["ctc_weight"] == 0.5
    assert [p.text for p in onnx.predict_tensor(x)] == [p.text for p in torch_reader.predict_tensor(x)] == ["7"] * 4
    assert [p.text for p in model.predict(x)] == TEXTS  # the model before the change reads the batch
