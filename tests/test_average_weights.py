"""tools.average_weights: the mean of model folders of one network, refused for another network."""

import pytest
import torch

from data.text import Charset
from models import InputSpec, PlateRecognizer, create_model, list_models
from tools.average_weights import average_weights, main

CHARSET = Charset()


def saved(arch, path, seed, spec=InputSpec(32, 128), charset=CHARSET):
    torch.manual_seed(seed)
    return create_model(arch, {}, charset, spec).save_pretrained(path)


@pytest.mark.parametrize("arch", list_models())
def test_the_mean_of_every_float_tensor_is_written_as_a_model_folder(arch, tmp_path):
    a, b = saved(arch, tmp_path / "a", 0), saved(arch, tmp_path / "b", 1)
    main([str(a), str(b), "--out", str(tmp_path / "mean")])
    mean = PlateRecognizer.from_pretrained(tmp_path / "mean").state_dict()
    sa, sb = (PlateRecognizer.from_pretrained(p).state_dict() for p in (a, b))
    assert mean.keys() == sa.keys()
    floats = [k for k in sa if sa[k].is_floating_point()]
    assert floats and any(not torch.equal(sa[k], sb[k]) for k in floats)  # the seeds differ
    for k in sa:
        want = (sa[k] + sb[k]) / 2 if k in floats else sa[k]
        assert torch.allclose(mean[k], want, atol=1e-6), k


def test_a_model_averaged_with_itself_reads_as_before(tmp_path):
    a = saved("crnn", tmp_path / "a", 0)
    model = average_weights([a, a]).eval()
    images = torch.randn(2, 3, 32, 128)
    assert torch.allclose(model(images)["logits"], PlateRecognizer.from_pretrained(a)(images)["logits"], atol=1e-6)


def test_another_network_or_a_missing_folder_is_refused_by_name(tmp_path):
    a = saved("crnn", tmp_path / "a", 0)
    wide = saved("crnn", tmp_path / "wide", 0, spec=InputSpec(32, 160))
    digits = saved("crnn", tmp_path / "digits", 0, charset=Charset("0123456789"))
    with pytest.raises(ValueError, match=r"wide holds another network .*input"):
        average_weights([a, wide])
    with pytest.raises(ValueError, match=r"digits holds another network .*charset"):
        average_weights([a, digits])
    with pytest.raises(ValueError, match="no-such is not a model folder"):
        average_weights([a, tmp_path / "no-such"])
    with pytest.raises(ValueError, match="two model folders or more"):
        average_weights([a])


def test_the_command_keeps_an_existing_folder_unless_told(tmp_path, capsys):
    a, b = saved("crnn", tmp_path / "a", 0), saved("crnn", tmp_path / "b", 1)
    out = tmp_path / "mean"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit):
        main([str(a), str(b), "--out", str(out)])
    assert "--overwrite" in capsys.readouterr().err and (out / "keep.txt").read_text() == "mine"
    with pytest.raises(SystemExit):
        main([str(a), str(b), "--out", str(a), "--overwrite"])
    assert "one of the folders averaged" in capsys.readouterr().err
    main([str(a), str(b), "--out", str(out), "--overwrite"])
    assert "wrote the mean of 2 models" in capsys.readouterr().out
    assert PlateRecognizer.from_pretrained(out).arch == "crnn"
