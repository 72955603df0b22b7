"""Shared by test_predict.py and test_train.py: a pickle whose loading leaves a mark."""

from __future__ import annotations

import pickle
from pathlib import Path


class _Trap:
    """Unpickling this creates a marker file: proves whether anything was unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def trap_pickle(marker: Path) -> bytes:
    """Pickled bytes that create ``marker`` when unpickled."""
    return pickle.dumps(_Trap(marker))
