"""Realism effects of the generator (data.synth.effects), OpenCV faces and weights, camera effects, config."""

from __future__ import annotations

import dataclasses
import re

import cv2
import numpy as np
import pytest

from configs import ConfigError, load_config
from data.formats import compiled, is_valid_plate_text
from data.synth import SyntheticPlateGenerator
from data.synth.effects import EFFECT_GROUPS, SynthEffects, glyph_warp, pattern
from data.synth.fonts import CV_FONTS, FORMS, MID_DOT, STROKE_FONTS, WEIGHTS, glyphs_for
from data.synth.textgen import UniformStream
from data.text import COUNTRIES, normalize_plate_text
from data.transforms import CAMERA_EFFECTS, build_transform, check_camera_effects
from tools.augment_grid import main as grid_main

EFFECTS = [f.name for f in dataclasses.fields(SynthEffects)]
TWO_ROW = [c for c in COUNTRIES if SyntheticPlateGenerator(countries=[c])._compiled[0].has_two_rows]


def _plates(gen: SyntheticPlateGenerator, country: str, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for rows in (1, 2) if country in TWO_ROW else (1,):
        for _ in range(n):
            yield gen.render_text(country, rng, rows)


@pytest.mark.parametrize("effect", EFFECTS)
def test_every_effect_renders_every_country_and_layout(effect):
    fx = SynthEffects().only(effect)
    gen = SyntheticPlateGenerator(seed=3, effects=fx)
    for country in COUNTRIES:
        for p in _plates(gen, country, 2):
            im = p.image
            assert im.dtype == np.uint8 and im.ndim == 3 and im.shape[2] == 3, (effect, country)
            assert im.std() > 5, (effect, country)
            # The label comes from the generated text, never from what the effect drew; only
            # any_text and any_letters write texts outside the country's formats.
            if effect in ("any_text", "formats"):
                assert re.fullmatch("[0-9A-Z]{4,9}", p.text), (effect, country, p.text)
            elif effect == "any_letters":
                assert re.fullmatch("[0-9A-Z]+", p.text), (effect, country, p.text)
            else:
                assert is_valid_plate_text(country, p.text), (effect, country, p.text)
            assert p.text == normalize_plate_text("".join(p.row_texts))


def test_labels_do_not_depend_on_the_effects():
    """Same seed, effects on or off: the same texts (effects draw after the text is chosen)."""
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    plain = SyntheticPlateGenerator(seed=0)
    fancy = SyntheticPlateGenerator(seed=0, effects=SynthEffects().only("fonts"))
    for country in ("BR", "US", "DE", "VN"):
        a = plain.render_text(country, rng_a)
        b = fancy.render_text(country, rng_b)
        assert a.text == b.text and a.row_texts == b.row_texts


def test_surround_makes_a_larger_image_with_the_plate_inside():
    gen_plain = SyntheticPlateGenerator(seed=0)
    gen_mount = SyntheticPlateGenerator(seed=0, effects=SynthEffects(surround=1.0, frame=1.0))
    a = gen_plain.render_text("US", np.random.default_rng(2))
    b = gen_mount.render_text("US", np.random.default_rng(2))
    assert b.image.shape[0] > a.image.shape[0] and b.image.shape[1] > a.image.shape[1]
    assert a.text == b.text


def test_all_off_is_the_classic_generator():
    """The fixed val/test sets are made with effects off: they must stay byte-identical."""
    a = SyntheticPlateGenerator(seed=11)
    b = SyntheticPlateGenerator(seed=11, effects=SynthEffects())
    assert b.effects is None
    for _ in range(40):
        pa, pb = a(), b()
        assert pa.text == pb.text and np.array_equal(pa.image, pb.image)


def test_effects_are_deterministic_and_change_pixels():
    fx = SynthEffects(**{k: 0.5 for k in EFFECTS})
    g1, g2 = SyntheticPlateGenerator(seed=4, effects=fx), SyntheticPlateGenerator(seed=4, effects=fx)
    plain = SyntheticPlateGenerator(seed=4)
    changed = 0
    for _ in range(30):
        p1, p2, p0 = g1(), g2(), plain()
        assert p1.text == p2.text and np.array_equal(p1.image, p2.image)
        changed += p1.image.shape != p0.image.shape or not np.array_equal(p1.image, p0.image)
    assert changed >= 20


@pytest.mark.parametrize("key", [*CV_FONTS, *(f"{f}/{w}" for f in CV_FONTS for w in WEIGHTS),
                                 *(f"roboto_bold/{w}" for w in WEIGHTS), *STROKE_FONTS, "stroke_bold/heavy",
                                 "stroke_light_box", "stroke_regular_box_bar1"])
def test_font_variants_draw_every_character(key):
    g = glyphs_for(key)
    for ch in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-." + MID_DOT:
        m = g.glyph(ch)
        assert m.dtype == np.uint8 and m.shape[0] == g.frame_h and m.max() > 200, (key, ch)


def test_font_weights_change_the_ink():
    for font in ("roboto_bold", "cv_simplex"):
        ink = {w: (glyphs_for(f"{font}/{w}").glyph("H") > 127).sum() for w in WEIGHTS}
        ink["plain"] = (glyphs_for(font).glyph("H") > 127).sum()
        assert ink["thin"] < ink["plain"] < ink["bold"] < ink["heavy"], font


def test_glyph_forms_draw_each_character_in_its_forms_and_leave_the_rest():
    """Over the faces of the glyph_forms effect every character with other forms shows each of them
    and its usual one; the characters without them, and a face's draw, stay the same every time."""
    from data.synth.strokefont import FORM_SETS, _forms
    plain = glyphs_for("stroke_regular")
    faces = [glyphs_for(f"stroke_regular{FORMS}{k}") for k in range(FORM_SETS)]
    for ch, alternates in _forms(2.0).items():
        shapes = {plain.glyph(ch).tobytes()} | {f.glyph(ch).tobytes() for f in faces}
        assert len(shapes) == len(alternates) + 1, ch
    for ch in "0258BCDEHLNOPRSTVXY":
        assert all(np.array_equal(f.glyph(ch), plain.glyph(ch)) for f in faces), ch
    assert np.array_equal(glyphs_for(f"stroke_regular{FORMS}3").glyph("W"), faces[3].glyph("W"))
    # The Brazilian cut keeps its plain-bar 1 and curled 6 and 9 under any forms.
    bar = glyphs_for("stroke_regular_bar1")
    for k in range(FORM_SETS):
        f = glyphs_for(f"stroke_regular_bar1{FORMS}{k}")
        assert all(np.array_equal(f.glyph(c), bar.glyph(c)) for c in "169")
    with pytest.raises(ValueError, match="glyph forms"):
        glyphs_for(f"stroke_regular{FORMS}{FORM_SETS}")


def test_glyph_forms_effect_draws_the_stroke_face_in_its_forms(monkeypatch):
    from data.synth import render
    keys = []
    real = render.PlateRenderer.font
    monkeypatch.setattr(render.PlateRenderer, "font", lambda self, key: keys.append(key) or real(self, key))
    gen = SyntheticPlateGenerator(seed=3, effects=SynthEffects(stroke_font=1.0, glyph_forms=1.0))
    for _ in range(40):
        gen()
    faces = [k for k in keys if k.startswith("stroke_")]  # the text's font (small print has its own)
    assert len(faces) >= 40 and all(FORMS in k for k in faces)
    assert len({k.rpartition(FORMS)[2] for k in faces}) > 8  # many faces, not one
    keys.clear()
    gen = SyntheticPlateGenerator(seed=3, effects=SynthEffects(stroke_font=1.0))
    for _ in range(40):
        gen()
    faces = [k for k in keys if k.startswith("stroke_")]
    assert len(faces) >= 40 and not any(FORMS in k for k in faces)


def test_stroke_face_shapes():
    """The plate-face traits it is there for: heavier pens ink more, the 1 has no foot (its
    bottom row is one stem, narrower than the flag row), zero narrower than O, O with straight sides."""
    ink = [(glyphs_for(k).glyph("H") > 127).sum() for k in STROKE_FONTS]
    assert ink == sorted(ink) and ink[0] < ink[-1]
    g = glyphs_for("stroke_regular")
    one = g.glyph("1") > 127
    rows = np.flatnonzero(one.any(axis=1))
    width_at = lambda r: np.ptp(np.flatnonzero(one[r])) + 1
    assert width_at(rows[-1] - 2) < 0.6 * width_at(rows[0] + int(0.15 * g.cap))
    assert g.glyph("0").shape[1] < g.glyph("O").shape[1]
    o = g.glyph("O") > 127
    left = [int(np.argmax(o[r])) for r in range(g.pad + g.cap // 3, g.pad + 2 * g.cap // 3)]
    assert max(left) - min(left) <= 1  # a straight left side over the middle third
    # The Brazilian variant draws the 1 as a plain bar, the I's shape.
    bar = glyphs_for("stroke_regular_bar1")
    assert np.array_equal(bar.glyph("1"), bar.glyph("I")) and not np.array_equal(g.glyph("1"), g.glyph("I"))
    # ... and curls the hooks of its 6 and 9 further round (the 6's down its right side, the 9's
    # up its left side): more ink in that side's outer fifth between the hook and the bowl.
    def side_ink(m, right):
        rows = np.flatnonzero((m > 127).any(axis=1))
        h, w = rows[-1] - rows[0], m.shape[1]
        band = m[rows[0] + int(0.22 * h) : rows[0] + int(0.34 * h)] if right else \
            m[rows[-1] - int(0.34 * h) : rows[-1] - int(0.22 * h)]
        return (band[:, w - w // 5 :] if right else band[:, : w // 5]).__gt__(127).sum()
    assert side_ink(bar.glyph("6"), right=True) > side_ink(g.glyph("6"), right=True) + 2
    assert side_ink(bar.glyph("9"), right=False) > side_ink(g.glyph("9"), right=False) + 2
    # The boxy variant: the O's corners filled out towards its bounding box (more ink near them).
    box = glyphs_for("stroke_regular_box")
    def corner_ink(m):
        rows = np.flatnonzero((m > 127).any(axis=1))
        q = (rows[-1] - rows[0]) // 5
        return (m[rows[0] : rows[0] + q, : m.shape[1] // 5] > 127).sum()
    assert corner_ink(box.glyph("O")) > 1.5 * corner_ink(g.glyph("O"))
    # Characters it does not define come from the fallback font in the same frame.
    assert g.glyph(".").shape[0] == g.frame_h


def test_us_scenes_draw_on_us_plates_only():
    fx = SynthEffects(us_scenes=1.0)
    plain, scenic = SyntheticPlateGenerator(seed=0), SyntheticPlateGenerator(seed=0, effects=fx)
    for country in ("DE", "BR"):
        a = plain.render_text(country, np.random.default_rng(1))
        b = scenic.render_text(country, np.random.default_rng(1))
        assert np.array_equal(a.image, b.image), country
    changed = 0
    for seed in range(5):
        a = plain.render_text("US", np.random.default_rng(seed))
        b = scenic.render_text("US", np.random.default_rng(seed))
        assert a.text == b.text
        changed += a.image.shape != b.image.shape or not np.array_equal(a.image, b.image)
    assert changed == 5


def test_opencv_zero_is_not_slashed():
    """The zero is the O's ring narrowed: its centre column is empty in the middle third."""
    z = glyphs_for("cv_simplex").glyph("0")
    mid = z[z.shape[0] // 2 - 4 : z.shape[0] // 2 + 4, z.shape[1] // 2 - 2 : z.shape[1] // 2 + 2]
    assert mid.max() < 64
    assert z.shape[1] < glyphs_for("cv_simplex").glyph("O").shape[1]


def test_unknown_font_variant():
    with pytest.raises(ValueError, match="unknown weight"):
        glyphs_for("roboto_bold/ultra")
    with pytest.raises(ValueError, match="unknown font"):
        glyphs_for("comic_sans")


def test_effects_without_and_only():
    fx = SynthEffects(**{k: 0.5 for k in EFFECTS})
    off = fx.without("clutter", "glare")
    assert all(getattr(off, k) == 0 for k in (*EFFECT_GROUPS["clutter"], "glare"))
    assert off.emboss == 0.5
    only = SynthEffects().only("surface")
    assert {k for k in EFFECTS if getattr(only, k) > 0} == set(EFFECT_GROUPS["surface"])
    with pytest.raises(ValueError, match="unknown effect group"):
        fx.without("weather")


def test_effects_config_validation():
    cfg = load_config(path="configs/realism_crnn.yaml")
    assert cfg.data.effects.any and cfg.data.camera  # stage 2 of the shipped models
    assert not load_config(path="configs/classic_crnn.yaml").data.effects.any  # the classic plates
    main = load_config("crnn")  # the README's main command: the robust mix, ramped in from clean plates
    assert main.data.effects.any and main.data.camera and main.data.synth_effects_ramp_steps > 0
    with pytest.raises(ConfigError, match=r"data\.synth_effects\.smudge"):
        load_config("crnn", overrides=["data.synth_effects.smudge=0.2"])
    with pytest.raises(ConfigError, match=r"data\.synth_effects\.gradient"):
        load_config("crnn", overrides=["data.synth_effects.gradient=yes"])
    with pytest.raises(ConfigError, match=r"data\.synth_effects\.dirt"):
        load_config("crnn", overrides=["data.synth_effects.dirt=1.5"])
    with pytest.raises(ConfigError, match=r"data\.camera_effects\.snow"):
        load_config("crnn", overrides=["data.camera_effects.snow=0.1"])
    c = load_config(path="configs/realism_crnn.yaml",
                    overrides=["data.synth_effects.dirt=0", "data.camera_effects.night=0.5"])
    assert c.data.effects.dirt == 0.0 and c.data.effects.emboss == cfg.data.effects.emboss
    assert c.data.camera["night"] == 0.5
    none = load_config(path="configs/realism_crnn.yaml",
                       overrides=["data.synth_effects=null", "data.camera_effects=null"])
    assert not none.data.effects.any and none.data.camera == {}


@pytest.mark.parametrize("effect", CAMERA_EFFECTS)
def test_camera_effects_apply(effect):
    tf = build_transform("train", 32, 160, camera_effects={effect: 1.0})
    tf.set_seed(0)
    plate = SyntheticPlateGenerator(seed=0)()
    out = tf.augment(plate.image)
    assert out.shape == (32, 160, 3) and out.dtype == np.uint8
    t = tf(plate.image)
    assert t.shape == (3, 32, 160) and float(t.min()) >= -1.0 and float(t.max()) <= 1.0


def test_camera_effects_validation():
    assert check_camera_effects({"night": 0.2}) == {"night": 0.2}
    with pytest.raises(ValueError, match="unknown effect"):
        check_camera_effects({"fog": 0.2})
    with pytest.raises(ValueError, match="probability"):
        check_camera_effects({"rain": -0.1})


@pytest.mark.parametrize("effect", ["surround", "fonts", "night", "frame", "us_scenes", "plates", "any_colours"])
def test_grid_shows_one_effect(tmp_path, effect):
    out = tmp_path / f"{effect}.png"
    assert grid_main(["--out", str(out), "--n", "4", "--effect", effect]) == 0
    assert out.stat().st_size > 1000


def test_a_previewed_effect_comes_with_what_it_needs():
    # A frame is drawn on the mount only: previewing it alone showed nothing.
    assert SynthEffects().only("frame").surround == 1.0
    assert SynthEffects().only("glare").surround == 0.0


def test_grid_shows_every_effect_a_row_each(tmp_path):
    out = tmp_path / "all.png"
    assert grid_main(["--out", str(out), "--effect", "all", "--cols", "2", "--scale", "1"]) == 0
    import cv2

    grid = cv2.imread(str(out))
    rows = len(EFFECTS) + len(CAMERA_EFFECTS)
    tile_h = 32 + 22 + 6  # input height, label, padding (tools.augment_grid.make_grid)
    assert grid.shape[0] == rows * tile_h + 6


def test_grid_with_config(tmp_path):
    out = tmp_path / "grid.png"
    assert grid_main(["--out", str(out), "--n", "4", "--config", "configs/realism_crnn.yaml"]) == 0
    assert out.is_file()


def test_effects_ramp_in_the_training_stream(monkeypatch):
    """data.synth_effects_ramp_steps: few plates get effects early, all once the ramp is over
    (a resumed run starts where its ramp was)."""
    import data.synth.generator as generator_module
    from data.datasets import SyntheticPlateDataset

    calls = []
    real_mount = generator_module.mount
    monkeypatch.setattr(generator_module, "mount", lambda *a, **k: calls.append(1) or real_mount(*a, **k))

    def mounted(ramp: tuple[int, int], n: int = 60) -> int:
        calls.clear()
        ds = SyntheticPlateDataset(None, seed=1, two_row_prob=0.0, effects=SynthEffects(surround=1.0),
                                   effects_ramp=ramp)
        it = iter(ds)
        for _ in range(n):
            next(it)
        return len(calls)

    assert mounted((10_000, 0)) <= 6  # the share grows from 0: ~0.3 % on average over the first 60
    assert mounted((10_000, 10_000)) == 60
    assert mounted((0, 0)) == 60


def test_effects_ramp_reaches_the_camera_effects():
    """The ramp's share also gates the camera effects: early in the ramp most images take the
    plain pipeline (no camera effect), after it every image takes the full one."""
    from data.datasets import SyntheticPlateDataset
    from data.transforms import build_transform

    def camera_images(ramp: tuple[int, int], n: int = 40) -> int:
        tf = build_transform("train", 32, 96, camera_effects={"false_colour": 1.0})
        full = []

        class Counted:  # the full pipeline, counting its calls
            def __init__(self, compose):
                self.compose = compose

            def set_random_state(self, *a):
                self.compose.set_random_state(*a)

            def __call__(self, **kw):
                full.append(1)
                return self.compose(**kw)

        tf.compose = Counted(tf.compose)
        it = iter(SyntheticPlateDataset(tf, seed=1, two_row_prob=0.0, effects_ramp=ramp))
        for _ in range(n):
            next(it)
        return len(full)

    assert camera_images((10_000, 0)) <= 3  # share 0 .. 0.4 %
    assert camera_images((10_000, 10_000)) == 40
    assert camera_images((0, 0)) == 40
    tf = build_transform("train", 32, 96)
    assert tf.plain is None  # no camera effects: nothing to skip


def test_the_ramp_leaves_real_crops_of_a_mix_alone(tmp_path):
    """With data.synth_mix the synthetic stream has its own transform: its ramp share must not
    switch the camera effects off for the real crops."""
    import cv2

    from data.datasets import PlateRecord
    from training.data import Loading, train_data

    cfg = load_config(path="configs/robust_crnn.yaml",
                      overrides=["data.synth_effects_ramp_steps=1000", "data.synth_mix=0.5", f"data.train={tmp_path}"])
    cv2.imwrite(str(tmp_path / "a.png"), np.full((40, 120, 3), 200, np.uint8))
    records = [PlateRecord(path=tmp_path / "a.png", text="AB123", country="")] * 4
    td = train_data(cfg.data, records, batch_size=2, samples_per_step=2, seed=0, start_step=0, rank=0,
                    world_size=1, load=Loading(workers=0))
    synth, real = td.dataset.synth, td.dataset.real
    assert synth.transform is not real.transform
    it = iter(td.dataset)
    for _ in range(6):
        next(it)
    assert synth.transform.effects_share < 1.0 and real.transform.effects_share == 1.0


def test_grey_brazilian_plates_get_their_real_proportions_with_the_effects_only():
    """The realism stream draws the grey plates' characters at about half the plate height (63 mm of
    130 mm); the classic renders (the fixed val/test sets) keep their larger characters."""

    def text_height_share(effects):
        gen = SyntheticPlateGenerator(seed=4, countries=["BR"], two_row_prob=0.0, effects=effects)
        shares = []
        while len(shares) < 12:
            p = gen()
            r, g, b = p.image.reshape(-1, 3).mean(axis=0)
            if p.text[4].isalpha() or r > g + 30:  # Mercosul, or the red plates (white characters)
                continue
            w = p.image.shape[1]
            dark = (p.image[:, w // 5 : 4 * w // 5].max(axis=2) < 70).mean(axis=1)
            inked = (dark > 0.1) & (dark < 0.9)  # not the border, not the gaps
            longest = run = 0
            for row in inked:  # the characters: the longest run of inked rows (the city strip is short)
                run = run + 1 if row else 0
                longest = max(longest, run)
            shares.append(longest / p.image.shape[0])
        return float(np.median(shares))

    classic = text_height_share(None)
    real = text_height_share(SynthEffects(separators=1e-9))  # effects on, none drawn
    assert real < 0.53 and classic > real + 0.08, (real, classic)


def test_small_lines_suit_the_country():
    """State slogans ("LIVE FREE OR DIE") only on US plates; dealer lines on any plate."""
    from data.synth import effects as fxm
    from data.synth.render import PlateRenderer

    assert not set(fxm.captions_for("BR")) & set(fxm.US_SLOGANS)
    assert set(fxm.captions_for("US")) >= set(fxm.US_SLOGANS) | set(fxm.DEALER_LINES)
    drawn: dict[str, set[str]] = {}
    real_put = PlateRenderer.put_caption

    def spy(self, img, text, *a, **k):
        drawn.setdefault(country, set()).add(text)
        return real_put(self, img, text, *a, **k)

    fx = SynthEffects(small_text=1.0, surround=1.0, frame=1.0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(PlateRenderer, "put_caption", spy)
        for country in ("BR", "DE", "US"):
            gen = SyntheticPlateGenerator(seed=5, countries=[country], two_row_prob=0.0, effects=fx)
            for _ in range(40):
                gen()
    for country in ("BR", "DE"):
        assert drawn[country] & set(fxm.DEALER_LINES), country
        assert not drawn[country] & set(fxm.US_SLOGANS), (country, drawn[country] & set(fxm.US_SLOGANS))
    assert drawn["US"] & set(fxm.US_SLOGANS)


def test_state_formats_draw_every_further_format_and_nothing_else():
    us = compiled("US")
    assert us.more, "the US entry has further formats"
    gen = SyntheticPlateGenerator(seed=4, countries=["US"], two_row_prob=0.0, effects=SynthEffects(state_formats=1.0))
    seen = set()
    for _, p in zip(range(600), gen):
        hits = [f.fmt.pattern for f in us.more if re.fullmatch(f.regex, p.text)]
        assert hits, p.text
        assert is_valid_plate_text("US", p.text)
        seen.update(hits)
    assert seen == {f.fmt.pattern for f in us.more}
    # off: only the common formats
    plain = SyntheticPlateGenerator(seed=4, countries=["US"], two_row_prob=0.0, effects=SynthEffects(screws=1.0))
    common = [f.regex for f in us.formats[0]]
    assert all(any(re.fullmatch(rx, p.text) for rx in common) for _, p in zip(range(200), plain))


def test_any_text_writes_texts_of_no_format_in_the_bounds_it_states(monkeypatch):
    from data.synth import effects
    from data.synth.effects import MIXED, any_text
    from data.synth.textgen import UniformStream

    u = UniformStream(np.random.default_rng(0))
    one = [any_text(u, 1) for _ in range(3000)]
    two = [any_text(u, 2) for _ in range(3000)]
    lengths = {len(normalize_plate_text(t)) for t in one}
    assert lengths == set(range(4, 10))
    for t in two:
        top, bottom = t.split("|")
        assert 2 <= len(normalize_plate_text(top)) <= 4 and 3 <= len(normalize_plate_text(bottom)) <= 5, t
    assert {t.count(" ") + t.count("-") for t in one} >= {0, 1, 2}
    monkeypatch.setattr(effects, "GROUP_GAPS", (" ",))  # every group seen apart
    groups = [g for _ in range(2000) for g in re.split(r"[ |]", any_text(u, 1 + u.randint(2)))]
    assert all(g.isascii() and g.isalnum() and g == g.upper() for g in groups)
    kinds = {"digits" if g.isdigit() else "letters" if g.isalpha() else "mixed" for g in groups}
    assert kinds == {"digits", "letters", "mixed"}
    mixed = [g for g in groups if not g.isdigit() and not g.isalpha()]
    assert all(c in MIXED for g in mixed for c in g)  # no O, I or Q beside digits
    assert max(len(normalize_plate_text(any_text(u, 1, max_len=6))) for _ in range(500)) == 6
    # Texts of no country: most fit none of the formats of the country whose look they get.
    gen = SyntheticPlateGenerator(seed=4, two_row_prob=0.3, effects=SynthEffects(any_text=1.0))
    plates = [gen() for _ in range(300)]
    assert sum(is_valid_plate_text(p.country, p.text) for p in plates) < 30
    assert {p.rows for p in plates} == {1, 2}
    assert all(p.text == normalize_plate_text("".join(p.row_texts)) for p in plates)


def test_any_letters_draws_every_letter_in_the_formats_layout():
    from data.formats import COUNTRY_FORMATS, LATIN, compiled

    for country in ("IT", "US", "VN", "ES"):  # alphabets that leave letters out
        allowed = set(COUNTRY_FORMATS[country].letters)
        seen = set()
        for fmt in [f for row_formats in compiled(country).formats for f in row_formats]:
            for seed in range(60):
                plain = fmt.generate_raw(UniformStream(np.random.default_rng(seed)))
                text = fmt.generate_raw(UniformStream(np.random.default_rng(seed)), LATIN)
                # The same draws: the layout, the digits and the pools' values stay; only the
                # format's letters come from A-Z.
                assert len(text) == len(plain), (country, fmt.fmt.pattern, plain, text)
                for a, b in zip(plain, text):
                    assert a == b or (a in allowed and b.isalpha()), (country, fmt.fmt.pattern, plain, text)
                seen |= set(text)
        assert set(LATIN) - allowed <= seen, country
    # In the stream: a country's left-out letters appear about as often as any other letter.
    gen = SyntheticPlateGenerator(seed=2, countries=["IT"], effects=SynthEffects(any_letters=1.0))
    letters = [c for _ in range(400) for c in gen().text if c.isalpha()]
    assert letters.count("Q") > len(letters) / 26 / 2
    plain = SyntheticPlateGenerator(seed=2, countries=["IT"])
    assert not any("Q" in plain().text for _ in range(400))


def test_text_crop_cuts_to_the_characters_box_each_side_within_its_range():
    from data.synth.effects import TEXT_CROP_ENDS, TEXT_CROP_SIDES, text_crop
    from data.synth.textgen import UniformStream

    H, W = 100, 300
    ys, xs = np.mgrid[:H, :W]
    img = np.dstack([xs % 256, ys, xs // 256]).astype(np.uint8)  # each pixel says where it was
    u = UniformStream(np.random.default_rng(0))
    for rows, box in ((1, (40, 20, 260, 80)), (2, (40, 10, 260, 90))):
        row = (box[3] - box[1]) / rows
        sides = {"left": [], "right": [], "top": [], "bottom": []}
        for _ in range(400):
            out = text_crop(img, u, box, rows)
            x0, y0 = int(out[0, 0, 0]) + 256 * int(out[0, 0, 2]), int(out[0, 0, 1])
            sides["left"].append((box[0] - x0) / row)
            sides["top"].append((box[1] - y0) / row)
            sides["right"].append((x0 + out.shape[1] - box[2]) / row)
            sides["bottom"].append((y0 + out.shape[0] - box[3]) / row)
        for side, (lo, hi) in (("left", TEXT_CROP_SIDES), ("right", TEXT_CROP_SIDES),
                               ("top", TEXT_CROP_ENDS), ("bottom", TEXT_CROP_ENDS)):
            v = np.array(sides[side])
            slack = 1 / row  # rounding to whole pixels
            assert lo - slack <= v.min() < lo + 0.1 and hi - 0.1 < v.max() <= hi + slack, (rows, side)
            assert (v < 0).any() and (v > 0).mean() > 0.5, (rows, side)  # in at times, out mostly
    assert text_crop(img, u, (W, H, 0, 0), 1) is img  # no characters drawn: the plate as it is
    # Near the plate's edges the crop stops at the edge.
    out = text_crop(img, u, (0, 0, W, H), 1)
    assert out.shape[0] <= H and out.shape[1] <= W
    # In the generator: smaller images than the plates, the labels valid.
    plain = SyntheticPlateGenerator(seed=2, effects=SynthEffects(border=1.0))
    tight = SyntheticPlateGenerator(seed=2, effects=SynthEffects(border=1.0, text_crop=1.0))
    for i, country in enumerate(COUNTRIES):  # each plate from its own stream: the same text and render
        p, q = (g.render_text(country, np.random.default_rng(i)) for g in (plain, tight))
        assert p.text == q.text and is_valid_plate_text(country, q.text)
        assert q.image.shape[0] <= p.image.shape[0] and q.image.shape[1] < p.image.shape[1], country


def test_further_formats_are_valid_texts_and_other_countries_have_none():
    assert is_valid_plate_text("US", "AB1C2D")  # Missouri
    assert is_valid_plate_text("US", "5TQY867")  # California, with Q
    assert not is_valid_plate_text("US", "AB1C2")
    assert not compiled("DE").more
    with pytest.raises(ValueError, match="DE has no further formats"):
        compiled("DE").pick_more(None)


def test_gap_tab_is_drawn_between_the_groups_and_never_over_a_character():
    from data.synth.effects import TAB, gap_icon
    from data.synth.textgen import UniformStream

    H, W, hc = 60, 200, 40
    alpha = np.zeros((H, W), np.uint8)
    alpha[10:50, 20:80] = 255  # "AB1"
    alpha[10:50, 120:180] = 255  # "C2D"
    for seed in range(20):
        img = np.full((H, W, 3), 230, np.uint8)
        gap_icon(img, alpha, UniformStream(np.random.default_rng(seed)), (20, 10, 180, 50), hc, kind=TAB)
        changed = (img != 230).any(-1)
        assert changed.any(), seed
        xs = np.nonzero(changed.any(0))[0]
        assert xs.min() >= 80 and xs.max() < 120, (seed, xs.min(), xs.max())
    # a gap narrower than 0.3 of the character height gets nothing
    alpha[10:50, 80:120] = 255
    alpha[10:50, 95:100] = 0
    img = np.full((H, W, 3), 230, np.uint8)
    gap_icon(img, alpha, UniformStream(np.random.default_rng(0)), (20, 10, 180, 50), hc, kind=TAB)
    assert (img == 230).all()


def test_deep_frames_never_cover_the_characters():
    import cv2

    from data.synth.effects import mount
    from data.synth.textgen import UniformStream

    H, W, box = 60, 120, (30, 18, 90, 42)
    plate = np.full((H, W, 3), 200, np.uint8)
    yy, xx = np.mgrid[box[1] : box[3], box[0] : box[2]]
    plate[box[1] : box[3], box[0] : box[2]] = (((yy // 3 + xx // 3) % 2) * 255)[..., None].astype(np.uint8)
    chars = plate[box[1] : box[3], box[0] : box[2]].copy()

    def caption(img, text, hc, max_w, cx, cy, colour):  # a solid block where the text goes
        h, w = max(1, int(hc)), int(max_w)
        y, x = int(cy - h / 2), int(cx - w / 2)
        img[max(0, y) : y + h, max(0, x) : x + w] = colour

    deep = 0
    for seed in range(40):
        out = mount(plate, UniformStream(np.random.default_rng(seed)), 1.0, caption, box)
        diff = cv2.matchTemplate(out, chars, cv2.TM_SQDIFF)
        y, x = np.unravel_index(diff.argmin(), diff.shape)
        assert (out[y : y + chars.shape[0], x : x + chars.shape[1]] == chars).all(), seed  # untouched
        ml, mt = x - box[0], y - box[1]
        top_strip = out[mt + 2 : mt + box[1] - 2, ml + 10 : ml + W - 10]
        deep += not (top_strip == 200).all()  # the frame reached into the plate's top strip
    assert 5 <= deep <= 35


def test_us_scenes_still_get_stacked_characters_and_tab_plates_their_tab(monkeypatch):
    from data.synth import effects as fxm

    calls = {"stacked": 0, "tab": 0}
    real_stacked, real_icon = fxm.stacked_characters, fxm.gap_icon

    def stacked(*a, **k):
        calls["stacked"] += 1
        return real_stacked(*a, **k)

    def icon(*a, kind=None, **k):
        calls["tab"] += kind == fxm.TAB
        return real_icon(*a, kind=kind, **k)

    monkeypatch.setattr(fxm, "stacked_characters", stacked)
    monkeypatch.setattr(fxm, "gap_icon", icon)
    scenes = SyntheticPlateGenerator(seed=2, countries=["US"], two_row_prob=0.0, effects=SynthEffects(us_scenes=1.0))
    for _, _p in zip(range(40), scenes):
        pass
    assert calls["stacked"] > 0 and calls["tab"] == 0  # no state formats: no tab style
    tabs = SyntheticPlateGenerator(seed=2, countries=["US"], two_row_prob=0.0,
                                   effects=SynthEffects(state_formats=1.0))
    for _, _p in zip(range(60), tabs):
        pass
    assert calls["tab"] > 0


def test_light_looks_never_leave_a_blank_frame():
    """A faded or night frame keeps its text: stacked darkening or a brightness shift on a faded
    frame used to clip some of them to one flat colour, a label with nothing to read (10 of 2,000
    frames at the realism configs' probabilities)."""
    gen = SyntheticPlateGenerator(seed=5, effects=SynthEffects(surround=0.6, gradient=0.3, frame=0.3))
    plates = [gen() for _ in range(150)]
    for looks in ({"night": 1.0, "faded": 1.0}, {"faded": 1.0}):
        tf = build_transform("train", 32, 128, camera_effects=looks)
        tf.set_seed(1)
        outs = [tf.augment(p.image) for p in plates]
        assert min(float(o.std()) for o in outs) >= 3.0, looks
        assert min(float(np.percentile(o, 99)) for o in outs) >= 40.0, looks


def test_exposure_floor_brightens_only_dark_frames():
    from data.transforms import ExposureFloor

    op = ExposureFloor(floor=60.0)
    dark = np.full((8, 16, 3), 10, np.uint8)
    dark[2:6, 4:12] = 20
    out = op(image=dark)["image"]
    assert np.percentile(out, 99) >= 59 and out[3, 5, 0] > out[0, 0, 0]  # brighter, text still darker/lighter
    bright = np.full((8, 16, 3), 120, np.uint8)
    assert np.array_equal(op(image=bright)["image"], bright)


def test_lookalikes_draws_1_as_i_and_0_as_o_or_the_reverse_and_keeps_the_label(monkeypatch):
    from data.synth import effects
    from data.synth.effects import LOOKALIKE_ONE, LOOKALIKE_ZERO, lookalikes
    from data.synth.render import PlateRenderer
    from data.synth.textgen import UniformStream

    u = UniformStream(np.random.default_rng(0))
    tables = [lookalikes(u) for _ in range(4000)]
    assert all(tables)  # each plate with the effect draws at least one character as another
    assert not any(ord("0") in t and ord("O") in t for t in tables)  # never both ways
    assert all(set(t.items()) <= {(ord("1"), "I"), (ord("0"), "O"), (ord("O"), "0")} for t in tables)
    # The rates, given at least one merge (the redraw of empty tables raises each a little).
    empty = (1 - LOOKALIKE_ONE) * (1 - sum(LOOKALIKE_ZERO))
    assert abs(sum(ord("1") in t for t in tables) / 4000 - LOOKALIKE_ONE / (1 - empty)) < 0.03

    drawn: list[str] = []
    text_into = PlateRenderer.text_into

    def record(self, alpha, f, text, *a, **k):
        drawn.append(text)
        return text_into(self, alpha, f, text, *a, **k)

    monkeypatch.setattr(PlateRenderer, "text_into", record)
    monkeypatch.setattr(effects, "lookalikes", lambda u: {ord("1"): "I"})
    gen = SyntheticPlateGenerator(seed=1, countries=["PL", "CZ", "BR"], two_row_prob=0.0,
                                  effects=SynthEffects(lookalikes=1.0))
    labels = [gen().text for _ in range(100)]
    assert sum("1" in t for t in labels) > 20  # the labels keep their 1s
    assert not any("1" in t for t in drawn) and any("I" in t for t in drawn)  # no 1 was drawn as a 1
    drawn.clear()
    plain = SyntheticPlateGenerator(seed=1, countries=["PL", "CZ", "BR"], two_row_prob=0.0)
    assert [plain().text for _ in range(100)] and any("1" in t for t in drawn)  # off: drawn as written


def test_pattern_prints_behind_the_characters_only():
    """The background pattern changes the plate around the characters and leaves their pixels be."""
    plate = np.full((60, 240, 3), 225, np.uint8)
    alpha = np.zeros((60, 240), np.uint8)
    alpha[15:45, 40:200] = 255  # the characters' pixels (fully opaque)
    changed = 0
    for seed in range(12):
        img = plate.copy()
        pattern(img, alpha, 30.0, UniformStream(np.random.default_rng(seed), block=32))
        assert (img[15:45, 40:200] == 225).all(), seed
        changed += np.abs(img.astype(int) - plate).max() > 10
    assert changed >= 10  # a faint print may vanish at times, not often


def test_glyph_warp_bends_the_strokes_near_where_they_were():
    """The warp moves the drawn strokes a little (the ink stays about as much, near its place)."""
    alpha = np.zeros((60, 200), np.uint8)
    cv2.putText(alpha, "AB12", (20, 45), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 255, 3, cv2.LINE_AA)
    ys, xs = np.nonzero(alpha)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    changed = 0
    for seed in range(10):
        a = alpha.copy()
        grown = glyph_warp(a, box, 30.0, UniformStream(np.random.default_rng(seed), block=32))
        assert grown[0] <= box[0] and grown[1] <= box[1] and grown[2] >= box[2] and grown[3] >= box[3]
        assert 0.7 < a.sum() / alpha.sum() < 1.3  # strokes thin or thicken a little, never vanish
        ys2, xs2 = np.nonzero(a > 127)
        assert xs2.min() >= grown[0] and xs2.max() < grown[2] and ys2.min() >= grown[1] and ys2.max() < grown[3]
        changed += (a != alpha).mean() > 0.01
    assert changed == 10


def test_mixed_fonts_draws_each_character_in_its_own_font_at_the_row_cap_height():
    from data.synth.render import PlateRenderer

    r = PlateRenderer()
    a, b = r.font("cv_simplex"), r.font("stroke_regular")

    def ink_rows(mask):
        rows = np.flatnonzero(mask.max(axis=1) > 127)
        return rows[0], rows[-1]

    masks = {}
    for name, mix in (("a", None), ("ab", iter([a, b, a, b]).__next__)):
        m = np.zeros((80, 400), np.uint8)
        r.text_into(m, a, "HHHH", 40.0, 10, 390, 40, mix=mix)
        masks[name] = m
    one, mixed = masks["a"], masks["ab"]
    assert not np.array_equal(one, mixed)  # the second and fourth H come from the other font
    cols = np.flatnonzero(mixed.max(axis=0) > 127)
    first, last = mixed[:, : cols[0] + 10], mixed[:, cols[-1] - 10 :]  # an H of each font
    for m in (first, last):
        assert np.abs(np.subtract(ink_rows(m), ink_rows(one))).max() <= 2  # caps on the same lines


def test_mixed_fonts_effect_gives_the_rows_a_pool_of_fonts_with_the_plates_own(monkeypatch):
    from data.synth.render import PlateRenderer

    calls: list[tuple[str, set[str] | None]] = []  # (the plate's font, the fonts its characters were drawn in)
    text_into = PlateRenderer.text_into

    def record(self, alpha, f, text, *a, mix=None, **k):
        if mix is None:
            calls.append((f.key, None))
            return text_into(self, alpha, f, text, *a, **k)
        drawn: set[str] = set()

        def spy():
            face = mix()
            drawn.add(face.key)
            return face

        calls.append((f.key, drawn))
        return text_into(self, alpha, f, text, *a, mix=spy, **k)

    monkeypatch.setattr(PlateRenderer, "text_into", record)
    gen = SyntheticPlateGenerator(seed=5, countries=["PL", "CZ", "BR"], effects=SynthEffects(mixed_fonts=1.0))
    for _ in range(30):
        gen()
    rows = [(key, drawn) for key, drawn in calls if drawn is not None]
    assert len(rows) >= 30  # every plate's rows (captions and band letters draw without it)
    assert sum(len(drawn) > 1 for _, drawn in rows) > len(rows) / 2  # most rows in more than one font
    assert any(key in drawn for key, drawn in rows)  # the plate's own font is in the pool
    calls.clear()
    gen = SyntheticPlateGenerator(seed=5, countries=["PL", "CZ", "BR"])
    for _ in range(30):
        gen()
    assert calls and all(drawn is None for _, drawn in calls)  # off: one font per row


def test_fixed_pitch_squeezes_wide_letters_into_a_digits_cell():
    from data.synth.render import PlateRenderer

    r = PlateRenderer()
    f = r.font("dejavu_bold")

    def ink_width(text, **k):
        m = np.zeros((80, 600), np.uint8)
        r.text_into(m, f, text, 40.0, 10, 590, 40, tracking=0.0, **k)
        cols = np.flatnonzero(m.max(axis=0) > 127)
        return cols[-1] - cols[0] + 1

    cell = f.cell_w * 40.0 / f.cap
    assert ink_width("W") > cell * 1.1 and ink_width("W", mono=True) > cell * 1.1  # wider than a digit
    assert ink_width("W", mono=True, fit=True) <= cell + 2  # squeezed into a digit's cell
    assert abs(ink_width("WMW", mono=True, fit=True) - ink_width("000", mono=True, fit=True)) <= 3  # one pitch
    assert ink_width("1", mono=True, fit=True) == ink_width("1", mono=True)  # narrow ones keep their shape
