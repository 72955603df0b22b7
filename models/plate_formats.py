"""Reading a plate under its country's formats (opt-in decoding step, for both architectures).

Some plate characters cannot be told apart by their look: the grey Brazilian plates print a
``1`` that is a plain bar like the ``I``, many faces draw ``O`` and ``0`` alike. A country's
format tells which positions hold letters and which digits (Brazil: ``LLL DDDD`` or
``LLL D L DD``). Given a country, :func:`constrain_to_formats` keeps the model's reading if it
is a valid plate of that country; otherwise it takes the most probable reading of the same
length that is, searching the per-character alternatives best first (substitutions only: a
reading with a missing or extra character is left as it is). The formats are those of the
synthetic generator (``data.formats.plate_regex``); where a country's real plates have
formats the generator does not draw (US vanity and state formats), a constraint can turn a
right reading into a wrong one, so it is opt-in and measured per country in the README.

Without a given country, :func:`read_with_format_prior` weighs the formats of every country by
the country head's probability: each country offers its most probable valid reading (as above),
a reading's score is the sum over countries of P(country) x P(reading), and the model's own
reading also keeps ``FREE_READING`` x its probability, for plates of no format the generator
knows. A reading of no format thus gives way only to a valid one at least ten times as probable
once weighted by its country; a confident reading stays.

Per-character alternatives come from the model's raw outputs (:func:`char_probabilities`):
CTC, the step that emitted each character; attention, each decoding step.
"""

from __future__ import annotations

import heapq
import math
import re
from dataclasses import replace
from functools import lru_cache

import numpy as np

from data.formats import plate_regex, position_classes
from data.tokenizers import best_path_steps, softmax
from data.text import COUNTRIES
from models.interface import COUNTRY_CLASSES, UNKNOWN_COUNTRY, PlatePrediction, as_numpy

TOP_K = 4  # alternatives per character
MAX_TRIES = 2000  # readings tried per plate before giving up (a reading is a regex fullmatch)
FREE_READING = 0.1  # prior weight of a reading of no country's format (read_with_format_prior)
MIN_COUNTRY = 0.01  # countries the head gives less are not searched (their share of a score is as small)
PRIOR_TRIES = 200  # per country: its masked search finds a valid reading in a few tries or not at all


def ctc_char_probabilities(probs: np.ndarray) -> np.ndarray:
    """[n, charset] for one plate from CTC softmax outputs [T, blank + charset]: for each character
    of the greedy reading, the distribution at the step where it was most probable (blank dropped)."""
    best = probs.argmax(-1)
    steps = best_path_steps(best.tolist(), probs.max(-1).tolist())
    if not steps:
        return np.zeros((0, probs.shape[-1] - 1), np.float32)
    rows = [probs[t, 1:] for _, t in steps]
    m = np.stack(rows)
    return m / np.maximum(m.sum(-1, keepdims=True), 1e-12)


def attn_char_probabilities(log_probs: np.ndarray) -> np.ndarray:
    """[n, charset] for one plate from the attention decoder's [T, EOS + charset]: the steps up to
    the first EOS (EOS dropped)."""
    best = log_probs.argmax(-1)
    n = int(np.argmax(best == 0)) if (best == 0).any() else len(best)
    m = np.exp(log_probs[:n, 1:].astype(np.float64))
    return (m / np.maximum(m.sum(-1, keepdims=True), 1e-12)).astype(np.float32)


def char_probabilities(outputs: dict) -> list[np.ndarray]:
    """Per plate of a batch, the per-character distributions [n, charset] of its reading, from a
    model's raw outputs (PyTorch or ONNX Runtime): CRNN ``logits``, attention ``log_probs``."""
    if "log_probs" in outputs:
        return [attn_char_probabilities(x) for x in as_numpy(outputs["log_probs"])]
    return [ctc_char_probabilities(x) for x in softmax(as_numpy(outputs["logits"]))]


def best_matching_reading(char_probs: np.ndarray, chars: str, pattern: re.Pattern,
                          top_k: int = TOP_K, max_tries: int = MAX_TRIES) -> tuple[str, float] | None:
    """The most probable string (product of per-character probabilities, one character from each
    row's ``top_k`` alternatives) that ``pattern`` fully matches, or None within ``max_tries``."""
    n = len(char_probs)
    if n == 0:
        return None
    k = min(top_k, char_probs.shape[1])
    order = np.argsort(-char_probs, axis=1)[:, :k]  # [n, k] class indices, best first
    cost = -np.log(np.maximum(np.take_along_axis(char_probs, order, 1), 1e-12))  # [n, k]
    # Best-first over index vectors; a successor raises one position at or after the last raised
    # one, so each vector is reached once.
    start = (0,) * n
    heap = [(float(cost[:, 0].sum()), start, 0)]
    for _ in range(max_tries):
        if not heap:
            return None
        c, idx, low = heapq.heappop(heap)
        text = "".join(chars[order[i, j]] for i, j in enumerate(idx))
        if pattern.fullmatch(text):
            return text, math.exp(-c)
        for i in range(low, n):
            if idx[i] + 1 < k:
                nxt = idx[:i] + (idx[i] + 1,) + idx[i + 1:]
                heapq.heappush(heap, (c - cost[i, idx[i]] + cost[i, idx[i] + 1], nxt, i))
    return None


def constrain_to_formats(pred: PlatePrediction, char_probs: np.ndarray, chars: str,
                         country: str | None) -> PlatePrediction:
    """``pred`` read under ``country``'s formats (see the module doc). Unknown country (None,
    ``EU``, ``unknown``), a reading already valid, or no valid reading within reach: unchanged."""
    if not country or country not in COUNTRIES or len(char_probs) != len(pred.text):
        return pred
    pattern = plate_regex(country)
    if pattern.fullmatch(pred.text):
        return pred
    found = best_matching_reading(char_probs, chars, pattern)
    if found is None:
        return pred
    text, conf = found
    confs = [float(char_probs[i, chars.index(c)]) for i, c in enumerate(text)]
    return replace(pred, text=text, confidence=conf, char_confidences=confs)


@lru_cache(maxsize=None)
def position_mask(country: str, n: int, chars: str) -> np.ndarray | None:
    """[n, len(chars)]: which characters each position of an ``n``-character label of ``country``
    can hold (``data.formats.position_classes``), or None where no format has that length."""
    sets = position_classes(country).get(n)
    if sets is None:
        return None
    mask = np.array([[c in s for c in chars] for s in sets])
    mask.flags.writeable = False  # cached: shared by every call
    return mask


def read_with_format_prior(pred: PlatePrediction, char_probs: np.ndarray, chars: str,
                           country_probs: np.ndarray, free: float = FREE_READING) -> PlatePrediction:
    """``pred`` read under every country's formats at once, each weighted by ``country_probs`` (the
    head's softmax over ``COUNTRY_CLASSES``; see the module doc). Unchanged where no valid reading
    outscores it."""
    n = len(pred.text)
    if n == 0 or len(char_probs) != n:
        return pred
    own = float(np.prod([char_probs[i, chars.index(c)] for i, c in enumerate(pred.text)]))
    unknown = float(country_probs[COUNTRY_CLASSES.index(UNKNOWN_COUNTRY)])
    scores = {pred.text: (free + unknown) * own}
    for c, pc in zip(COUNTRY_CLASSES, country_probs):
        if pc < MIN_COUNTRY or c == UNKNOWN_COUNTRY:
            continue
        mask = position_mask(c, n, chars)
        if mask is None:
            continue
        pattern = plate_regex(c)
        # The search runs over the characters each position can hold: it reaches a valid reading
        # in a few tries instead of exhausting its budget on the model's top alternatives.
        found = ((pred.text, own) if pattern.fullmatch(pred.text)
                 else best_matching_reading(char_probs * mask, chars, pattern, max_tries=PRIOR_TRIES))
        if found is not None:
            scores[found[0]] = scores.get(found[0], 0.0) + float(pc) * found[1]
    text = max(scores, key=scores.get)
    if text == pred.text:
        return pred
    confs = [float(char_probs[i, chars.index(ch)]) for i, ch in enumerate(text)]
    return replace(pred, text=text, confidence=float(np.prod(confs)), char_confidences=confs)


# Besides a country code: the head's top country's formats; every country's, weighed by the head;
# no formats (the model's reading as it is).
READING_MODES = ("auto", "any", "none")


def check_country(code: str, key: str = "--country") -> str:
    """A country code for the constraint, upper-cased: one of the generator's, or a mode of
    ``READING_MODES``."""
    c = str(code).strip()
    if c.lower() in READING_MODES:
        return c.lower()
    if c.upper() not in COUNTRIES:
        raise ValueError(f"{key}: unknown country {code!r}; expected {', '.join(READING_MODES)} or one of "
                         f"{', '.join(COUNTRIES)}")
    return c.upper()
