"""Plate texts: compile the format patterns of ``countries.py``, generate texts, validate labels."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from data.synth.countries import POOLS, SPECS, CountrySpec, Fmt, Pool
from data.text import COUNTRIES, normalize_plate_text

SEPARATOR_CHARS = " -."  # rendered, not in the label
EMBLEM = "~"  # emblem gap marker
BOX = "#"  # start of the right box (RU region)
ROW_BREAK = "|"


class UniformStream:
    """Uniform floats in [0, 1) drawn from a numpy Generator in blocks (one numpy call per block).

    Python-level draws from ``np.random.Generator`` cost about a microsecond each; a plate needs
    a few dozen, so they come from a buffer. Deterministic given the generator's state.
    """

    __slots__ = ("rng", "block", "buf", "i")

    def __init__(self, rng: np.random.Generator, block: int = 256):
        self.rng = rng
        self.block = block
        self.buf: list[float] = []
        self.i = 0

    def __call__(self) -> float:
        i = self.i
        if i >= len(self.buf):
            self.buf = self.rng.random(self.block).tolist()
            i = 0
        self.i = i + 1
        return self.buf[i]

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self()

    def randint(self, n: int) -> int:
        """0 .. n-1."""
        return min(int(self() * n), n - 1)

    def choice(self, seq):
        return seq[self.randint(len(seq))]


@dataclass(frozen=True)
class _Token:
    choices: tuple[str, ...]  # empty for a separator / marker
    lo: int = 1
    hi: int = 1
    literal: str = ""  # separator or marker character
    regex: str = ""


class CompiledFormat:
    """One ``Fmt`` ready to generate from and to validate against."""

    def __init__(self, spec: CountrySpec, fmt: Fmt):
        self.fmt = fmt
        self.lines = fmt.pattern.count(ROW_BREAK) + 1
        self.tokens = _parse(spec, fmt.pattern)
        body = "".join(t.regex for t in self.tokens)
        lo = sum(t.lo * min(len(c) for c in t.choices) for t in self.tokens if t.choices)
        hi = sum(t.hi * max(len(c) for c in t.choices) for t in self.tokens if t.choices)
        self.min_len = lo
        self.max_len = hi if fmt.max_len is None else min(hi, fmt.max_len)
        if self.max_len < self.min_len:
            raise ValueError(f"{spec.code} format {fmt.pattern!r}: max_len below the shortest text")
        self.regex = body if fmt.max_len is None else f"(?=[0-9A-Z]{{1,{fmt.max_len}}}$){body}"

    def generate_raw(self, u: UniformStream) -> str:
        """The raw text with its markers ('~', '#', '|'); retried until within ``max_len``."""
        for _ in range(100):
            parts: list[str] = []
            n_label = 0
            for t in self.tokens:
                if not t.choices:
                    parts.append(t.literal)
                    continue
                n = t.lo if t.lo == t.hi else t.lo + u.randint(t.hi - t.lo + 1)
                ch = t.choices
                for _ in range(n):
                    c = ch[u.randint(len(ch))]
                    parts.append(c)
                    n_label += len(c)
            if n_label <= self.max_len:
                return "".join(parts)
        raise RuntimeError(f"format {self.fmt.pattern!r} keeps producing texts over max_len")


_TOKEN_RE = re.compile(r"(\{[a-z0-9_]+\}|[LDZ]|[ \-.~#|])(\[(\d+)(?:-(\d+))?\])?")


def _parse(spec: CountrySpec, pattern: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(pattern):
        m = _TOKEN_RE.match(pattern, pos)
        if m is None:
            raise ValueError(f"{spec.code}: bad format pattern {pattern!r} at {pattern[pos:]!r}")
        pos = m.end()
        head, quant, a, b = m.group(1), m.group(2), m.group(3), m.group(4)
        lo = hi = 1
        if quant:
            lo = int(a)
            hi = int(b) if b is not None else lo
        if head in SEPARATOR_CHARS or head in (EMBLEM, BOX, ROW_BREAK):
            if quant:
                raise ValueError(f"{spec.code}: quantifier on a separator in {pattern!r}")
            tokens.append(_Token((), literal=head))
            continue
        if head == "L":
            choices, cls = tuple(spec.letters), _char_class(spec.letters)
        elif head == "D":
            choices, cls = tuple("0123456789"), "[0-9]"
        elif head == "Z":
            choices, cls = tuple("123456789"), "[1-9]"
        else:
            name = head[1:-1]
            pool = spec.pools.get(name, POOLS.get(name))
            if pool is None:
                raise ValueError(f"{spec.code}: unknown pool {name!r} in {pattern!r}")
            if isinstance(pool, Pool):
                choices = pool.values
                cls = pool.regex or "(?:" + "|".join(map(re.escape, pool.values)) + ")"
                cls = f"(?:{cls})"
            else:
                choices, cls = tuple(pool), _char_class(pool)
        for c in choices:
            if normalize_plate_text(c) != c or not c.isalnum() or not c.isascii():
                raise ValueError(f"{spec.code}: pool value {c!r} is not a normalised A-Z/0-9 label")
        rx = cls if (lo, hi) == (1, 1) else f"{cls}{{{lo},{hi}}}"
        tokens.append(_Token(choices, lo, hi, regex=rx))
    return tokens


def _char_class(chars: str) -> str:
    return "[" + "".join(re.escape(c) for c in sorted(set(chars))) + "]"


@dataclass(frozen=True)
class CompiledCountry:
    spec: CountrySpec
    formats: tuple[tuple[CompiledFormat, ...], tuple[CompiledFormat, ...]]  # one-row, two-row
    cum_weights: tuple[tuple[float, ...], tuple[float, ...]]
    regex: re.Pattern
    more: tuple[CompiledFormat, ...] = ()  # CountrySpec.formats_more (one-row)
    more_cum: tuple[float, ...] = ()

    @property
    def has_two_rows(self) -> bool:
        return bool(self.formats[1])

    def pick(self, lines: int, u: UniformStream) -> CompiledFormat:
        fmts, cum = self.formats[lines - 1], self.cum_weights[lines - 1]
        if not fmts:
            raise ValueError(f"{self.spec.code} has no {lines}-row layout")
        return _pick(fmts, cum, u)

    def pick_more(self, u: UniformStream) -> CompiledFormat:
        """One of the further real formats (``CountrySpec.formats_more``); the country must have some."""
        if not self.more:
            raise ValueError(f"{self.spec.code} has no further formats")
        return _pick(self.more, self.more_cum, u)


def _pick(fmts: tuple[CompiledFormat, ...], cum: tuple[float, ...], u: UniformStream) -> CompiledFormat:
    x = u() * cum[-1]
    for f, c in zip(fmts, cum):
        if x < c:
            return f
    return fmts[-1]


def _cum(fmts: tuple[CompiledFormat, ...]) -> tuple[float, ...]:
    out, acc = [], 0.0
    for f in fmts:
        acc += f.fmt.weight
        out.append(acc)
    return tuple(out)


@lru_cache(maxsize=None)
def compiled(country: str) -> CompiledCountry:
    """The compiled formats of ``country`` (ValueError for a code outside COUNTRIES)."""
    code = country.upper() if isinstance(country, str) else country
    if code not in SPECS:
        raise ValueError(f"unknown country {country!r}; expected one of {', '.join(COUNTRIES)}")
    spec = SPECS[code]
    one = tuple(CompiledFormat(spec, f) for f in spec.formats)
    two = tuple(CompiledFormat(spec, f) for f in spec.formats2)
    more = tuple(CompiledFormat(spec, f) for f in spec.formats_more)
    for f in one + more:
        if f.lines != 1:
            raise ValueError(f"{code}: one-row format {f.fmt.pattern!r} has a row break")
    for f in two:
        if f.lines != 2:
            raise ValueError(f"{code}: two-row format {f.fmt.pattern!r} needs exactly one '|'")
    alts = "|".join(f"(?:{f.regex})" for f in one + two + more)
    return CompiledCountry(spec, (one, two), (_cum(one), _cum(two)), re.compile(f"(?:{alts})"), more, _cum(more))


def render_rows(raw: str, emblem_text: str) -> list[str]:
    """Rendered rows (what a person would write) of a raw text with markers."""
    rows = raw.replace(EMBLEM, emblem_text).replace(BOX, " ").split(ROW_BREAK)
    return [r.strip(" -") for r in rows]


def generate_raw(country: str, u: UniformStream, lines: int = 1) -> tuple[str, CompiledFormat]:
    cf = compiled(country)
    fmt = cf.pick(lines, u)
    return fmt.generate_raw(u), fmt


def generate_text(country: str, rng: np.random.Generator, lines: int = 1) -> tuple[str, list[str]]:
    """A random plate text of ``country``: (label, rendered rows).

    >>> generate_text("FR", np.random.default_rng(0))   # doctest: +SKIP
    ('AB123CD', ['AB-123-CD'])
    """
    if lines not in (1, 2):
        raise ValueError(f"lines must be 1 or 2, got {lines!r}")
    cf = compiled(country)
    raw, fmt = generate_raw(cf.spec.code, UniformStream(rng, block=32), lines)
    rows = render_rows(raw, cf.spec.styles[fmt.fmt.style].emblem_text)
    return normalize_plate_text("".join(rows)), rows


def is_valid_plate_text(country: str, label: str) -> bool:
    """Whether ``label`` (normalised first) is a text one of ``country``'s formats can produce."""
    return compiled(country).regex.fullmatch(normalize_plate_text(label)) is not None


def plate_regex(country: str) -> re.Pattern:
    """The regular expression (on normalised labels, use ``fullmatch``) of ``country``'s formats."""
    return compiled(country).regex


def max_label_length(countries=None, two_rows: bool = True) -> int:
    """Longest label any format of ``countries`` (default: all) can produce."""
    best = 0
    for c in countries or COUNTRIES:
        cc = compiled(c)
        one, two = cc.formats
        for f in one + cc.more + (two if two_rows else ()):
            best = max(best, f.max_len)
    return best
