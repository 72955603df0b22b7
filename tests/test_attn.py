"""Attention decoder: both encoder kinds, decoding modes, kv-cache, config errors, end-to-end training."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from configs import ConfigError, load_config
from data.text import Charset
from models import create_model, InputSpec, PlateRecognizer
from models.attn import cloze_mask, ordering_masks

ROOT = Path(__file__).resolve().parents[1]
CHARSET = Charset()
SPEC = InputSpec(32, 64)
TINY_DEC = {"d_model": 32, "dec_heads": 2, "dec_mlp_ratio": 2.0, "max_label_length": 8, "dropout": 0.0}
TINY_CNN = {"encoder": "resnet18", "encoder_stage": 1, **TINY_DEC}  # stride 4: 8x16 tokens at 32x64
TINY_VIT = {"encoder": "vit_tiny_patch16_224", "patch_size": [8, 8], "vit_dim": 32, "vit_depth": 1,
            "vit_heads": 2, **TINY_DEC}  # 4x8 tokens at 32x64
TEXTS = ["AB12", "X9", "KK110", "7Z"]


def images(n: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, SPEC.height, SPEC.width, generator=g) * 2 - 1


def fit(options: dict, steps: int) -> tuple:
    """A tiny model trained on one fixed batch: it learns to read it (so decoding stops at EOS)."""
    torch.manual_seed(0)
    model = create_model("attn", options, CHARSET, SPEC)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x, batch = images(), {"texts": TEXTS}
    losses = []
    for _ in range(steps):
        loss = model.loss(model(x, TEXTS), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return model, x, losses


@pytest.fixture(scope="module")
def trained():
    """Tiny CNN model, trained with permutations so every decoding mode is meaningful."""
    return fit({**TINY_CNN, "perm_num": 4}, steps=80)


@pytest.mark.parametrize("options,grid", [(TINY_CNN, (8, 16)), (TINY_VIT, (4, 8))], ids=["cnn", "vit"])
def test_shapes_and_few_step_training(options, grid):
    model, x, losses = fit(options, steps=25)
    assert model.encoder.grid == grid
    assert model.encode(x).shape == (4, grid[0] * grid[1], 32)
    model.train()
    assert model(x, TEXTS)["logits"].shape == (1, 4, 6, len(CHARSET) + 1)  # longest label 5 + EOS
    model.eval()
    out = model(x)
    assert out["log_probs"].shape == (4, 9, len(CHARSET) + 1)  # max_label_length 8 + EOS
    assert out["country_logits"].shape == (4, 28) and out["rows_logits"].shape == (4, 2)
    assert losses[-1] < 0.6 * losses[0]
    preds = model.decode(out)
    assert len(preds) == 4
    for p in preds:
        assert len(p.char_confidences) == len(p.text)
        assert 0.0 <= p.confidence <= 1.0


@pytest.mark.parametrize("options", [TINY_CNN, TINY_VIT, {**TINY_CNN, "perm_num": 3, "dec_layers": 2,
                                                          "enc_layers": 1}], ids=["cnn", "vit", "perm-2layers"])
def test_every_parameter_gets_a_gradient(options):
    """DDP needs no find_unused_parameters: one training step reaches every parameter."""
    model = create_model("attn", options, CHARSET, SPEC)
    batch = {"texts": TEXTS, "countries": ["DE", "FR", "EU", "unknown"], "rows": torch.tensor([1, 2, 1, 1])}
    model.loss(model(images(), TEXTS), batch).backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused


def test_confidences_follow_the_tokenizer(trained):
    model, x, _ = trained
    with torch.no_grad():
        out = model(x)
    preds = model.decode(out)
    assert [p.text for p in preds] == TEXTS  # the fixed batch is learnt
    probs = out["log_probs"].exp()
    for i, p in enumerate(preds):
        steps = len(p.text) + 1  # characters, then EOS
        chosen = probs[i, :steps].max(-1).values
        assert p.char_confidences == pytest.approx(chosen[:-1].tolist(), rel=1e-5)
        assert p.confidence == pytest.approx(float(chosen.prod()), rel=1e-4)  # EOS probability included


def test_cached_decoding_equals_uncached(trained):
    model, x, _ = trained
    with torch.no_grad():
        cached = model.generate(x, use_cache=True, refine_iters=0)
        uncached = model.generate(x, use_cache=False, refine_iters=0)
    assert torch.allclose(cached, uncached, atol=1e-4)
    assert [p.text for p in model.decode({"log_probs": cached})] == [p.text for p in model.decode({"log_probs": uncached})]
    # An untrained model (no early EOS, every step used) agrees too.
    fresh = create_model("attn", TINY_CNN, CHARSET, SPEC).eval()
    with torch.no_grad():
        assert torch.allclose(fresh.generate(x, use_cache=True), fresh.generate(x, use_cache=False), atol=1e-4)


def test_beam_width_one_is_greedy(trained):
    model, x, _ = trained
    x = torch.cat([x, images(4, seed=1)])  # also unseen images, where beams may disagree with greedy
    with torch.no_grad():
        greedy = model.decode({"log_probs": model.generate(x, beam_width=1, refine_iters=0)})
        beam1 = model.decode({"log_probs": model.generate(x, beam_width=1, refine_iters=0, use_cache=True)})
        beam1_path = model.decode({"log_probs": model._decode_beam(  # the beam-search code path itself, width 1
            [layer.memory_kv(model.encode(x)) for layer in model.layers], len(x), 1)})
        beam4 = model.decode({"log_probs": model.generate(x, beam_width=4, refine_iters=0)})
    assert [p.text for p in beam1_path] == [p.text for p in greedy] == [p.text for p in beam1]
    assert [p.confidence for p in beam1_path] == pytest.approx([p.confidence for p in greedy], rel=1e-4)
    assert [p.text for p in beam4[:4]] == TEXTS


def test_nar_and_refinement(trained):
    model, x, _ = trained
    with torch.no_grad():
        for kw in ({"decoding": "nar", "refine_iters": 0}, {"decoding": "nar", "refine_iters": 2},
                   {"decoding": "ar", "refine_iters": 1}):
            out = model.generate(x, **kw)
            assert out.shape == (4, 9, len(CHARSET) + 1)
            assert [p.text for p in model.decode({"log_probs": out})] == TEXTS, kw


def test_ordering_and_cloze_masks():
    steps = 5
    orders = [torch.arange(steps), torch.tensor([3, 2, 1, 0, 4]), torch.tensor([2, 0, 3, 1, 4])]
    canonical, reverse, other = ordering_masks(orders, steps)
    assert torch.equal(canonical, torch.ones(steps, steps, dtype=torch.bool).tril())  # left to right
    assert canonical[:, 0].all() and reverse[:, 0].all() and other[:, 0].all()  # BOS always visible
    # reversed: output 3 comes first (sees BOS only), output 0 sees outputs 1..3 (content 2..4)
    assert reverse[3].tolist() == [True, False, False, False, False]
    assert reverse[0].tolist() == [True, False, True, True, True]
    # 2, 0, 3, 1: output 1 comes last but for EOS and sees outputs 2, 0, 3 (content 3, 1, 4)
    assert other[1].tolist() == [True, True, False, True, True]
    assert cloze_mask(3, "cpu").tolist() == [[True, False, True], [True, True, False], [True, True, True]]


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ValueError, match="model.encoder.*resnet18x"):
        create_model("attn", {"encoder": "resnet18x"}, CHARSET, SPEC)
    with pytest.raises(ConfigError, match="model.encoder"):
        load_config("attn", overrides=["model.encoder=nosuchnet"])
    with pytest.raises(ValueError, match=r"model.patch_size=8x8.*data.image_height x data.image_width = 30x64"):
        create_model("attn", {**TINY_VIT}, CHARSET, InputSpec(30, 64))
    with pytest.raises(ValueError, match="model.encoder_stage=9"):
        create_model("attn", {"encoder_stage": 9}, CHARSET, SPEC)
    with pytest.raises(ConfigError, match="model.perm_num"):
        load_config("attn", overrides=["model.decoding=nar"])
    with pytest.raises(ConfigError, match="model.beam_width"):
        load_config("attn", overrides=["model.decoding=nar", "model.perm_num=6", "model.beam_width=3"])
    with pytest.raises(ConfigError, match="model.max_label_length"):
        load_config("attn", overrides=["model.max_label_length=100"])
    model = create_model("attn", TINY_CNN, CHARSET, SPEC)
    model.check_label_length(8, "data.train")
    with pytest.raises(ValueError, match="data.train.*9 characters.*model.max_label_length=8"):
        model.check_label_length(9, "data.train")
    with pytest.raises(ValueError, match="model.max_label_length=8"):
        model(images(1), ["ABCDEFGHI"])


TINY_RUN = [
    "model.encoder=resnet18", "model.encoder_stage=1", "model.d_model=32", "model.dec_heads=2",
    "model.dec_mlp_ratio=2", "data.image_height=32", "data.image_width=64", "data.num_workers=0",
    "data.synth_val_size=13", "data.synth_test_size=11", "train.batch_size=8", "train.eval_batch_size=4",
    "train.warmup_steps=1", "train.eval_every=2", "train.checkpoint_every=2", "train.log_every=1",
    "train.trackers=[]",
]


@pytest.mark.slow
def test_train_accelerate_attn_end_to_end(tmp_path):
    run_dir = tmp_path / "run"
    args = [sys.executable, "train_accelerate.py", "--arch", "attn", "--output-dir", str(run_dir), *TINY_RUN,
            f"data.synth_dir={tmp_path / 'synth'}", "train.max_steps=3", "model.perm_num=2", "model.refine_iters=1"]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((run_dir / "test_metrics.json").read_text())
    assert report["arch"] == "attn" and report["steps"] == 3
    (test,) = report["test"].values()
    assert test["overall"]["n"] == 11 and set(test["by_rows"]) <= {"1", "2"}
    model = PlateRecognizer.from_pretrained(run_dir / "best", expected_arch="attn")
    assert model.config.refine_iters == 1 and model.input_spec == InputSpec(32, 64)

    # A label longer than the decoder's positions stops the run before training, naming the key.
    proc = subprocess.run([*args[:5], str(tmp_path / "short"), *TINY_RUN, f"data.synth_dir={tmp_path / 'synth'}",
                           "model.max_label_length=5"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "model.max_label_length" in proc.stderr
    assert not (tmp_path / "short" / "checkpoint").exists()


@pytest.mark.parametrize("options", [TINY_CNN, TINY_VIT], ids=["cnn", "vit"])
def test_weights_from_another_input_size_resample_the_positions(options):
    torch.manual_seed(0)
    source = create_model("attn", options, CHARSET, SPEC)
    taller = create_model("attn", options, CHARSET, InputSpec(64, 64))
    state = taller.weights_from(source)
    taller.load_state_dict(state)  # strict: every shape fits
    grid = taller.encoder.grid
    assert grid[0] == 2 * source.encoder.grid[0] and grid[1] == source.encoder.grid[1]
    if "vit_dim" in options:
        pos = taller.encoder.vit.pos_embed.detach().reshape(grid[0], grid[1], -1)
        old = source.encoder.vit.pos_embed.detach().reshape(*source.encoder.grid, -1)
    else:
        pos = taller.encoder.row_pos.detach()[:, 0]
        old = source.encoder.row_pos.detach()[:, 0]
        assert torch.equal(taller.encoder.col_pos, source.encoder.col_pos)  # same width: copied
    # Doubled rows: each old row's position spans two new rows, the outer ones exactly.
    assert torch.allclose(pos[0], old[0], atol=1e-2) and torch.allclose(pos[-1], old[-1], atol=1e-2)
    same = {k for k, v in source.state_dict().items() if "pos" not in k}
    assert all(torch.equal(state[k], source.state_dict()[k]) for k in same)
    # Same input size: the weights come back unchanged.
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in source.weights_from(source).items())
