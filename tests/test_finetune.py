"""Fine-tuning: --init-from a saved model, real + synthetic mixing, resume, and mismatches named."""

from __future__ import annotations

import hashlib
import shutil
import sys

import pytest
import yaml

from configs import ConfigError
from data.synth import write_synthetic_dataset
from test_train import TINY, read_log, run, trained_params

pytestmark = pytest.mark.slow  # trains or runs whole programs: `pytest -m "not slow"` skips it

# The model options and input size of a fine-tune come from the init model, not the command line.
MODEL_KEYS = [k for k in TINY if k.startswith(("model.", "data.image_"))]
RUN_TINY = [k for k in TINY if k not in MODEL_KEYS]


@pytest.fixture(scope="module")
def init_model(tmp_path_factory):
    """A tiny CRNN trained for one step (its best/ folder), tiny synthetic sets, and 'real' crops."""
    d = tmp_path_factory.mktemp("finetune")
    synth = f"data.synth_dir={d / 'synth'}"
    run([sys.executable, "train_accelerate.py", "--arch", "crnn", "--output-dir", str(d / "init_run"),
         *TINY, synth, "train.max_steps=1", "train.trackers=[]"])
    real = write_synthetic_dataset(d / "real", n=24, seed=5, two_row_prob=0.0)
    return d / "init_run" / "best", real, synth


def test_finetune_starts_from_the_init_weights_with_mixed_data_then_resumes(init_model, tmp_path):
    init, real, synth = init_model
    ft = tmp_path / "ft"
    proc = run([sys.executable, "train_accelerate.py", "--arch", "crnn", "--init-from", str(init),
                "--output-dir", str(ft), *RUN_TINY, synth, f"data.train={real}", f"data.val={real}",
                "data.synth_mix=0.5", "train.max_steps=2", "train.lr=1.0e-9", "train.trackers=[]"])
    out = proc.stdout + proc.stderr
    # configs/crnn.yaml's model options and 64x224 input were replaced by the init model's.
    assert "model.backbone_stage=2 -> 1" in out and "data.image_width=224 -> 96" in out
    assert "data.image_height=64 -> 32" in out
    assert "initialised from" in out and "fresh optimiser" in out
    cfg = yaml.safe_load((ft / "config.yaml").read_text())
    assert cfg["train"]["init_from"] == str(init) and cfg["data"]["synth_mix"] == 0.5
    assert cfg["model"]["backbone_stage"] == 1 and cfg["data"]["image_width"] == 96
    first = read_log(ft)[0]
    assert first["step"] == 0 and first["init_from"] == str(init)
    assert first["init_sha256"] == hashlib.sha256((init / "model.safetensors").read_bytes()).hexdigest()
    # Two steps at lr 1e-9 leave the weights where the init model had them (a fresh model is far off).
    before, after = trained_params(init), trained_params(ft / "last")
    assert before.keys() == after.keys()
    for k in before:
        assert (before[k] - after[k]).abs().max() < 1e-5, k
    assert [r["step"] for r in read_log(ft) if "loss" in r] == [1, 2]

    # --resume continues the fine-tune from its own checkpoint, even with the init model gone.
    moved = tmp_path / "init_moved"
    shutil.move(str(init), moved)
    try:
        proc = run([sys.executable, "train_accelerate.py", "--resume", str(ft), "train.max_steps=4"])
    finally:
        shutil.move(str(moved), init)
    assert "resumed" in proc.stdout + proc.stderr and "initialised from" not in proc.stdout + proc.stderr
    assert [r["step"] for r in read_log(ft) if "loss" in r] == [1, 2, 3, 4]


def test_init_from_mismatches_are_named(init_model, tmp_path, capsys):
    from training import run_config

    init, real, synth = init_model

    def resolve(arch=None, *overrides, **flags):
        return run_config(arch, overrides=list(overrides), **flags)[0]

    with pytest.raises(ConfigError, match=r"--init-from .*charset"):
        resolve("crnn", "data.charset=0123456789", init_from=init)
    with pytest.raises(ConfigError, match=r"--init-from .*holds a 'crnn' model, expected 'attn'"):
        resolve("attn", init_from=init)
    with pytest.raises(ConfigError, match=r"--init-from .*not a model folder"):
        resolve("crnn", init_from=tmp_path)
    with pytest.raises(ConfigError, match=r"train.init_from.*not a model folder"):
        resolve("crnn", f"train.init_from={tmp_path}")
    with pytest.raises(ConfigError, match="--resume"):
        resolve(resume=tmp_path, init_from=init)
    # A command-line model override is kept (here one the weights still fit); file values are replaced.
    cfg = resolve("crnn", "model.dropout=0.3", init_from=init)
    assert cfg.model.dropout == 0.3 and cfg.model.backbone_stage == 1 and cfg.model.rnn_hidden_size == 16
    assert (cfg.data.image_height, cfg.data.image_width) == (32, 96)
    assert "model.rnn_hidden_size=128 -> 16" in capsys.readouterr().out
    # The input's contrast stretch comes from the folder too, unless the command line sets it.
    assert resolve("crnn", init_from=init).data.stretch_contrast is False
    assert resolve("crnn", "data.stretch_contrast=true", init_from=init).data.stretch_contrast is True
    # The polarity likewise: the folder (trained by crnn.yaml, data.read_dark_text) reads turned crops.
    assert resolve("crnn", init_from=init).data.dark_text is True
    assert resolve("crnn", "data.dark_text=false", init_from=init).data.dark_text is False
    # The folder's polarity is how the run reads: the config file's data.read_dark_text (crnn.yaml's true) is
    # unset, a command-line one kept.
    assert resolve("crnn", init_from=init).data.read_dark_text is None
    assert "data.read_dark_text=True -> None" in capsys.readouterr().out
    assert resolve("crnn", "data.read_dark_text=true", init_from=init).data.read_dark_text is True


def test_init_from_with_an_override_that_changes_the_shapes_stops_at_start(init_model, tmp_path):
    init, real, synth = init_model
    proc = run([sys.executable, "train_accelerate.py", "--arch", "crnn", "--init-from", str(init),
                "--output-dir", str(tmp_path / "r"), *RUN_TINY, synth, "model.rnn_hidden_size=32"], check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "--init-from" in proc.stderr and "do not fit" in proc.stderr
    assert not (tmp_path / "r" / "checkpoint").exists()


@pytest.mark.parametrize("arch", ["crnn", "attn"])
def test_init_from_adds_or_drops_the_country_head(tmp_path, arch):
    """A reader trained without the head gains a fresh one (the rest copied); a headless run drops it."""
    import torch

    from data.text import Charset
    from models import InputSpec, create_model
    from training.finetune import load_init_weights

    opts = {"crnn": {"backbone_stage": 1, "rnn_hidden_size": 16, "rnn_layers": 1},
            "attn": {"d_model": 32, "dec_layers": 1, "dec_heads": 2}}[arch]
    charset, spec = Charset("0123456789ABC"), InputSpec(32, 96)
    torch.manual_seed(0)
    with_head = create_model(arch, {**opts, "country_head": True}, charset, spec)
    without = create_model(arch, {**opts, "country_head": False}, charset, spec)
    with_head.save_pretrained(tmp_path / "with")
    without.save_pretrained(tmp_path / "without")

    target = create_model(arch, {**opts, "country_head": True}, charset, spec)
    fresh = {k: v.clone() for k, v in target.state_dict().items() if k.startswith("class_head.")}
    assert fresh
    info = load_init_weights(target, str(tmp_path / "without"))
    assert info["init_class_head"] == "fresh"
    for k, v in target.state_dict().items():
        expected = fresh[k] if k.startswith("class_head.") else without.state_dict()[k]
        assert torch.equal(v, expected), k

    headless = create_model(arch, {**opts, "country_head": False}, charset, spec)
    assert load_init_weights(headless, str(tmp_path / "with"))["init_class_head"] == "dropped"
    for k, v in headless.state_dict().items():
        assert torch.equal(v, with_head.state_dict()[k]), k
    assert load_init_weights(target, str(tmp_path / "with"))["init_class_head"] == "copied"
    # Another shape of head (context layers added): the whole head starts fresh.
    ctx = create_model(arch, {**opts, "country_head": True, "cls_head_layers": 1}, charset, spec)
    fresh = {k: v.clone() for k, v in ctx.state_dict().items() if k.startswith("class_head.")}
    assert load_init_weights(ctx, str(tmp_path / "with"))["init_class_head"] == "fresh"
    for k, v in ctx.state_dict().items():
        assert torch.equal(v, fresh[k] if k.startswith("class_head.") else with_head.state_dict()[k]), k

    # Any other missing weight is still a shape mismatch, named.
    other = create_model(arch, {**opts, "country_head": True,
                                **({"rnn_layers": 2} if arch == "crnn" else {"dec_layers": 2})}, charset, spec)
    with pytest.raises(ConfigError, match="do not fit"):
        load_init_weights(other, str(tmp_path / "without"))


def test_trainable_trains_only_the_named_part_and_keeps_the_rest_exactly(init_model, tmp_path):
    """train.trainable=[class_head]: the reader's weights and BatchNorm statistics stay as they were."""
    import torch
    from safetensors.torch import load_file

    init, real, synth = init_model
    ft = tmp_path / "head"
    proc = run([sys.executable, "train_accelerate.py", "--arch", "crnn", "--init-from", str(init),
                "--output-dir", str(ft), *RUN_TINY, synth, "train.max_steps=3", "train.lr=0.05",
                "train.trainable=[class_head]", "train.best_metric=country_accuracy", "train.trackers=[]"])
    assert "training only class_head" in proc.stdout + proc.stderr
    before, after = load_file(str(init / "model.safetensors")), load_file(str(ft / "last" / "model.safetensors"))
    assert before.keys() == after.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("class_head.") for k in changed), sorted(changed)[:5]
    assert any(r.get("val/country_accuracy") is not None for r in read_log(ft))
    assert (ft / "best" / "model.safetensors").is_file()


def test_trainable_and_country_best_metric_errors_are_named(init_model, tmp_path):
    init, real, synth = init_model
    proc = run([sys.executable, "train_accelerate.py", "--arch", "crnn", "--init-from", str(init),
                "--output-dir", str(tmp_path / "r"), *RUN_TINY, synth, "train.trainable=[classhead]"], check=False)
    assert proc.returncode == 2 and "train.trainable: 'classhead' names no part" in proc.stderr
    assert "class_head" in proc.stderr  # the model's parts are listed
    proc = run([sys.executable, "train_accelerate.py", "--arch", "crnn", "--init-from", str(init),
                "--output-dir", str(tmp_path / "r"), *RUN_TINY, synth, "model.country_head=false",
                "train.best_metric=country_accuracy"], check=False)
    assert proc.returncode == 2 and "no country head" in proc.stderr
    # A val set without country labels cannot pick best/ by the head.
    (no_country := tmp_path / "no_country").mkdir()
    (no_country / "images").symlink_to(real / "images")
    rows = (real / "labels.csv").read_text().splitlines()
    (no_country / "labels.csv").write_text("\n".join(",".join(r.split(",")[:2]) for r in rows) + "\n")
    proc = run([sys.executable, "train_accelerate.py", "--arch", "crnn", "--init-from", str(init),
                "--output-dir", str(tmp_path / "r"), *RUN_TINY, synth, f"data.val={no_country}",
                "train.best_metric=country_accuracy"], check=False)
    assert proc.returncode == 2 and "data.val" in proc.stderr and "no country labels" in proc.stderr
    from configs import load_config

    with pytest.raises(ConfigError, match="train.trainable must be a non-empty list"):
        load_config("crnn", None, ["train.trainable=[]"])
    assert not (tmp_path / "r" / "checkpoint").exists()


@pytest.mark.parametrize("arch", ["crnn", "attn"])
def test_init_from_grows_a_deeper_backbone_that_starts_as_the_source(tmp_path, arch):
    """resnet34 from a resnet18 model: the shared blocks copied, the extra ones the identity, so the
    grown model reads exactly what the source read; a backbone of other widths is refused."""
    import torch

    from data.text import Charset
    from models import InputSpec, create_model
    from training.finetune import load_init_weights

    key = "backbone" if arch == "crnn" else "encoder"
    opts = {"crnn": {"rnn_hidden_size": 16, "rnn_layers": 1},
            "attn": {"d_model": 32, "dec_layers": 1, "dec_heads": 2}}[arch]
    charset, spec = Charset("0123456789ABC"), InputSpec(32, 96)
    torch.manual_seed(0)
    source = create_model(arch, {**opts, key: "resnet18"}, charset, spec)
    with torch.no_grad():  # non-trivial norm statistics, as after training
        for name, buf in source.named_buffers():
            if name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
    source.save_pretrained(tmp_path / "r18")

    grown = create_model(arch, {**opts, key: "resnet34"}, charset, spec)
    info = load_init_weights(grown, str(tmp_path / "r18"))
    prefix = "backbone.body" if arch == "crnn" else "encoder.backbone.body"
    assert info["init_grown_blocks"] == [f"{prefix}.layer1.2", f"{prefix}.layer2.2", f"{prefix}.layer2.3"]
    for k, v in source.state_dict().items():
        assert torch.equal(grown.state_dict()[k], v), k
    images = torch.rand(3, 3, 32, 96) * 2 - 1
    source.eval(), grown.eval()
    with torch.no_grad():
        a, b = source(images), grown(images)
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k
    # The extra blocks are trainable from there: their last norm's scale gets a gradient.
    grown.train()
    out = grown(images)
    sum(v.float().square().mean() for v in out.values() if v.is_floating_point()).backward()
    gamma = dict(grown.named_parameters())[f"{prefix}.layer2.3.bn2.weight"]
    assert gamma.grad is not None and gamma.grad.abs().sum() > 0

    wider = create_model(arch, {**opts, key: "resnet50"}, charset, spec)  # bottlenecks: other widths
    with pytest.raises(ConfigError, match="do not fit"):
        load_init_weights(wider, str(tmp_path / "r18"))
