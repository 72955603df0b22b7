"""The predictions CSV that ``predict.py`` writes: checked before any reading, written row by row."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import IO, Iterable

from inference.readers import Prediction


class OutputError(ValueError):
    """The output path cannot be written, or would replace an input: the message names it."""


def check_output_path(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """``path`` if a CSV can be written there and it is none of ``inputs``; raises :class:`OutputError`.

    Creates the missing folders of ``path``. Run before reading anything, so that a bad
    ``--output`` fails at once, not after the whole run, and never replaces its own input."""
    out = Path(path)
    if out.is_dir():
        raise OutputError(f"{out}: is a folder, expected a CSV file name")
    if out.exists():
        # Compare by file identity (links, ./x, case-insensitive file systems); by name first, so
        # that a folder of many images costs one stat per image of the same name only.
        name = out.name.lower()
        for p in inputs:
            p = Path(p)
            if p.name.lower() == name and p.exists() and os.path.samefile(p, out):
                raise OutputError(f"{out}: is an input of this run ({p}); "
                                  f"it would be overwritten by the predictions: choose another --output")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{out}: cannot create its folder {out.parent}: {e.strerror or e}") from e
    target = out if out.exists() else out.parent
    if not os.access(target, os.W_OK):
        raise OutputError(f"{out}: {target} is not writable")
    return out


class PredictionsCSV:
    """``filename,text,confidence,country,country_confidence,rows,error`` written as rows come.

    Each :meth:`write` flushes to the file, so an interrupted run keeps every row written so far.
    Use as a context manager; :attr:`rows` counts the data rows written."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self._file: IO[str] = open(self.path, "w", newline="", encoding="utf-8")
        except OSError as e:
            raise OutputError(f"{self.path}: cannot write: {e.strerror or e}") from e
        self._writer = csv.DictWriter(self._file, fieldnames=list(Prediction.CSV_COLUMNS))
        self._writer.writeheader()
        self._file.flush()
        self.rows = 0

    def write(self, predictions: Iterable[Prediction]) -> None:
        for p in predictions:
            self._writer.writerow(p.to_row())
            self.rows += 1
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "PredictionsCSV":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_predictions_csv(path: str | os.PathLike, predictions: Iterable[Prediction]) -> int:
    """Write ``filename,text,confidence,country,country_confidence,rows,error``; returns the row count."""
    with PredictionsCSV(path) as out:
        out.write(predictions)
    return out.rows
