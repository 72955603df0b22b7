"""Plate-reading metrics shared by every architecture.

Three numbers, each reported overall and broken down by country and by number
of text rows on the plate:

* ``exact_match``        -- fraction of plates read exactly (whole-string match);
* ``mean_edit_distance`` -- Levenshtein distance per plate, averaged over plates;
* ``cer``                -- character error rate: sum of edit distances divided
  by the sum of label lengths.

Rules
-----
* Predictions and labels both go through :func:`data.text.normalize_plate_text`
  before they are compared ("ab-123" equals "AB123").
* A :data:`data.text.MASK_CHAR` (``*``) in a *label* is a masked character: it
  matches any one character. Substituting anything for it costs 0; inserting or
  deleting it costs 1 as usual. It counts in the label length (CER). A ``*`` in
  a prediction is an ordinary character.
* Optional per-country ``equivalences`` (e.g. ``{"US": {"O": "0"}}``) map
  characters of both prediction and label before comparison.
* With no samples (overall or in a group that was never updated) the rates are
  ``nan`` and ``n`` is 0. ``cer`` is also ``nan`` when every label is empty.

Models with a classification head also predict the country and the number of
rows; given those predictions, :class:`PlateMetrics` adds ``country``
(accuracy, macro-F1 over the classes seen, per-class precision/recall/F1, the
confusion matrix) and ``rows`` (accuracy), and a ``country_accuracy`` per
country group. Plates without a country label (``data.text.NO_COUNTRY``) and
plates labelled with a code the head has no class for (``EU``: country
unstated, ``ID``) are left out of the country scores, which say how many
plates they cover (``coverage``, ``unlabelled``, ``other_country``). In the
per-country text scores, plates without a country label are grouped as
``unlabelled``.

Edit distances come from rapidfuzz's C implementation (``process.cpdist``);
only the rare masked labels go through a small pure-Python DP.

Each read plate is one :class:`ReadingRecord` (the reading and the truth it is
scored against); :meth:`PlateMetrics.update` takes a batch of them. Multi-process
evaluation: call :func:`gather_records` once per batch, inside the loop over a
dataloader prepared by ``accelerate``, and feed what it returns to
:meth:`PlateMetrics.update` (on every process or only the main one).
``evaluation.evaluate`` does both.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from data.text import MASK_CHAR, NO_COUNTRY, normalize_country, normalize_plate_text
from models.interface import COUNTRY_CLASSES  # what a country head can say

__all__ = [
    "StringMatchMetric",
    "EditDistanceMetric",
    "CharErrorRateMetric",
    "PlateMetrics",
    "ReadingRecord",
    "ClassificationCounts",
    "format_metrics_table",
    "with_new_metric_names",
    "score_texts",
    "masked_match",
    "masked_edit_distance",
    "gather_records",
]

Equivalences = Mapping[str, Mapping[str, str]]


@dataclass(frozen=True)
class ReadingRecord:
    """One read plate: what the reader read, and the truth it is scored against.

    ``pred_country`` / ``pred_rows`` are None for a reader without a classification
    head (those samples are left out of the country and rows scores); ``index`` is
    the sample's position in its dataset (to find the image again), where known.
    """

    text: str  # the reading
    label: str  # the true text; ``*`` matches any one character
    country: str  # the labelled country
    rows: int  # the labelled number of text rows
    confidence: float | None = None
    pred_country: str | None = None
    pred_rows: int | None = None
    index: int | None = None


# --------------------------------------------------------------------------- #
# Per-pair scoring
# --------------------------------------------------------------------------- #
def parse_equivalences(items: Sequence[str]) -> Equivalences:
    """``--equiv US:O=0`` -> {"US": {"O": "0"}}: read O as 0 on US plates when scoring."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        try:
            country, pair = item.split(":", 1)
            src, dst = pair.split("=", 1)
        except ValueError:
            raise ValueError(f"--equiv {item!r} must look like COUNTRY:A=B, e.g. US:O=0") from None
        out.setdefault(country.strip().upper(), {})[src] = dst
    return out


def masked_match(pred: str, label: str) -> bool:
    """Exact match where ``*`` in ``label`` matches any one character (inputs already normalised)."""
    if len(pred) != len(label):
        return False
    return all(l == MASK_CHAR or p == l for p, l in zip(pred, label))


def masked_edit_distance(pred: str, label: str) -> int:
    """Levenshtein distance where ``*`` in ``label`` substitutes for any character at cost 0.

    Inputs are already normalised. Plain labels go to rapidfuzz; masked ones
    (rare, and short) use a one-row dynamic programme.
    """
    if MASK_CHAR not in label:
        return Levenshtein.distance(pred, label)
    prev = list(range(len(pred) + 1))  # row for the empty label prefix
    for i, lc in enumerate(label, 1):
        cur = [i] + [0] * len(pred)
        wild = lc == MASK_CHAR
        for j, pc in enumerate(pred, 1):
            sub = prev[j - 1] + (0 if (wild or pc == lc) else 1)
            cur[j] = min(sub, prev[j] + 1, cur[j - 1] + 1)
        prev = cur
    return prev[-1]


def _country_key(code: Any) -> str:
    """Canonical country code; codes outside the known set are kept (stripped) rather than rejected."""
    if code is not None and not isinstance(code, str):
        code = str(code)
    try:
        return normalize_country(code)
    except ValueError:
        return code.strip()


UNLABELLED = "unlabelled"  # the by_country group of plates without a country label


def _country_group(code: Any) -> str:
    """The ``by_country`` key of a plate's labelled country."""
    return _country_key(code) or UNLABELLED


def _rows_key(rows: Any) -> str:
    return str(int(rows))


def _compile_equivalences(equivalences: Equivalences | None) -> dict[str, dict[int, str]]:
    """Country -> str.translate table, with keys and values normalised and validated."""
    if not equivalences:
        return {}
    tables: dict[str, dict[int, str]] = {}
    for country, mapping in equivalences.items():
        table: dict[int, str] = {}
        for src, dst in mapping.items():
            s, d = normalize_plate_text(src), normalize_plate_text(dst)
            if len(s) != 1 or len(d) != 1:
                raise ValueError(
                    f"equivalence {src!r} -> {dst!r} for {country!r}: both sides must be one "
                    "character after normalize_plate_text"
                )
            if MASK_CHAR in (s, d):
                raise ValueError(f"equivalences may not involve the mask character {MASK_CHAR!r}")
            table[ord(s)] = d
        if table:
            tables[_country_key(country)] = table
    return tables


def _as_list(x: Any) -> list:
    if hasattr(x, "tolist"):  # tensors, numpy arrays
        x = x.tolist()
    return list(x)


def _prepare(
    preds: Sequence[str],
    labels: Sequence[str],
    countries: Sequence[str] | None,
    tables: dict[str, dict[int, str]],
) -> tuple[list[str], list[str]]:
    preds, labels = _as_list(preds), _as_list(labels)
    if len(preds) != len(labels):
        raise ValueError(f"{len(preds)} predictions but {len(labels)} labels")
    preds = [normalize_plate_text(p) for p in preds]
    labels = [normalize_plate_text(t) for t in labels]
    if tables:
        if countries is None:
            raise ValueError("equivalences need the country of every sample")
        countries = _as_list(countries)
        if len(countries) != len(labels):
            raise ValueError(f"{len(countries)} countries but {len(labels)} labels")
        for i, c in enumerate(countries):
            table = tables.get(_country_key(c))
            if table is not None:
                preds[i] = preds[i].translate(table)
                labels[i] = labels[i].translate(table)
    return preds, labels


def _score_normalised(preds: list[str], labels: list[str]) -> tuple[list[bool], list[int]]:
    n = len(labels)
    masked = [i for i, t in enumerate(labels) if MASK_CHAR in t]
    if not masked:
        exact = [p == t for p, t in zip(preds, labels)]
        dist = process.cpdist(preds, labels, scorer=Levenshtein.distance, dtype=np.int32).tolist() if n else []
        return exact, dist
    masked_set = set(masked)
    plain = [i for i in range(n) if i not in masked_set]
    exact = [False] * n
    dist = [0] * n
    if plain:
        d = process.cpdist(
            [preds[i] for i in plain], [labels[i] for i in plain],
            scorer=Levenshtein.distance, dtype=np.int32,
        ).tolist()
        for i, di in zip(plain, d):
            dist[i] = di
            exact[i] = preds[i] == labels[i]
    for i in masked:
        exact[i] = masked_match(preds[i], labels[i])
        dist[i] = 0 if exact[i] else masked_edit_distance(preds[i], labels[i])
    return exact, dist


def score_texts(
    preds: Sequence[str],
    labels: Sequence[str],
    countries: Sequence[str] | None = None,
    equivalences: Equivalences | None = None,
) -> tuple[list[bool], list[int]]:
    """Per-sample exact match and edit distance, after normalisation (and equivalences, if given).

    ``countries`` is needed only with ``equivalences``.
    """
    p, t = _prepare(preds, labels, countries, _compile_equivalences(equivalences))
    return _score_normalised(p, t)


# --------------------------------------------------------------------------- #
# Accumulators
# --------------------------------------------------------------------------- #
@dataclass
class _Counts:
    n: int = 0
    exact: int = 0
    dist: int = 0
    chars: int = 0

    def add(self, exact: bool, dist: int, chars: int) -> None:
        self.n += 1
        self.exact += int(exact)
        self.dist += dist
        self.chars += chars

    def as_dict(self) -> dict[str, float | int]:
        nan = float("nan")
        return {
            "n": self.n,
            "exact_match": self.exact / self.n if self.n else nan,
            "mean_edit_distance": self.dist / self.n if self.n else nan,
            "cer": self.dist / self.chars if self.chars else nan,
        }


class _TextMetric:
    """Base of the three single-number metrics: accumulate, compute, reset."""

    def __init__(self, equivalences: Equivalences | None = None) -> None:
        self._tables = _compile_equivalences(equivalences)
        self._counts = _Counts()

    def update(self, preds: Sequence[str], labels: Sequence[str], countries: Sequence[str] | None = None) -> None:
        """Add a batch. ``countries`` is needed only when the metric was built with equivalences."""
        p, t = _prepare(preds, labels, countries, self._tables)
        exact, dist = _score_normalised(p, t)
        for e, d, lab in zip(exact, dist, t):
            self._counts.add(e, d, len(lab))

    def reset(self) -> None:
        self._counts = _Counts()

    @property
    def n(self) -> int:
        return self._counts.n

    def compute(self) -> float:  # pragma: no cover - overridden
        raise NotImplementedError


class StringMatchMetric(_TextMetric):
    """Fraction of plates whose prediction equals the label (``*`` matches anything); nan if empty."""

    def compute(self) -> float:
        return float(self._counts.as_dict()["exact_match"])


class EditDistanceMetric(_TextMetric):
    """Mean Levenshtein distance per plate; nan if empty."""

    def compute(self) -> float:
        return float(self._counts.as_dict()["mean_edit_distance"])


class CharErrorRateMetric(_TextMetric):
    """Sum of edit distances / sum of label lengths; nan if empty (or all labels empty)."""

    def compute(self) -> float:
        return float(self._counts.as_dict()["cer"])


class ClassificationCounts:
    """Accumulates (true, predicted) label pairs: accuracy, macro-F1, per-class scores, confusion."""

    def __init__(self) -> None:
        self.pairs: dict[tuple[str, str], int] = {}
        self.n = 0
        self.correct = 0

    def add(self, true: str, pred: str) -> None:
        self.pairs[(true, pred)] = self.pairs.get((true, pred), 0) + 1
        self.n += 1
        self.correct += int(true == pred)

    def compute(self, order: Sequence[str] = ()) -> dict[str, Any]:
        nan = float("nan")
        seen = {t for t, _ in self.pairs} | {p for _, p in self.pairs}
        labels = [c for c in order if c in seen] + sorted(seen - set(order))
        per_class, f1s = {}, []
        for c in labels:
            tp = self.pairs.get((c, c), 0)
            support = sum(v for (t, _), v in self.pairs.items() if t == c)
            predicted = sum(v for (_, p), v in self.pairs.items() if p == c)
            prec = tp / predicted if predicted else 0.0
            rec = tp / support if support else 0.0
            f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
            per_class[c] = {"n": support, "precision": prec, "recall": rec, "f1": f1}
            f1s.append(f1)
        return {
            "n": self.n,
            "accuracy": self.correct / self.n if self.n else nan,
            "macro_f1": float(np.mean(f1s)) if f1s else nan,
            "per_class": per_class,
            "confusion": {"labels": labels,
                          "matrix": [[self.pairs.get((t, p), 0) for p in labels] for t in labels]},
        }


class PlateMetrics:
    """All three metrics, overall and by country and by number of rows.

    >>> m = PlateMetrics(equivalences={"US": {"O": "0"}})
    >>> m.update([ReadingRecord(text="AB123", label="AB123", country="DE", rows=1)])
    >>> m.compute()["overall"]["exact_match"]
    1.0

    ``compute()`` returns a JSON-serialisable dict with string keys::

        {"overall":   {"n", "exact_match", "mean_edit_distance", "cer"},
         "by_country": {"DE": {...}, ...},    # codes as normalize_country gives them
         "by_rows":    {"1": {...}, "2": {...}}}     # by the label's number of text rows

    Where records carry ``pred_country`` / ``pred_rows`` it also has ``"country"``
    (see :class:`ClassificationCounts`; scored on the plates whose label is one of the
    head's classes, and with ``of``: the plates read, ``coverage``: n / of, and the plates
    left out: ``unlabelled``, no country label, and ``other_country``, a code the head has
    no class for) and ``"rows"``, and each ``by_country`` entry gets ``country_accuracy``.

    Rates of an empty set are ``nan`` (``json.dumps`` writes ``NaN``).
    """

    def __init__(self, equivalences: Equivalences | None = None) -> None:
        self._tables = _compile_equivalences(equivalences)
        self.reset()

    def reset(self) -> None:
        self._overall = _Counts()
        self._by_country: dict[str, _Counts] = {}
        self._by_rows: dict[str, _Counts] = {}
        self._country = ClassificationCounts()
        self._rows = ClassificationCounts()
        self._country_by_group: dict[str, list[int]] = {}  # true country -> [correct, n]
        # Plates with a country prediction left out of the country scores, by why.
        self._country_left_out = {"unlabelled": 0, "other_country": 0}

    def update(self, records: Iterable[ReadingRecord]) -> None:
        """Add a batch of read plates (``None`` country / rows predictions are skipped)."""
        records = list(records)
        for r in records:
            ck = _country_key(r.country)
            if r.pred_country is not None and ck not in COUNTRY_CLASSES:
                self._country_left_out["unlabelled" if ck == NO_COUNTRY else "other_country"] += 1
            elif r.pred_country is not None:
                pk = _country_key(r.pred_country)
                self._country.add(ck, pk)
                group = self._country_by_group.setdefault(ck, [0, 0])
                group[0] += int(ck == pk)
                group[1] += 1
            if r.pred_rows is not None:
                self._rows.add(_rows_key(r.rows), _rows_key(r.pred_rows))
        countries = [r.country for r in records]
        p, t = _prepare([r.text for r in records], [r.label for r in records], countries, self._tables)
        exact, dist = _score_normalised(p, t)
        for e, d, lab, r in zip(exact, dist, t, records):
            chars = len(lab)
            self._overall.add(e, d, chars)
            self._by_country.setdefault(_country_group(r.country), _Counts()).add(e, d, chars)
            self._by_rows.setdefault(_rows_key(r.rows), _Counts()).add(e, d, chars)

    @property
    def n(self) -> int:
        return self._overall.n

    def compute(self) -> dict[str, Any]:
        out = {
            "overall": self._overall.as_dict(),
            "by_country": {k: self._by_country[k].as_dict() for k in sorted(self._by_country)},
            "by_rows": {k: self._by_rows[k].as_dict() for k in sorted(self._by_rows, key=_rows_sort)},
        }
        left_out = sum(self._country_left_out.values())
        if self._country.n or left_out:
            of = self._country.n + left_out
            out["country"] = {**self._country.compute(order=COUNTRY_CLASSES), "of": of,
                              "coverage": self._country.n / of, **self._country_left_out}
            for k, (correct, n) in self._country_by_group.items():
                out["by_country"][k]["country_accuracy"] = correct / n
        if self._rows.n:
            rows = self._rows.compute()
            out["rows"] = {"n": rows["n"], "accuracy": rows["accuracy"], "confusion": rows["confusion"]}
        return out


def _rows_sort(key: str) -> tuple[int, Any]:
    try:
        return (0, int(key))
    except ValueError:
        return (1, key)


OLD_BY_ROWS = "by_lines"  # the name of ``by_rows`` in metrics JSON written before the rename


def with_new_metric_names(report: Any) -> Any:
    """A metrics dict (or a report holding some, e.g. ``test_metrics.json``) read from a file:
    the same, with the old key ``by_lines`` renamed ``by_rows`` at any depth."""
    if isinstance(report, dict):
        return {("by_rows" if k == OLD_BY_ROWS and "by_rows" not in report else k): with_new_metric_names(v)
                for k, v in report.items()}
    if isinstance(report, list):
        return [with_new_metric_names(v) for v in report]
    return report


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #
def _fmt(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if kind == "pct":
        return f"{100.0 * value:.2f}%"
    return f"{value:.3f}"


_COLS = ("n", "exact match", "mean edit distance", "CER")


def _row(first: list[str], d: Mapping[str, Any], extra: str | None = None) -> str:
    cells = first + [
        str(int(d.get("n", 0))),
        _fmt(d.get("exact_match"), "pct"),
        _fmt(d.get("mean_edit_distance"), "num"),
        _fmt(d.get("cer"), "pct"),
    ]
    if extra:
        cells.append(_fmt(d.get(extra), "pct"))
    return "| " + " | ".join(cells) + " |"


def _table(key_header: str | None, rows: Iterable[tuple[str, Mapping[str, Any]]],
           extra: tuple[str, str] | None = None) -> list[str]:
    """``extra``: (column header, result key) of one more percentage column."""
    cols = list(_COLS) + ([extra[0]] if extra else [])
    head = ([key_header] if key_header else []) + cols
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * (1 if key_header else 0) + ["---:"] * len(cols)) + "|"]
    for key, d in rows:
        out.append(_row([key] if key_header else [], d, extra[1] if extra else None))
    return out


def format_metrics_table(results: Mapping[str, Any], title: str | None = None) -> str:
    """Markdown: overall, per row count, per country (sorted), each with ``n``.

    Exact match and CER are shown in percent (2 decimals), mean edit distance
    with 3 decimals; empty sets read "n/a".
    """
    parts: list[str] = []
    if title:
        parts += [f"### {title}", ""]
    parts += ["**Overall**", ""] + _table(None, [("", results.get("overall", {}))])
    by_rows = results.get("by_rows") or results.get(OLD_BY_ROWS) or {}
    if by_rows:
        parts += ["", "**By number of rows**", ""]
        parts += _table("rows", [(k, by_rows[k]) for k in sorted(by_rows, key=_rows_sort)])
    by_country = results.get("by_country") or {}
    if by_country:
        parts += ["", "**By country**", ""]
        rows = [(k, by_country[k]) for k in sorted(by_country)]
        if any("country_accuracy" in d for d in by_country.values()):
            parts += _table("country", rows, extra=("country accuracy", "country_accuracy"))
        else:
            parts += _table("country", rows)
    cls = [(name, results[key]) for name, key in (("country", "country"), ("rows", "rows")) if key in results]
    if cls:
        parts += ["", "**Plate classification**", "", "| head | n | accuracy | macro-F1 |", "|---|---:|---:|---:|"]
        for name, d in cls:
            parts.append(f"| {name} | {d['n']} | {_fmt(d.get('accuracy'), 'pct')} | "
                         f"{_fmt(d.get('macro_f1'), 'pct') if 'macro_f1' in d else 'n/a'} |")
        coverage = country_coverage_line(results.get("country") or {})
        if coverage:
            parts += ["", coverage]
    return "\n".join(parts) + "\n"


def country_coverage_line(country: Mapping[str, Any]) -> str | None:
    """How many plates the country scores cover, and why the others are left out; None when
    they cover every plate read."""
    n, of = country.get("n", 0), country.get("of", country.get("n", 0))
    if n == of:
        return None
    why = [f"{country[k]} {words}" for k, words in (("unlabelled", "without a country label"),
                                                    ("other_country", "labelled with a country the head has no class for"))
           if country.get(k)]
    return (f"Country scores cover {n} of {of} plates ({_fmt(n / of if of else None, 'pct')}); "
            f"left out: {', '.join(why)}.")


# --------------------------------------------------------------------------- #
# Multi-process gathering
# --------------------------------------------------------------------------- #
def gather_records(accelerator: Any, records: Sequence[ReadingRecord]) -> list[ReadingRecord]:
    """Gather one evaluation batch's records from all processes, without the even-batches padding duplicates.

    Call it once per batch, inside the ``for batch in dataloader`` loop over a
    dataloader prepared by ``accelerator`` (and before the loop moves on), with
    this process's records. Every process gets the same list back.

    It is a single ``accelerator.gather_for_metrics(records, use_gather_object=True)``.
    In accelerate 1.15 that call all-gathers the per-process lists, flattens them
    in process order, and -- on the last batch of a dataloader whose dataset
    has a length -- keeps only the first ``len(dataset) % total_batch_size``
    records, which drops the samples repeated to pad the last batch. (Gathering
    an epoch's accumulated records at the last batch would not work: they would
    be cut to the remainder.)
    """
    return list(accelerator.gather_for_metrics(list(records), use_gather_object=True))
