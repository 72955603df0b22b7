"""Reading under a country's plate formats (models/plate_formats.py), the reader's and val.py's options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data.formats import plate_regex
from data.text import Charset
from inference import load_reader
from models.base import PlatePrediction
from models.interface import COUNTRY_CLASSES, UNKNOWN_COUNTRY
from models.plate_formats import (
    FREE_READING, attn_char_probabilities, best_matching_reading, char_probabilities, check_country,
    constrain_to_formats, ctc_char_probabilities, position_mask, read_with_format_prior,
)
from tests._inference_fixtures import make_plates, make_tiny_model
from val import main as val_main
from val import parse_formats

CHARS = Charset().chars


def _probs(reading: str, second: dict[int, str] | None = None, p1: float = 0.6, p2: float = 0.3) -> np.ndarray:
    """Per-character distributions: ``reading`` first, and at given positions a second choice."""
    m = np.full((len(reading), len(CHARS)), (1.0 - p1 - p2) / (len(CHARS) - 2), np.float32)
    for i, c in enumerate(reading):
        m[i, CHARS.index(c)] = p1
        alt = (second or {}).get(i)
        if alt is not None:
            m[i, CHARS.index(alt)] = p2
    return m / m.sum(-1, keepdims=True)


def test_a_look_alike_in_a_digit_position_is_replaced():
    # Grey Brazilian plate LLL DDDD read with I for 1: I is first choice, 1 second.
    probs = _probs("JSQI4I3", {3: "1", 5: "1"})
    pred = PlatePrediction("JSQI4I3", 0.1, [0.6] * 7)
    out = constrain_to_formats(pred, probs, CHARS, "BR")
    assert out.text == "JSQ1413"
    assert plate_regex("BR").fullmatch(out.text)
    assert out.char_confidences[3] == pytest.approx(probs[3, CHARS.index("1")])
    assert 0 < out.confidence < 1


def test_valid_readings_unknown_countries_and_length_mismatches_are_kept():
    pred = PlatePrediction("JSQ1413", 0.5, [0.9] * 7)
    assert constrain_to_formats(pred, _probs("JSQ1413"), CHARS, "BR") is pred
    bad = PlatePrediction("JSQI4I3", 0.1, [0.6] * 7)
    for country in (None, "EU", "unknown"):
        assert constrain_to_formats(bad, _probs("JSQI4I3", {3: "1"}), CHARS, country) is bad
    assert constrain_to_formats(bad, _probs("JSQI4I"), CHARS, "BR") is bad  # rows do not match the text


def test_no_valid_reading_within_the_alternatives_keeps_the_reading():
    # Eight characters: no Brazilian format has eight, whatever the alternatives.
    pred = PlatePrediction("ABCDEFGH", 0.1, [0.6] * 8)
    assert constrain_to_formats(pred, _probs("ABCDEFGH", {0: "1"}), CHARS, "BR") is pred
    assert best_matching_reading(_probs("ABCDEFGH"), CHARS, plate_regex("BR")) is None


def test_best_first_search_takes_the_most_probable_valid_reading():
    # Position 3 must become a digit: '8' (p=0.3) beats '0' (p=0.05).
    probs = _probs("ABCB123", {3: "8"})
    probs[3, CHARS.index("0")] = 0.05
    probs /= probs.sum(-1, keepdims=True)
    text, conf = best_matching_reading(probs, CHARS, plate_regex("BR"))
    assert text == "ABC8123"
    expected = np.prod([probs[i, CHARS.index(c)] for i, c in enumerate(text)])
    assert conf == pytest.approx(expected, rel=1e-5)


def test_ctc_and_attention_character_distributions():
    # CTC: blank=0; path "A A - A B -" emits A, A, B; the row of each is where it was most probable.
    c = len(CHARS) + 1
    probs = np.full((6, c), 0.01, np.float32)
    a, b = CHARS.index("A") + 1, CHARS.index("B") + 1
    for t, (k, p) in enumerate([(a, 0.5), (a, 0.9), (0, 0.9), (a, 0.7), (b, 0.8), (0, 0.9)]):
        probs[t, k] = p
    rows = ctc_char_probabilities(probs)
    assert rows.shape == (3, len(CHARS))
    assert [CHARS[i] for i in rows.argmax(-1)] == ["A", "A", "B"]
    assert rows[0, a - 1] == pytest.approx(0.9 / (0.9 + 0.01 * (c - 2)), rel=1e-4)
    np.testing.assert_allclose(rows.sum(-1), 1.0, rtol=1e-5)
    # Attention: EOS=0; steps up to the first EOS.
    logp = np.log(np.full((5, c), 0.01, np.float32))
    for t, k in enumerate([a, b, 0, a, 0]):
        logp[t, k] = np.log(0.9)
    rows = attn_char_probabilities(logp)
    assert [CHARS[i] for i in rows.argmax(-1)] == ["A", "B"]
    # Through the outputs dicts: the key says which decoder.
    assert len(char_probabilities({"logits": torch.from_numpy(np.log(probs[None]))})[0]) == 3
    assert len(char_probabilities({"log_probs": logp[None]})[0]) == 2


def _head(**probs: float) -> np.ndarray:
    """A country head's softmax: the given countries, the rest spread evenly over the others."""
    rest = (1.0 - sum(probs.values())) / (len(COUNTRY_CLASSES) - len(probs))
    return np.array([probs.get(c, rest) for c in COUNTRY_CLASSES], np.float32)


def test_the_format_prior_replaces_a_look_alike_only_where_a_valid_reading_is_far_likelier():
    pred = PlatePrediction("ASJ8I7I", 0.1, [0.6] * 7)
    # I first (0.6), 1 second (0.3) at the digit positions of a grey Brazilian plate (LLL DDDD).
    probs = _probs("ASJ8I7I", {4: "1", 6: "1"})
    out = read_with_format_prior(pred, probs, CHARS, _head(BR=0.9))
    assert out.text == "ASJ8I71"  # Mercosul (LLL D L DD): only the last must be a digit
    assert out.confidence == pytest.approx(np.prod(out.char_confidences))
    # The head unsure of Brazil: the valid reading's weight falls under the model's own reading's.
    assert read_with_format_prior(pred, probs, CHARS, _head(BR=0.05)) is pred
    # A confident look-alike stays: 0.1 x 0.9 against 0.9 x 0.05 for the valid one.
    sure = _probs("ASJ8I7I", {6: "1"}, p1=0.9, p2=0.05)
    assert read_with_format_prior(pred, sure, CHARS, _head(BR=0.9)) is pred
    # The head's "unknown" class speaks for a reading of no format.
    assert read_with_format_prior(pred, probs, CHARS, _head(BR=0.45, **{UNKNOWN_COUNTRY: 0.5})) is pred
    # A valid reading, an empty one and rows that do not match the text stay as they are.
    ok = PlatePrediction("ASJ8171", 0.5, [0.9] * 7)
    assert read_with_format_prior(ok, _probs("ASJ8171"), CHARS, _head(BR=0.9)) is ok
    assert read_with_format_prior(pred, probs[:6], CHARS, _head(BR=0.9)) is pred
    assert FREE_READING < 1


def test_position_masks_hold_every_label_a_country_draws():
    from data.formats import compiled
    from data.synth.textgen import UniformStream
    from data.text import COUNTRIES, normalize_plate_text

    u = UniformStream(np.random.default_rng(0))
    for c in COUNTRIES:
        cc = compiled(c)
        for f in cc.formats[0] + cc.formats[1] + cc.more:
            for _ in range(40):
                label = "".join(ch for ch in normalize_plate_text(f.generate_raw(u)) if ch.isalnum())
                mask = position_mask(c, len(label), CHARS)
                assert mask is not None and all(mask[i, CHARS.index(ch)] for i, ch in enumerate(label)), (c, label)
    br = position_mask("BR", 7, CHARS)
    assert not br[0, CHARS.index("1")] and not br[6, CHARS.index("I")]  # letters first, a digit last
    assert position_mask("BR", 8, CHARS) is None  # no Brazilian format has eight characters


def test_country_option_validation(tmp_path):
    assert check_country("br") == "BR" and check_country("AUTO") == "auto"
    assert check_country("Any") == "any" and check_country("none") == "none"
    assert load_reader(make_tiny_model(tmp_path / "n"), country="none").country is None
    with pytest.raises(ValueError, match="--country: unknown country 'XX'"):
        check_country("XX")
    with pytest.raises(ValueError, match="country: unknown country 'ZZ'"):
        load_reader(make_tiny_model(tmp_path / "m"), country="ZZ")
    assert parse_formats(None) == (False, None)
    assert parse_formats("label") == (True, None)
    assert parse_formats("label:br,SK") == (True, {"BR", "SK"})
    assert parse_formats("BR") == (False, None)
    with pytest.raises(ValueError, match="--formats"):
        parse_formats("labels")


def _ctc_logits(reading: str, second: dict[int, str]) -> torch.Tensor:
    """CRNN outputs [1, T, blank + charset] whose greedy reading is ``reading`` (a blank after each
    character), with a second choice at some positions."""
    probs = np.full((2 * len(reading), len(CHARS) + 1), 1e-3, np.float32)
    for i, c in enumerate(reading):
        probs[2 * i, CHARS.index(c) + 1] = 0.6
        if i in second:
            probs[2 * i, CHARS.index(second[i]) + 1] = 0.35
        probs[2 * i + 1, 0] = 0.9
    return torch.from_numpy(np.log(probs))[None]


def test_reader_and_val_read_under_formats(tmp_path, monkeypatch):
    weights = make_tiny_model(tmp_path / "m")
    plain, under = load_reader(weights), load_reader(weights, country="BR")
    logits = _ctc_logits("JSQI4I3", {3: "1", 5: "1"})
    for reader in (plain, under):
        monkeypatch.setattr(reader, "forward", lambda images: {"logits": logits.expand(len(images), -1, -1)})
    images = torch.zeros(2, 3, 32, 96)
    assert [p.text for p in plain.predict_tensor(images)] == ["JSQI4I3"] * 2
    assert [p.text for p in under.predict_tensor(images)] == ["JSQ1413"] * 2
    # Per image (val.py --formats label): the given countries override the reader's.
    assert [p.text for p in plain.predict_tensor(images, ["BR", None])] == ["JSQ1413", "JSQI4I3"]
    assert [p.text for p in under.predict_tensor(images, ["EU", "BR"])] == ["JSQI4I3", "JSQ1413"]
    # "auto": the head's country; this model has none, so nothing changes ("any" neither).
    for mode in ("auto", "any"):
        auto = load_reader(weights, country=mode)
        monkeypatch.setattr(auto, "forward", lambda images: {"logits": logits.expand(len(images), -1, -1)})
        assert [p.text for p in auto.predict_tensor(images)] == ["JSQI4I3"] * 2
    # "any" with a head sure of Brazil: the digits where the format has them.
    head = torch.from_numpy(np.log(_head(BR=0.9)))[None]
    monkeypatch.setattr(auto, "forward", lambda images: {"logits": logits.expand(len(images), -1, -1),
                                                        "country_logits": head.expand(len(images), -1)})
    assert [p.text for p in auto.predict_tensor(images)] == ["JSQ1413"] * 2


def test_val_with_formats(tmp_path):
    plates = make_plates(tmp_path / "plates", n=8, seed=5)
    weights = make_tiny_model(tmp_path / "m")
    res = val_main(["--weights", str(weights), "--data", str(plates), "--no-gallery", "--formats", "label:DE,BR",
                    "--confusion", str(tmp_path / "confusion.png")])  # not into the current folder
    assert res["overall"]["n"] == 8


def test_predict_cli_country(tmp_path, capsys):
    from predict import main as predict_main

    plates = make_plates(tmp_path / "plates", n=3, seed=5)
    weights = make_tiny_model(tmp_path / "m")
    with pytest.raises(SystemExit) as e:
        predict_main(["--input", str(plates), "--weights", str(weights), "--country", "XX"])
    assert e.value.code == 2 and "--country: unknown country 'XX'" in capsys.readouterr().err
    out = tmp_path / "preds.csv"
    assert predict_main(["--input", str(plates), "--weights", str(weights), "--country", "br",
                         "--output", str(out), "--show", "0"]) in (0, None)
    assert out.read_text().count("\n") == 4  # header + 3 plates
