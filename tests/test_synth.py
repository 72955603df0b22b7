"""Tests of the synthetic plate generator (data/synth)."""

from __future__ import annotations

import csv
import os
import pickle
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from data.formats import COUNTRY_FORMATS, compiled, is_valid_plate_text, max_label_length
from data.synth import SynthPlate, SyntheticPlateGenerator, degrade, generate_text, write_synthetic_dataset
from data.synth import fonts as synth_fonts
from data.synth.countries import LOOKS
from data.text import COUNTRIES, Charset, normalize_plate_text

ROOT = Path(__file__).resolve().parents[1]
TWO_ROW = tuple(c for c in COUNTRIES if compiled(c).has_two_rows)


def test_table_covers_the_27_countries():
    assert tuple(COUNTRY_FORMATS) == COUNTRIES == tuple(LOOKS)
    assert len(COUNTRIES) == 27


@pytest.mark.parametrize("country", COUNTRIES)
def test_every_format_has_a_look(country):
    spec = COUNTRY_FORMATS[country]
    for fmt in spec.formats + spec.formats2 + spec.formats_more:
        assert fmt.style in LOOKS[country].styles, (country, fmt.pattern, fmt.style)


@pytest.mark.parametrize("country", COUNTRIES)
def test_generated_texts_match_their_country(country):
    rng = np.random.default_rng(123)
    charset = Charset()
    for rows in (1, 2) if country in TWO_ROW else (1,):
        for _ in range(300):
            label, row_texts = generate_text(country, rng, rows)
            assert len(row_texts) == rows
            assert label == normalize_plate_text("".join(row_texts))
            assert all(r == r.strip() and r for r in row_texts)
            charset.check(label)
            assert is_valid_plate_text(country, label), (country, label, rows)
            assert len(label) <= max_label_length([country])


@pytest.mark.parametrize(
    "country, label, ok",
    [
        ("RU", "A123BC77", True),
        ("RU", "A123BC777", True),
        ("RU", "А123ВС77", True),  # Cyrillic look-alikes normalise to Latin
        ("RU", "A123BD77", False),  # D is not one of ABEKMHOPCTYX
        ("RU", "Z123BC77", False),
        ("RU", "A12BC77", False),
        ("BR", "ABC1234", True),  # old grey
        ("BR", "ABC1D23", True),  # Mercosul
        ("BR", "AB12345", False),
        ("BR", "ABC12D3", False),
        ("DE", "M-AB 1234", True),
        ("DE", "MAB1234E", True),
        ("DE", "HHAB1234", True),
        ("DE", "HHHAB1234", False),  # 9 characters: over the 8 a German plate holds
        ("DE", "M1234AB", False),
        ("FR", "AB-123-CD", True),  # SIV
        ("FR", "1234 AB 75", True),  # FNI
        ("FR", "AI-123-CD", False),  # no I in SIV
        ("IT", "AB 123 CD", True),
        ("IT", "AB 123 CO", False),  # no O
        ("ES", "1234 BBB", True),
        ("ES", "1234 BAB", False),  # no vowels
        ("ES", "M-1234-AB", True),  # old provincial
        ("NL", "GB-12-BD", True),
        ("NL", "12-ABC-3", False),
        ("GB", "AB12 CDE", True),
        ("GB", "AB12 CQE", False),
        ("CZ", "1A2 3456", True),
        ("CZ", "1D2 3456", False),
        ("PL", "WA 12345", True),
        ("UA", "AA1234BB", True),
        ("UA", "AA1234BD", False),
        ("BY", "1234 AB-7", True),
        ("BY", "1234 AB-8", False),
        ("KZ", "123 ABC 01", True),
        ("KZ", "123 ABC 21", False),
        ("US", "ABC1234", True),
        ("US", "1ABC234", True),
        ("VN", "51F-123.45", True),
        ("VN", "30A-1234", True),
        ("VN", "29-B1 123.45", True),
        ("VN", "51F-12", False),
        ("CH", "ZH 123456", True),
        ("CH", "ZH 0123", False),
        ("SE", "ABC 123", True),
        ("NO", "AB 12345", True),
        ("NO", "AB 02345", False),
        ("EE", "123 ABC", True),
        ("LV", "AB-1234", True),
        ("LT", "ABC 123", True),
        ("FI", "ABC-123", True),
        ("RO", "B 123 ABC", True),
        ("HR", "ZG 1234-AB", True),
        ("SK", "BA-123AB", True),
        ("AT", "W 12345 A", True),
        ("BE", "1-ABC-123", True),
    ],
)
def test_format_examples(country, label, ok):
    assert is_valid_plate_text(country, label) is ok


def test_is_valid_unknown_country():
    with pytest.raises(ValueError, match="XX"):
        is_valid_plate_text("XX", "ABC123")


def test_two_row_layouts():
    assert len(TWO_ROW) >= 8
    assert {"VN", "RU", "UA", "KZ", "DE", "BR"} <= set(TWO_ROW)


@pytest.mark.parametrize("country", COUNTRIES)
def test_every_country_renders(country):
    gen = SyntheticPlateGenerator(seed=1, countries=[country])
    rng = np.random.default_rng(7)
    for rows in (1, 2) if country in TWO_ROW else (1,):
        for _ in range(6):
            p = gen.render_text(country, rng, rows)
            assert isinstance(p, SynthPlate)
            assert p.country == country and p.rows == rows
            im = p.image
            assert im.dtype == np.uint8 and im.ndim == 3 and im.shape[2] == 3
            h, w = im.shape[:2]
            if rows == 1:
                assert 32 <= h <= 72 and 1.8 <= w / h <= 5.2, im.shape
            else:
                assert 58 <= h <= 116 and 1.0 <= w / h <= 2.3, im.shape
            assert im.std() > 10  # not a blank canvas
            assert is_valid_plate_text(country, p.text)


def test_generator_stream_and_two_row_prob():
    gen = SyntheticPlateGenerator(seed=3)
    plates = [gen() for _ in range(300)]
    assert {p.country for p in plates} == set(COUNTRIES)
    assert all(is_valid_plate_text(p.country, p.text) for p in plates)
    assert all(len(p.text) <= gen.max_label_length for p in plates)
    assert any(p.rows == 2 for p in plates) and any(p.rows == 1 for p in plates)
    assert all(p.rows == 1 for p in (SyntheticPlateGenerator(seed=3, two_row_prob=0.0)() for _ in range(100)))
    g2 = SyntheticPlateGenerator(seed=3, countries=TWO_ROW, two_row_prob=1.0)
    assert all(g2().rows == 2 for _ in range(50))


def test_max_label_length():
    assert SyntheticPlateGenerator(countries=["DE"], two_row_prob=0.0).max_label_length == 8
    assert SyntheticPlateGenerator().max_label_length == max_label_length()
    assert max_label_length() <= 12


def test_determinism():
    a, b = SyntheticPlateGenerator(seed=11), SyntheticPlateGenerator(seed=11)
    for _ in range(60):
        pa, pb = a(), b()
        assert (pa.text, pa.country, pa.rows) == (pb.text, pb.country, pb.rows)
        assert np.array_equal(pa.image, pb.image)
    c = SyntheticPlateGenerator(seed=12)
    a = SyntheticPlateGenerator(seed=11)
    assert [a().text for _ in range(20)] != [c().text for _ in range(20)]
    # an indexed sample does not depend on what the generator (and its caches) did before
    fresh, used = SyntheticPlateGenerator(seed=0), SyntheticPlateGenerator(seed=0)
    for _ in range(200):
        used()
    for i in range(20):
        pf, pu = fresh.sample(np.random.default_rng([5, i])), used.sample(np.random.default_rng([5, i]))
        assert pf.text == pu.text and np.array_equal(pf.image, pu.image)


def test_pickled_generator_continues_the_stream():
    gen = SyntheticPlateGenerator(seed=8)
    for _ in range(5):
        gen()
    copy = pickle.loads(pickle.dumps(gen))
    for _ in range(10):
        a, b = gen(), copy()
        assert a.text == b.text and np.array_equal(a.image, b.image)


def test_unknown_country_and_bad_args():
    with pytest.raises(ValueError, match="XX"):
        SyntheticPlateGenerator(countries=["DE", "XX"])
    with pytest.raises(ValueError):
        SyntheticPlateGenerator(two_row_prob=1.5)
    assert SyntheticPlateGenerator(countries=["de", "fr"]).countries == ("DE", "FR")


def test_degrade():
    gen = SyntheticPlateGenerator(seed=2)
    for i in range(30):
        im = gen().image
        out = degrade(im, np.random.default_rng(i))
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3 and min(out.shape[:2]) >= 8
        assert np.array_equal(out, degrade(im, np.random.default_rng(i)))


def test_font_fallback(monkeypatch):
    """Without the optional font packages, every font group falls back to DejaVu, no error."""
    real_dir = synth_fonts._package_dir
    monkeypatch.setattr(synth_fonts, "_package_dir", lambda pkg: real_dir(pkg) if pkg == "matplotlib" else None)
    synth_fonts.font_path.cache_clear()
    synth_fonts.fonts_for.cache_clear()
    try:
        assert synth_fonts.fonts_for(("narrow",)) == (synth_fonts.FALLBACK_FONT,)
        assert all(k.startswith("dejavu") for k in synth_fonts.fonts_for(("din", "narrow", "mono")))
        gen = SyntheticPlateGenerator(seed=0, countries=["GB", "US"])
        assert all(gen().image.dtype == np.uint8 for _ in range(10))
    finally:
        monkeypatch.undo()
        synth_fonts.font_path.cache_clear()
        synth_fonts.fonts_for.cache_clear()
    assert len(synth_fonts.fonts_for(("din", "narrow", "mono"))) >= 3


def _read_labels(d: Path) -> list[dict]:
    with open(d / "labels.csv", newline="", encoding="utf-8") as fh:
        rd = csv.DictReader(fh)
        assert rd.fieldnames == ["filename", "text", "country", "rows"]
        return list(rd)


def test_write_synthetic_dataset(tmp_path):
    out = write_synthetic_dataset(tmp_path / "set", n=12, seed=4, countries=["RU", "VN", "DE"], two_row_prob=0.5)
    rows = _read_labels(out)
    assert len(rows) == 12
    assert rows[0]["filename"] == "images/000000.png"
    for r in rows:
        im = cv2.imread(str(out / r["filename"]))
        assert im is not None and im.ndim == 3
        assert r["country"] in ("RU", "VN", "DE") and r["rows"] in ("1", "2")
        assert is_valid_plate_text(r["country"], r["text"])
    assert sorted(os.listdir(tmp_path)) == ["set"]  # no temp folder left behind
    with pytest.raises(FileExistsError):
        write_synthetic_dataset(tmp_path / "set", n=2, seed=4)
    write_synthetic_dataset(tmp_path / "set", n=3, seed=4, overwrite=True)
    assert len(_read_labels(tmp_path / "set")) == 3


def test_write_synthetic_dataset_workers_and_augment(tmp_path):
    one = write_synthetic_dataset(tmp_path / "w1", n=20, seed=9, augment=degrade, workers=1)
    two = write_synthetic_dataset(tmp_path / "w2", n=20, seed=9, augment=degrade, workers=2)
    assert _read_labels(one) == _read_labels(two)
    for r in _read_labels(one):
        assert (one / r["filename"]).read_bytes() == (two / r["filename"]).read_bytes()


def test_cli(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "data.synth", "--out", str(tmp_path / "cli"), "--n", "6", "--seed", "3",
           "--countries", "DE,FR", "--two-row-prob", "0.5"]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rows = _read_labels(tmp_path / "cli")
    assert len(rows) == 6 and {r["country"] for r in rows} <= {"DE", "FR"}
    res = subprocess.run(cmd[:4] + [str(tmp_path / "clean"), "--n", "2", "--seed", "1", "--clean"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert len(_read_labels(tmp_path / "clean")) == 2
    res = subprocess.run(cmd[:4] + [str(tmp_path / "bad"), "--n", "2", "--seed", "1", "--countries", "DE,QQ"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "QQ" in res.stderr


def test_country_weights_draw_some_countries_more_often():
    from collections import Counter

    from data.synth.generator import SyntheticPlateGenerator

    n = 1500
    plain = SyntheticPlateGenerator(seed=3, countries=["DE", "US", "BR"])
    uniform = Counter(plain().country for _ in range(n))
    weighted = SyntheticPlateGenerator(seed=3, countries=["DE", "US", "BR"], country_weights={"us": 4, "BR": 0})
    counts = Counter(weighted().country for _ in range(n))
    assert counts["BR"] == 0 and set(counts) == {"DE", "US"}
    assert 0.72 < counts["US"] / n < 0.88  # 4 / 5
    assert all(0.25 < uniform[c] / n < 0.42 for c in ("DE", "US", "BR"))
    for bad, message in (({"XX": 2}, "'XX' is not among"), ({"US": -1}, "must be a number >= 0"),
                         ({"DE": 0, "US": 0, "BR": 0}, "every country has weight 0")):
        with pytest.raises(ValueError, match=message):
            SyntheticPlateGenerator(seed=0, countries=["DE", "US", "BR"], country_weights=bad)


def test_the_training_stream_passes_the_country_weights_on():
    from itertools import islice

    from data.datasets import SyntheticPlateDataset

    ds = SyntheticPlateDataset(None, seed=0, countries=["DE", "US", "BR"], country_weights={"DE": 0, "BR": 0})
    assert {item["country"] for item in islice(iter(ds), 30)} == {"US"}
