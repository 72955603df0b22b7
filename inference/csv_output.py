"""The predictions CSV that ``predict.py`` writes."""

from __future__ import annotations

import csv
import os
from typing import Iterable

from inference.readers import Prediction


def write_predictions_csv(path: str | os.PathLike, predictions: Iterable[Prediction]) -> int:
    """Write ``filename,text,confidence,country,country_confidence,rows,error``; returns the row count."""
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(Prediction.CSV_COLUMNS))
        w.writeheader()
        for p in predictions:
            w.writerow(p.to_row())
            n += 1
    return n
