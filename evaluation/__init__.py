"""Scoring a reader on labelled plates: the one evaluation loop and its reports.

    from evaluation import evaluate

    metrics = evaluate(model, loader, accelerator).metrics            # training, compare.py
    result = evaluate(reader, loader, keep_records=True)               # val.py: every read plate too

:func:`evaluate` (``evaluation/loop.py``) serves training, ``val.py``, ``compare.py``, the
analysis notebooks and the benchmarks; ``evaluation/reports.py`` draws the error gallery and
the country confusion matrix. The numbers themselves come from ``metrics.PlateMetrics``.
"""

from evaluation.loop import (EvalResult, IndexedDataset, ModelReader, Predictor, collate_indexed, evaluate,
                             score_records)
from metrics import ReadingRecord

__all__ = ["EvalResult", "IndexedDataset", "ModelReader", "Predictor", "ReadingRecord", "collate_indexed", "evaluate",
           "score_records"]
