"""The ``plates`` effects of the generator (any font, stretch, colours, spacing, border) and the
project's committed fonts (data/synth/font_files)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from configs import ConfigError, load_config
from data.synth import SyntheticPlateGenerator
from data.synth import effects as fxm
from data.synth.countries import LOOKS
from data.synth.effects import EFFECT_GROUPS, SynthEffects
from data.synth.fonts import (
    CV_FONTS, FONT_FILES, MID_DOT, PROJECT, PROJECT_DIR, PROJECT_FONTS, all_fonts, font_path, glyphs_for,
)
from data.synth.render import PlateRenderer
from data.synth.textgen import UniformStream
from data.formats import compiled
from data.images import colour_luma

PLATES = EFFECT_GROUPS["plates"]
CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


# --- the committed fonts ----------------------------------------------------------------------
@pytest.mark.parametrize("key", list(PROJECT_FONTS))
def test_committed_font_exists_is_licensed_and_draws_every_character(key):
    source, name = FONT_FILES[key]
    assert source == PROJECT
    path = font_path(key)
    assert path is not None and path == PROJECT_DIR / name, key
    licences = [p for p in path.parent.iterdir() if re.match(r"(LICEN[CS]E|OFL|COPYING)", p.name, re.I)]
    assert licences and all(p.stat().st_size > 500 for p in licences), f"{key}: no licence file beside {path}"
    g = glyphs_for(key)
    masks = {}
    for ch in CHARS:
        m = g.glyph(ch)
        assert m.shape[0] == g.frame_h and (m > 127).sum() > 30, (key, ch)  # drawn, not blank
        assert g.covers(ch), (key, ch)  # from the font's own map, not its missing-glyph box
        masks.setdefault(m.tobytes(), []).append(ch)
    same = [chars for chars in masks.values() if len(chars) > 1]
    assert not same, f"{key}: identical glyphs for {same}"  # e.g. an O that is the 0


def test_the_font_readme_lists_every_committed_file_and_nothing_else():
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `[a-z0-9_]+` \| `([^`]+)` \|", readme, re.M))
    on_disk = {p.relative_to(PROJECT_DIR).as_posix() for p in PROJECT_DIR.rglob("*") if p.suffix in (".ttf", ".otf")}
    assert listed == set(PROJECT_FONTS.values()) == on_disk


def test_a_separator_the_font_lacks_comes_from_the_fallback_in_the_same_frame():
    g = glyphs_for("osp_din")  # OSP DIN has no mid dot
    assert not g.covers(MID_DOT)
    dot = g.glyph(MID_DOT)
    assert dot.shape[0] == g.frame_h and (dot > 127).sum() > 10


def test_all_fonts_is_the_whole_set_and_the_country_groups_are_unchanged():
    fonts = all_fonts()
    assert set(PROJECT_FONTS) | set(CV_FONTS) <= set(fonts)
    assert len(fonts) >= 45
    for look in LOOKS.values():  # the fixed val/test sets draw from the country groups only
        from data.synth.fonts import fonts_for

        assert not set(fonts_for(look.fonts)) & set(PROJECT_FONTS), look.code


# --- effects off: nothing drawn, nothing changed ------------------------------------------------
@pytest.mark.parametrize("country, rows", [("DE", 1), ("US", 1), ("RU", 1), ("RU", 2), ("VN", 2), ("FR", 1)])
def test_effects_at_zero_draw_nothing_from_the_stream(country, rows):
    """The renderer with every effect at 0 draws what it draws without effects, pixel for pixel,
    and leaves the stream where it would be: an effect at 0 may not even roll its dice (the
    fixed val/test sets and the old training mix stay what they were)."""
    cc, look, r = compiled(country), LOOKS[country], PlateRenderer()
    for seed in range(8):
        outs = []
        for fx in (None, SynthEffects()):
            u = UniformStream(np.random.default_rng(seed), block=64)
            fmt = cc.pick(rows, u)
            img, box = r.render_with_box(look, look.styles[fmt.fmt.style], fmt.generate_raw(u), rows, u, fx)
            outs.append((img, box, u()))
        (a, box_a, next_a), (b, box_b, next_b) = outs
        assert np.array_equal(a, b) and box_a == box_b and next_a == next_b, (country, rows, seed)


def test_the_old_effects_mix_is_unchanged_by_the_new_ones_at_zero():
    old = {f.name: 0.3 for f in dataclasses.fields(SynthEffects) if f.name not in PLATES}
    a = SyntheticPlateGenerator(seed=9, two_row_prob=0.3, effects=SynthEffects(**old))
    b = SyntheticPlateGenerator(seed=9, two_row_prob=0.3, effects=SynthEffects(**old, **{k: 0.0 for k in PLATES}))
    for _ in range(40):
        pa, pb = a(), b()
        assert pa.text == pb.text and np.array_equal(pa.image, pb.image)


# --- each effect ------------------------------------------------------------------------------
def test_any_colours_keep_the_contrast_both_ways_round():
    u = UniformStream(np.random.default_rng(0))
    pairs = [fxm.any_colours(u) for _ in range(2000)]
    gaps = [colour_luma(bg) - colour_luma(fg) for bg, fg in pairs]
    assert min(abs(g) for g in gaps) >= fxm.MIN_CONTRAST - 1  # rounding to whole levels
    light_plates = sum(g > 0 for g in gaps) / len(gaps)
    assert 0.5 < light_plates < 0.7  # dark on light 60 %, light on dark the rest
    hues = {tuple(np.array(bg) // 64) for bg, _ in pairs}
    assert len(hues) >= 20  # many colours, not a palette


def test_any_colours_paint_the_plate():
    fx = SynthEffects(any_colours=1.0)
    gen = SyntheticPlateGenerator(seed=1, countries=["DE"], two_row_prob=0.0, effects=fx)
    dark_plates = 0
    for _ in range(40):
        img = gen().image
        dark_plates += np.median(img[img.shape[0] // 2 - 2 : img.shape[0] // 2 + 2]) < 100
    assert 5 <= dark_plates <= 30  # the classic DE plate is always light


def test_spacing_varies_sizes_and_baselines_within_a_row():
    r = PlateRenderer()
    f = r.font("dejavu_bold")
    spc = fxm.Spacing(tracking=0.2, space=0.4, gap_spread=0.4, size_spread=0.1, baseline_spread=0.04)

    def tops_and_heights(vary):
        alpha = np.zeros((120, 600), np.uint8)
        r.text_into(alpha, f, "HHHHHH", 60, 10, 590, 60, vary=vary)
        cols = (alpha > 127).any(axis=0)
        edges = np.flatnonzero(np.diff(np.r_[0, cols.astype(np.int8), 0]))
        out = []
        for x0, x1 in zip(edges[::2], edges[1::2]):
            rows = np.flatnonzero((alpha[:, x0:x1] > 127).any(axis=1))
            out.append((rows[0], rows[-1] - rows[0]))
        return out

    plain = tops_and_heights(None)
    assert len(plain) == 6 and len({t for t, _ in plain}) == 1 and len({h for _, h in plain}) == 1
    varied = tops_and_heights((spc, UniformStream(np.random.default_rng(3))))
    assert len(varied) == 6
    assert len({t for t, _ in varied}) > 2 and len({h for _, h in varied}) > 2
    assert all(abs(h - plain[0][1]) <= 0.06 * 60 + 1 for _, h in varied)  # slight: within +-5 %


@pytest.mark.parametrize("effects", [{"spacing": 1.0}, {"font_stretch": 1.0}, {"border": 1.0},
                                     {k: 1.0 for k in PLATES}])
def test_characters_stay_inside_the_plate(effects, monkeypatch):
    """No character falls outside the plate (nothing cut off), one- and two-row: each row is
    drawn into a larger canvas around the plate and must leave its margin empty, but for a
    tail below the bottom edge (the classic renders let a Q's or J's tail reach 1-3 px below it)."""
    real_text_into = PlateRenderer.text_into
    M = 40
    cut = []

    def text_into(self, alpha, f, text, hc, x0, x1, yc, *a, **k):
        H, W = alpha.shape
        big = np.zeros((H + 2 * M, W + 2 * M), np.uint8)
        big[M : M + H, M : M + W] = alpha
        em, (bx0, by0, bx1, by1) = real_text_into(self, big, f, text, hc, x0 + M, x1 + M, yc + M, *a, **k)
        inner = big[M : M + H, M : M + W]
        outside = big > 127
        outside[M : M + H, M : M + W] = False
        outside[M + H : M + H + int(0.15 * hc) + 1, M : M + W] = False  # a tail just below the plate
        cut.append(int(outside.sum()))
        alpha[:] = inner
        box = (max(bx0 - M, 0), max(by0 - M, 0), min(bx1 - M, W), min(by1 - M, H))
        return [(x - M, w) for x, w in em], box

    monkeypatch.setattr(PlateRenderer, "text_into", text_into)
    gen = SyntheticPlateGenerator(seed=2, two_row_prob=0.5, effects=SynthEffects(**effects))
    for _ in range(200):
        p = gen()
        assert not any(cut), (p.country, p.rows, p.text, cut)
        cut.clear()


def test_border_draws_none_square_rounded_and_inset_rims():
    u = UniformStream(np.random.default_rng(4))
    fg = (20, 20, 20)
    draws = [fxm.border(u, 60.0, fg) for _ in range(1000)]
    share = lambda cond: sum(map(cond, draws)) / len(draws)
    assert 0.12 < share(lambda d: d[0] == 0) < 0.28  # no border
    assert 0.25 < share(lambda d: d[1] == 0) < 0.45  # square corners
    assert 0.15 < share(lambda d: d[2] > 0) < 0.4  # a rim line inside the edge
    assert 0.4 < share(lambda d: d[3] == fg) < 0.6  # the characters' colour, or another


def test_any_font_draws_from_the_whole_set(monkeypatch):
    used = set()
    real_font = PlateRenderer.font
    monkeypatch.setattr(PlateRenderer, "font", lambda self, key: used.add(key) or real_font(self, key))
    gen = SyntheticPlateGenerator(seed=3, effects=SynthEffects(any_font=1.0))
    for _ in range(300):
        gen()
    assert len(used & set(PROJECT_FONTS)) >= 25 and used & set(CV_FONTS)


@pytest.mark.parametrize("name", PLATES)
def test_bad_values_of_the_new_effects_name_the_key(name):
    with pytest.raises(ConfigError, match=rf"data\.synth_effects\.{name}"):
        load_config("crnn", overrides=[f"data.synth_effects.{name}=1.5"])
    with pytest.raises(ConfigError, match=rf"data\.synth_effects\.{name}"):
        load_config("crnn", overrides=[f"data.synth_effects.{name}=often"])
    assert getattr(load_config("crnn", overrides=[f"data.synth_effects.{name}=0.2"]).data.effects, name) == 0.2


def test_fonts_load_once_per_process():
    """The glyph sources are cached per font key (PlateRenderer.font), as the masks per character."""
    r = PlateRenderer()
    assert r.font("oswald_bold") is r.font("oswald_bold")
    g = r.font("oswald_bold")
    assert g.glyph("A") is g.glyph("A")


def test_project_dir_is_in_the_package():
    assert PROJECT_DIR == Path(__file__).resolve().parents[1] / "data" / "synth" / "font_files"
