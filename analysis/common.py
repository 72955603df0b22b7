"""What the three notebooks share: a cache folder and the default synthetic dataset.

The notebooks read ``PLATE_OCR_NB_FAST=1`` (set by ``tests/test_notebooks.py``) in their
parameters cell to run on tiny sizes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

CACHE_ENV = "PLATE_OCR_NB_CACHE"  # where generated datasets and throw-away runs go


def cache_dir() -> Path:
    """``$PLATE_OCR_NB_CACHE``, else ``<system temp>/plate-ocr-notebooks`` (created)."""
    path = Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "plate-ocr-notebooks")
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_work_dir(prefix: str) -> Path:
    """A fresh, empty folder under :func:`cache_dir` (training runs never reuse a folder)."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=cache_dir()))


def synthetic_dataset(n: int, seed: int = 0, two_row_prob: float = 0.15, augment: bool = True) -> Path:
    """A format (a) synthetic set in the cache folder, written on first use.

    With ``augment`` the plates go through ``degrade`` (like the fixed val/test sets of
    training), so crop sizes and aspect ratios vary as detector crops do.
    """
    from data.synth import degrade, write_synthetic_dataset

    name = f"synth_n{n}_seed{seed}_2row{two_row_prob:g}" + ("_capture" if augment else "")
    path = cache_dir() / name
    if not (path / "labels.csv").is_file():
        write_synthetic_dataset(path, n=n, seed=seed, two_row_prob=two_row_prob,
                                augment=degrade if augment else None, overwrite=True)
    return path


def resolve_data(data: str | os.PathLike | None, n_synth: int, seed: int = 0) -> Path:
    """The dataset a notebook reads: the user's path, or (``None``) the default synthetic set."""
    if data is None:
        return synthetic_dataset(n_synth, seed)
    path = Path(data)
    if not path.exists():
        raise FileNotFoundError(f"dataset {path} not found (relative paths are from {Path.cwd()})")
    return path
