"""The synthetic plate generator: random country, format and text, rendered by ``PlateRenderer``."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from data.formats import LATIN, compiled, max_label_length
from data.synth.countries import LOOKS
from data.synth.effects import SynthEffects, any_text, mount, record, text_crop
from data.synth.render import PlateRenderer
from data.synth.textgen import UniformStream, render_rows
from data.text import COUNTRIES, normalize_plate_text


@dataclass
class SynthPlate:
    image: np.ndarray  # HxWx3 uint8, RGB
    text: str  # normalised label (normalize_plate_text of the rendered text)
    country: str  # one of COUNTRIES
    rows: int  # text rows on the plate: 1 or 2
    row_texts: tuple[str, ...] = ()  # the rendered text, one string per row (with separators)


def resolve_countries(countries: Sequence[str] | str | None) -> tuple[str, ...]:
    """Country codes in COUNTRIES order-of-argument, upper-cased; ValueError naming unknown ones."""
    if countries is None:
        return COUNTRIES
    if isinstance(countries, str):
        countries = [c for c in countries.split(",") if c.strip()]
    out: list[str] = []
    bad: list[str] = []
    for c in countries:
        code = str(c).strip().upper()
        if code not in COUNTRIES:
            bad.append(str(c))
        elif code not in out:
            out.append(code)
    if bad:
        raise ValueError(
            f"unknown country code(s) {', '.join(map(repr, bad))} for the synthetic generator; "
            f"expected some of {', '.join(COUNTRIES)}"
        )
    if not out:
        raise ValueError("no countries given")
    return tuple(out)


def resolve_country_weights(countries: Sequence[str], weights: Mapping[str, float] | None) -> list[float] | None:
    """Sampling weight of each of ``countries`` (unnamed ones weigh 1); None for uniform.

    ValueError naming a code that is not among ``countries``, or a weight below 0.
    """
    if not weights:
        return None
    out = {c: 1.0 for c in countries}
    for code, w in weights.items():
        c = str(code).strip().upper()
        if c not in out:
            raise ValueError(f"country {code!r} is not among the generated countries ({', '.join(countries)})")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not w >= 0:
            raise ValueError(f"the weight of {code!r} must be a number >= 0, got {w!r}")
        out[c] = float(w)
    if not any(out.values()):
        raise ValueError("every country has weight 0")
    return [out[c] for c in countries]


class SyntheticPlateGenerator:
    """Endless stream of rendered plates; the same seed gives the same plates (text and pixels).

    Countries are drawn uniformly from ``countries`` (default: all 27); a country with a two-row
    layout gets one with probability ``two_row_prob``. ``country_weights`` ({code: weight},
    others 1) draws some countries more often than others (e.g. those a user reads most).
    ``effects`` switches on the realism effects of :mod:`data.synth.effects` (each with its probability).
    """

    def __init__(self, seed: int = 0, countries: Sequence[str] | None = None, two_row_prob: float = 0.15,
                 effects: SynthEffects | None = None, country_weights: Mapping[str, float] | None = None):
        if not 0.0 <= two_row_prob <= 1.0:
            raise ValueError(f"two_row_prob must be in [0, 1], got {two_row_prob}")
        # Realism effects (data.synth.effects); None or all-off renders the classic plates.
        self.effects = effects if effects is not None and effects.any else None
        self.effects_share = 1.0  # share of plates that get the effects at all (a training ramp sets it)
        self.countries = resolve_countries(countries)
        self.two_row_prob = float(two_row_prob)
        self.seed = seed
        self._compiled = [compiled(c) for c in self.countries]
        weights = resolve_country_weights(self.countries, country_weights)
        # Cumulative shares for a weighted draw; None keeps the uniform draw (and its streams).
        self._cum = None if weights is None else [c / sum(weights) for c in itertools.accumulate(weights)]
        self.renderer = PlateRenderer()
        self._u = UniformStream(np.random.default_rng(seed))
        self.max_label_length = max_label_length(self.countries, two_rows=self.two_row_prob > 0)

    def __call__(self) -> SynthPlate:
        return self._sample(self._u)

    def __iter__(self):
        while True:
            yield self._sample(self._u)

    def sample(self, rng: np.random.Generator) -> SynthPlate:
        """One plate drawn from ``rng`` instead of the generator's own stream (for indexed datasets)."""
        return self._sample(UniformStream(rng, block=64))

    def _sample(self, u: UniformStream) -> SynthPlate:
        if self._cum is None:
            cc = self._compiled[u.randint(len(self._compiled))]
        else:
            cc = self._compiled[min(bisect.bisect_right(self._cum, u()), len(self._compiled) - 1)]
        rows = 2 if cc.has_two_rows and self.two_row_prob > 0 and u() < self.two_row_prob else 1
        return self._render(cc, rows, u)

    def render_text(self, country: str, rng: np.random.Generator, rows: int = 1) -> SynthPlate:
        """A plate of a given country and row count (for previews and tests)."""
        return self._render(compiled(country), rows, UniformStream(rng, block=64))

    def _render(self, cc, rows: int, u: UniformStream) -> SynthPlate:
        fmt = cc.pick(rows, u)
        fx = self.effects
        if fx is not None and self.effects_share < 1.0 and u() >= self.effects_share:
            fx = None
        if (fx is not None and fx.state_formats and rows == 1 and cc.more
                and record("state_formats", u() < fx.state_formats)):
            fmt = cc.pick_more(u)
        if fx is not None and fx.any_text and record("any_text", u() < fx.any_text):
            raw = any_text(u, rows, self.max_label_length)
        elif fx is not None and fx.any_letters and record("any_letters", u() < fx.any_letters):
            raw = fmt.generate_raw(u, LATIN)  # no letter rarer than another: most countries leave some out
        else:
            raw = fmt.generate_raw(u)
        look = LOOKS[cc.spec.code]
        style = look.styles[fmt.fmt.style]
        image, text_box = self.renderer.render_with_box(look, style, raw, rows, u, fx)
        if fx is not None and fx.surround and record("surround", u() < fx.surround):
            image = mount(image, u, fx.frame, self.renderer.put_caption, text_box, cc.spec.code)
        elif fx is not None and fx.text_crop and record("text_crop", u() < fx.text_crop):
            image = text_crop(image, u, text_box, rows)  # the other end of a detector's boxes
        row_texts = render_rows(raw, style.emblem_text)
        return SynthPlate(image, normalize_plate_text("".join(row_texts)), cc.spec.code, rows, tuple(row_texts))
