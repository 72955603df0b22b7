"""Exploratory analysis of a plate dataset in any supported format.

:func:`scan_dataset` reads the *raw* labels (CSV cells or file names) without rejecting
anything, so characters outside the charset, unknown countries and missing files are shown
instead of stopping the notebook; :func:`reader_check` says what the training reader will do
with the same dataset. The other functions turn the scan into tables to plot.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data.datasets import (
    OLD_ROWS_COLUMN,
    DatasetError,
    detect_format,
    label_from_filename,
    load_dataset,
    read_image_rgb,
    rows_of,
)
from data.images import image_files
from data.text import Charset, normalize_country, normalize_plate_text

SCAN_COLUMNS = ("file", "raw_text", "text", "length", "country", "rows", "bad_chars", "exists", "problems")


NO_COUNTRY_SHOWN = "(no label)"  # the country group of plates without a country label


def _row(path: str, raw_text: str, raw_country: str, raw_rows: str, raw_old_rows: str, charset: Charset,
         exists: bool) -> dict[str, Any]:
    problems: list[str] = []
    text = normalize_plate_text(raw_text)
    bad = charset.invalid_chars(text)
    if not text:
        problems.append("empty label")
    if bad:
        problems.append(f"characters outside the charset: {bad!r}")
    try:
        country = normalize_country(raw_country) or NO_COUNTRY_SHOWN
    except ValueError:
        country = raw_country.strip()
        problems.append(f"{country!r} is not a country code")
    try:
        rows = rows_of(raw_rows, raw_old_rows)
    except ValueError as e:
        rows = 0
        problems.append(f"bad {e}")
    if not exists:
        problems.append("image file not found")
    return {"file": path, "raw_text": raw_text, "text": text, "length": len(text), "country": country,
            "rows": rows, "bad_chars": bad, "exists": exists, "problems": "; ".join(problems)}


def _scan_csv(root: Path, csv_name: str, charset: Charset) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with open(root / csv_name, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        if "filename" not in header or "text" not in header:
            raise DatasetError(f"{root / csv_name}: needs the columns filename,text (found {header})")
        col = {name: header.index(name) if name in header else None
               for name in ("filename", "text", "country", "rows", OLD_ROWS_COLUMN)}
        for cells in reader:
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue

            def cell(name: str) -> str:
                i = col[name]
                return cells[i] if i is not None and i < len(cells) else ""

            path = os.path.join(root, cell("filename").strip())
            rows.append(_row(path, cell("text"), cell("country"), cell("rows"), cell(OLD_ROWS_COLUMN), charset,
                             os.path.isfile(path)))
    return rows


def _scan_filenames(root: Path, charset: Charset) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in image_files(root):
        rows.append(_row(path, label_from_filename(os.path.basename(path)), "", "", "", charset, True))
    return rows


def scan_dataset(source: str | os.PathLike, charset: Charset | None = None) -> pd.DataFrame:
    """One row per data row of a dataset, nothing rejected.

    Columns: ``file`` (path), ``raw_text`` (the CSV cell or the label part of the file name),
    ``text`` (normalised), ``length``, ``country`` (normalised, or the raw code if unknown),
    ``rows`` (0 if the cell is invalid), ``bad_chars`` (characters of ``text`` outside the
    charset), ``exists`` and ``problems`` (what the training reader would reject, "" if none).
    """
    charset = charset or Charset()
    fmt, root, csv_name = detect_format(source)
    rows = _scan_csv(root, csv_name, charset) if fmt == "csv" else _scan_filenames(root, charset)
    table = pd.DataFrame(rows, columns=list(SCAN_COLUMNS))
    table.attrs["format"] = fmt
    return table


def reader_check(source: str | os.PathLike, charset: Charset | None = None) -> dict[str, Any]:
    """What training's reader makes of the dataset with ``data.on_invalid_label=skip``.

    The reader's stats (``rows``, ``records``, ``skipped_invalid_label``, ``skipped_examples``,
    ``format``), or ``{"error": message}`` for what stops it even when skipping (a missing image,
    an unknown country, a bad ``rows`` value).
    """
    try:
        return load_dataset(source, charset, on_invalid_label="skip")[1]
    except (DatasetError, ValueError) as e:
        return {"error": str(e)}


def problem_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Rows the training reader would skip or stop at."""
    return table.loc[table["problems"] != "", ["file", "raw_text", "country", "rows", "problems"]]


def counts_by_country(table: pd.DataFrame) -> pd.DataFrame:
    """Plates per country (rows) and number of text rows (columns), with a total; largest first."""
    counts = pd.crosstab(table["country"], table["rows"]).rename(columns=lambda n: f"{n}-row")
    counts["total"] = counts.sum(axis=1)
    return counts.sort_values("total", ascending=False)


def length_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Plates per label length (rows) and number of text rows (columns)."""
    return pd.crosstab(table["length"], table["rows"]).rename(columns=lambda n: f"{n}-row")


def char_frequencies(table: pd.DataFrame, charset: Charset | None = None) -> pd.DataFrame:
    """Occurrences of every character of the normalised labels, and of every charset character.

    Columns ``count``, ``share`` (of all characters) and ``in_charset``; indexed by the character.
    Charset characters that never occur have count 0: the model gets no example of them.
    """
    charset = charset or Charset()
    counts: Counter[str] = Counter()
    for text in table["text"]:
        counts.update(text)
    chars = list(charset.chars) + sorted(c for c in counts if c not in charset)
    total = max(1, sum(counts.values()))
    freq = pd.DataFrame({"count": [counts.get(c, 0) for c in chars]}, index=pd.Index(chars, name="char"))
    freq["share"] = freq["count"] / total
    freq["in_charset"] = [c in charset for c in chars]
    return freq


def out_of_charset(table: pd.DataFrame) -> pd.DataFrame:
    """Each character outside the charset: how many labels have it, and up to three examples."""
    rows = []
    for ch in sorted({c for bad in table["bad_chars"] for c in bad}):
        hits = table.loc[table["bad_chars"].str.contains(ch, regex=False), "raw_text"]
        rows.append({"char": ch, "codepoint": f"U+{ord(ch):04X}", "labels": len(hits),
                     "examples": ", ".join(map(repr, hits.head(3)))})
    return pd.DataFrame(rows, columns=["char", "codepoint", "labels", "examples"])


def _image_size(path: str) -> tuple[float, float]:
    try:
        from PIL import Image

        with Image.open(path) as im:  # reads the header only
            w, h = im.size
        return float(h), float(w)
    except Exception:  # noqa: BLE001 - not a format PIL knows: decode it the way training does
        try:
            h, w = read_image_rgb(path).shape[:2]
            return float(h), float(w)
        except DatasetError:
            return float("nan"), float("nan")


def image_sizes(table: pd.DataFrame, max_images: int | None = None, seed: int = 0) -> pd.DataFrame:
    """``table`` (existing files only; a random sample of ``max_images`` if given) with
    ``height``, ``width`` and ``aspect`` (width / height) of each image; unreadable ones are NaN."""
    rows = table[table["exists"]]
    if max_images is not None and len(rows) > max_images:
        rows = rows.sample(max_images, random_state=seed)
    sizes = np.array([_image_size(p) for p in rows["file"]], dtype=float).reshape(-1, 2)
    out = rows.copy()
    out["height"], out["width"] = sizes[:, 0], sizes[:, 1]
    out["aspect"] = out["width"] / out["height"]
    return out


def size_summary(sizes: pd.DataFrame, by: tuple[str, ...] = ("country", "rows")) -> pd.DataFrame:
    """Per group: plates, median height and width, and the 5%/50%/95% aspect ratio."""
    g = sizes.dropna(subset=["aspect"]).groupby(list(by))
    out = pd.DataFrame({
        "n": g.size(),
        "height_median": g["height"].median(),
        "width_median": g["width"].median(),
        "aspect_p5": g["aspect"].quantile(0.05),
        "aspect_median": g["aspect"].median(),
        "aspect_p95": g["aspect"].quantile(0.95),
    })
    return out.round(2)


def duplicate_texts(table: pd.DataFrame) -> pd.DataFrame:
    """Normalised texts that occur more than once: count, countries, and up to three files.

    Many copies of one text may be one vehicle photographed repeatedly: keep them in one split
    (train or val/test), or validation measures memory, not reading.
    """
    dup = table[table["text"].duplicated(keep=False) & (table["text"] != "")]
    rows = [{"text": text, "count": len(g), "countries": ",".join(sorted(set(g["country"]))),
             "files": ", ".join(Path(f).name for f in g["file"].head(3))}
            for text, g in dup.groupby("text")]
    out = pd.DataFrame(rows, columns=["text", "count", "countries", "files"])
    return out.sort_values(["count", "text"], ascending=[False, True], ignore_index=True)


def sample_rows(table: pd.DataFrame, per_group: int = 6, by: str = "country", seed: int = 0,
                max_groups: int | None = None) -> dict[str, pd.DataFrame]:
    """Up to ``per_group`` random existing rows of each group (largest groups first)."""
    rows = table[table["exists"]]
    order = rows[by].value_counts().index.tolist()[:max_groups]
    return {str(k): rows[rows[by] == k].sample(min(per_group, int((rows[by] == k).sum())), random_state=seed)
            for k in order}
