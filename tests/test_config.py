"""Config loading: defaults, overrides, and errors that name the key."""

import dataclasses
import warnings
from pathlib import Path

import pytest

from configs import CONFIG_DIR, ConfigError, load_config


def test_default_crnn_config_loads_and_overrides_apply():
    cfg = load_config("crnn", overrides=["train.lr=0.01", "model.backbone=resnet34", "data.synth_countries=[DE, FR]"])
    assert cfg.arch == "crnn"
    assert cfg.train.lr == 0.01 and isinstance(cfg.train.lr, float)
    assert cfg.model.backbone == "resnet34"
    assert cfg.data.synth_countries == ["DE", "FR"]


@pytest.mark.parametrize(
    "override,message",
    [
        ("train.lrr=1", "unknown config key train.lrr"),
        ("train.lr=abc", "train.lr: expected a number"),
        ("train.max_steps=1.5", "train.max_steps: expected an integer"),
        ("train.max_steps=0", "train.max_steps must be > 0"),
        ("model.backbone=resnet18x", "model.backbone: timm has no model named 'resnet18x'"),
        ("model.rnn_type=transformer", "model.rnn_type"),
        ("data.on_invalid_label=ignore", "data.on_invalid_label"),
        ("data.synth_countries=[XX]", "data.synth_countries.*XX"),
        ("data.charset=AAB", "data.charset.*repeated"),
        ("train.mixed_precision=fp8", "train.mixed_precision"),
        ("train.cpu_threads=0", "train.cpu_threads must be a positive number of threads"),
        ("train.mixed_precision=yes", "train.mixed_precision must be no, fp16, bf16 or auto, got True"),
        ("data.synth_mix=1", r"data.synth_mix must be in \[0, 1\)"),
        ("data.synth_mix=-0.1", "data.synth_mix must be in"),
        ("data.synth_mix=0.3", "data.synth_mix .*needs data.train to be a dataset path"),  # train is synth
        ("data.synth_mix=lots", "data.synth_mix: expected a number"),
        ("train.lr=.nan", "train.lr: expected a finite number"),
        ("train.lr=.inf", "train.lr: expected a finite number"),
        ("train.weight_decay=-.inf", "train.weight_decay: expected a finite number"),
        ("train.init_from=[a]", "train.init_from: expected a string"),
        ("train.checkpoint_minutes=-5", "train.checkpoint_minutes must be > 0 .*or 0 or null"),
        ("data.read_dark_text=maybe", "data.read_dark_text: expected"),
        ("nosection.key=1", "override key"),
        ("train.lr", "section.key=value"),
    ],
)
def test_bad_keys_and_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("crnn", overrides=[override])


def test_bad_yaml_files(tmp_path: Path):
    f = tmp_path / "c.yaml"
    f.write_text("arch: crnn\nmodle: {}\n")
    with pytest.raises(ConfigError, match="unknown config key 'modle'"):
        load_config(path=f)
    f.write_text("arch: crnn\ntrain: [1, 2]\n")
    with pytest.raises(ConfigError, match="train: expected a mapping"):
        load_config(path=f)
    f.write_text("arch: attn9\n")
    with pytest.raises(ConfigError, match="unknown arch 'attn9'"):
        load_config(path=f)
    with pytest.raises(ConfigError, match="not found"):
        load_config(path=tmp_path / "missing.yaml")


def test_checkpoint_minutes_zero_or_null_turns_the_timed_checkpoint_off():
    assert load_config("crnn").train.checkpoint_minutes == 10
    assert load_config("crnn", overrides=["train.checkpoint_minutes=0"]).train.checkpoint_minutes == 0
    assert load_config("crnn", overrides=["train.checkpoint_minutes=null"]).train.checkpoint_minutes is None


def test_finetune_configs_load():
    for name in ("finetune_crnn", "finetune_attn"):
        path = Path(__file__).resolve().parents[1] / "configs" / f"{name}.yaml"
        cfg = load_config(path=path, overrides=["data.train=some/real/crops"])
        assert cfg.train.init_from == f"weights/{cfg.arch}"
        assert 0 < cfg.data.synth_mix < 1 and cfg.train.lr < 1e-3
    cfg = load_config("crnn", overrides=["data.train=crops", "data.synth_mix=0.25", "train.init_from=w"])
    assert cfg.data.synth_mix == 0.25 and cfg.train.init_from == "w"


def test_scientific_notation_without_a_dot_is_a_number(tmp_path):
    """PyYAML reads 3e-4 as a string; a float key takes it as 0.0003, from the command line or a file."""
    cfg = load_config("crnn", overrides=["train.lr=3e-4", "train.weight_decay=1E-2"])
    assert cfg.train.lr == pytest.approx(3e-4) and cfg.train.weight_decay == pytest.approx(1e-2)
    f = tmp_path / "c.yaml"
    f.write_text("arch: crnn\ntrain:\n  lr: 5e-4\n")
    assert load_config(path=f).train.lr == pytest.approx(5e-4)
    with pytest.raises(ConfigError, match="train.lr: expected a number"):
        load_config("crnn", overrides=["train.lr=3e"])


def test_synth_country_weights_are_checked_against_the_generated_countries():
    cfg = load_config("crnn", overrides=["data.synth_country_weights={US: 4, br: 2}"])
    assert cfg.data.synth_country_weights == {"US": 4, "br": 2}
    with pytest.raises(ConfigError, match="data.synth_country_weights: country 'US' is not among"):
        load_config("crnn", overrides=["data.synth_countries=[DE]", "data.synth_country_weights={US: 2}"])
    with pytest.raises(ConfigError, match="data.synth_country_weights: the weight of 'US'"):
        load_config("crnn", overrides=["data.synth_country_weights={US: lots}"])


@pytest.mark.parametrize("value", ["0", "1", "1.5"])
def test_ema_decay_outside_0_1_is_named(value):
    with pytest.raises(ConfigError, match="train.ema_decay must be in"):
        load_config("crnn", overrides=[f"train.ema_decay={value}"])


def test_old_key_capture_effects_loads_with_a_warning(tmp_path):
    """data.capture_effects was renamed data.camera_effects: old configs and run folders still load."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new key: no warning
        new = load_config(path="configs/realism_crnn.yaml")
    old_yaml = tmp_path / "config.yaml"
    old_yaml.write_text(Path("configs/realism_crnn.yaml").read_text().replace("camera_effects:", "capture_effects:"))
    with pytest.warns(FutureWarning, match=r"data\.capture_effects is deprecated, use data\.camera_effects"):
        old = load_config(path=old_yaml)
    assert old.data.camera == new.data.camera and old.data.camera
    assert old.to_dict() == new.to_dict()  # a run folder re-written from it has the new key
    with pytest.warns(FutureWarning, match=r"data\.camera_effects"):
        cfg = load_config(path="configs/classic_crnn.yaml", overrides=["data.capture_effects.night=0.5"])
    assert cfg.data.camera == {"night": 0.5}
    with pytest.warns(FutureWarning, match=r"data\.camera_effects"):
        cfg = load_config(path="configs/realism_crnn.yaml", overrides=["data.capture_effects=null"])
    assert cfg.data.camera == {}


def test_old_and_new_effects_keys_together_are_an_error(tmp_path):
    both = tmp_path / "both.yaml"
    both.write_text("arch: crnn\ndata:\n  camera_effects: {night: 0.1}\n  capture_effects: {rain: 0.1}\n")
    with pytest.raises(ConfigError, match=r"both data\.capture_effects and data\.camera_effects"):
        load_config(path=both)
    with pytest.raises(ConfigError, match=r"both data\.capture_effects and data\.camera_effects"):
        load_config("crnn", overrides=["data.camera_effects.night=0.1", "data.capture_effects.rain=0.1"])


def test_overrides_are_taken_anywhere_on_the_training_command_line():
    """``key=value`` overrides before, between and after options (issue 26, item 11)."""
    from train_accelerate import parse_args

    args = parse_args(["train.seed=3", "--arch", "crnn", "train.max_steps=5", "--output-dir", "X",
                       "model.dropout=0.1", "--overwrite"])
    assert args.overrides == ["train.seed=3", "train.max_steps=5", "model.dropout=0.1"]
    assert (args.arch, args.output_dir, args.overwrite) == ("crnn", "X", True)
    with pytest.raises(SystemExit):
        parse_args(["--arch", "crnn", "--no-such-flag"])


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_every_config_loads_and_its_model_builds(path):
    """Each shipped config, as it stands: its model is built and fits the longest synthetic label."""
    from data.text import Charset
    from models import InputSpec, create_model
    from training.data import max_train_label_length
    from training.trainer import model_options

    cfg = load_config(path=path)
    dc = cfg.data
    model = create_model(cfg.arch, model_options(cfg, None), Charset(dc.charset),
                         InputSpec(dc.image_height, dc.image_width, dc.keep_aspect))
    model.check_label_length(*max_train_label_length(dc, None))
    assert model.num_parameters() > 0


def test_gpu_configs_are_larger_than_the_cpu_ones():
    for arch in ("attn", "crnn"):
        cpu, gpu = load_config(arch), load_config(path=CONFIG_DIR / f"{arch}_gpu.yaml")
        assert gpu.arch == arch and gpu.train.mixed_precision == "bf16"
        assert gpu.train.batch_size >= 4 * cpu.train.batch_size and gpu.train.ema_decay == 0.999
        assert gpu.data.synth_effects and gpu.train.init_from is None  # the realism stream, from scratch


@pytest.mark.parametrize("value", ["no", "'no'", "false"])
def test_mixed_precision_no_as_yaml_reads_it(value, tmp_path):
    """YAML 1.1 reads a bare ``no`` as false; the config takes it as "no" (no mixed precision)."""
    assert load_config("crnn", overrides=[f"train.mixed_precision={value}"]).train.mixed_precision == "no"
    path = tmp_path / "c.yaml"
    text = (CONFIG_DIR / "crnn.yaml").read_text()
    path.write_text(text.replace("\ntrain:\n", f"\ntrain:\n  mixed_precision: {value}\n", 1))
    assert load_config(path=path).train.mixed_precision == "no"


def test_mixed_precision_auto_is_bf16_only_where_the_device_computes_it(monkeypatch):
    """``auto``: bf16 on a CPU or GPU with native bf16, else float32; other values pass unchanged."""
    import training.trainer as trainer

    monkeypatch.setattr(trainer, "cpu_has_bf16", lambda: False)
    assert trainer.mixed_precision("auto", "cpu") == ("no", "train.mixed_precision: auto, a CPU without native bf16")
    monkeypatch.setattr(trainer, "cpu_has_bf16", lambda: True)
    assert trainer.mixed_precision("auto", "cpu") == ("bf16", "train.mixed_precision: auto, a CPU with native bf16")
    assert trainer.mixed_precision("no", "cpu") == ("no", "") and trainer.mixed_precision(None, "cpu") == (None, "")
    monkeypatch.setattr(trainer.torch.cuda, "is_bf16_supported", lambda: False)
    assert trainer.mixed_precision("auto", "cuda") == ("no", "train.mixed_precision: auto, a GPU without native bf16")
    monkeypatch.setattr(trainer.torch.cuda, "is_bf16_supported", lambda: True)
    assert trainer.mixed_precision("auto", "cuda") == ("bf16", "train.mixed_precision: auto, a GPU with native bf16")
    assert load_config("attn").train.mixed_precision == "auto"


def test_base_key_merges_a_config_file_into_another(tmp_path):
    """base: FILE (relative to the config's folder): sections merge key by key, a key the file gives
    replaces the base's value whole; a loop, a missing or a bad base is an error naming the file."""
    (tmp_path / "parent.yaml").write_text(
        "arch: crnn\nmodel: {rnn_hidden_size: 64, rnn_layers: 1}\n"
        "data: {camera_effects: {night: 0.1, rain: 0.2}, synth_two_row_prob: 0.2}\ntrain: {lr: 0.01, max_steps: 7}\n")
    (tmp_path / "child.yaml").write_text(
        "base: parent.yaml\nmodel: {rnn_layers: 3}\ndata: {camera_effects: {motion: 0.3}}\ntrain: {lr: 0.02}\n")
    cfg = load_config(path=tmp_path / "child.yaml", overrides=["train.max_steps=9"])
    assert (cfg.model.rnn_hidden_size, cfg.model.rnn_layers) == (64, 3)
    assert cfg.data.camera == {"motion": 0.3} and cfg.data.synth_two_row_prob == 0.2
    assert (cfg.train.lr, cfg.train.max_steps) == (0.02, 9)
    (tmp_path / "a.yaml").write_text("base: b.yaml\narch: crnn\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\narch: crnn\n")
    with pytest.raises(ConfigError, match=r"a loop of base: keys"):
        load_config(path=tmp_path / "a.yaml")
    (tmp_path / "lost.yaml").write_text("base: nowhere.yaml\narch: crnn\n")
    with pytest.raises(ConfigError, match=r"lost.yaml: base nowhere.yaml: config file .*nowhere.yaml not found"):
        load_config(path=tmp_path / "lost.yaml")
    (tmp_path / "bad.yaml").write_text("base: [x]\narch: crnn\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: base must be a config file name"):
        load_config(path=tmp_path / "bad.yaml")


def test_derived_configs_keep_the_main_mix():
    """configs/robust_crnn.yaml and configs/crnn_gpu.yaml take the main command's data mix (base:),
    which has the changes kept on the robust stage: text_crop, pattern, glyph_forms, mixed_fonts and invert."""
    main = load_config("crnn")
    for name in ("robust_crnn", "crnn_gpu"):
        cfg = load_config(path=CONFIG_DIR / f"{name}.yaml")
        assert cfg.data.effects == main.data.effects and cfg.data.camera == main.data.camera, name
    fx = main.data.effects
    assert (fx.text_crop, fx.pattern, fx.glyph_forms, fx.mixed_fonts) == (0.5, 0.3, 0.5, 0.3)
    assert main.data.camera["invert"] == 0.1
    assert load_config(path=CONFIG_DIR / "robust_crnn.yaml").train.ema_decay is None  # as judged


@pytest.mark.parametrize("dark,read,trains,reads", [
    (False, None, False, False), (True, None, True, True),  # unset: reads as it trains
    (False, True, False, True), (True, False, True, False),
])
def test_the_model_reads_with_its_own_polarity(dark, read, trains, reads):
    """data.read_dark_text sets how the saved model reads (its input spec), whatever the stream feeds it."""
    from data.transforms import spec_transform
    from training.data import input_spec

    dc = dataclasses.replace(load_config("crnn").data, dark_text=dark, read_dark_text=read)
    assert input_spec(dc, training=True).dark_text is trains and input_spec(dc).dark_text is reads
    assert spec_transform(input_spec(dc, training=True), "train", dc.camera).dark is trains
    assert spec_transform(input_spec(dc)).dark is reads
    assert (input_spec(dc).height, input_spec(dc).width) == (dc.image_height, dc.image_width)


def test_the_main_command_reads_turned_crops():
    assert load_config("crnn").data.read_dark_text is True
    assert load_config("attn").data.read_dark_text is None  # the attention model reads as given (judged)
