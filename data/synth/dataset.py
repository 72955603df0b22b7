"""Write a fixed synthetic set to disk: ``images/000000.png ...`` and ``labels.csv``."""

from __future__ import annotations

import csv
import multiprocessing as mp
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from data.synth.generator import SyntheticPlateGenerator, resolve_countries

LABEL_COLUMNS = ("filename", "text", "country", "rows")
_CHUNK = 256

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _write_range(
    tmp: str, start: int, stop: int, width: int, seed: int, countries: tuple[str, ...], two_row_prob: float,
    augment: Augment | None,
) -> list[tuple[str, str, str, int]]:
    cv2.setNumThreads(1)
    gen = SyntheticPlateGenerator(seed=seed, countries=countries, two_row_prob=two_row_prob)
    rows = []
    for i in range(start, stop):
        rng = np.random.default_rng([seed, i])  # sample i depends on (seed, i) only: any worker count
        plate = gen.sample(rng)
        image = plate.image if augment is None else augment(plate.image, rng)
        name = f"images/{i:0{width}d}.png"
        if not cv2.imwrite(os.path.join(tmp, name), np.ascontiguousarray(image[..., ::-1])):
            raise OSError(f"could not write {os.path.join(tmp, name)}")
        rows.append((name, plate.text, plate.country, plate.rows))
    return rows


def write_synthetic_dataset(
    out_dir,
    n: int,
    seed: int,
    countries: Sequence[str] | None = None,
    two_row_prob: float = 0.15,
    augment: Augment | None = None,
    workers: int = 1,
    overwrite: bool = False,
) -> Path:
    """Render ``n`` plates to ``out_dir`` and return it.

    Writes ``out_dir/images/000000.png ...`` and ``out_dir/labels.csv`` (columns filename, text,
    country, rows; filenames relative to ``out_dir``). Plate i depends only on (seed, i), so
    the set is the same for any ``workers``. ``augment(image, rng)`` (e.g. ``degrade``)
    is applied to each clean render. The set is written to a temporary folder next to
    ``out_dir`` and renamed at the end, so a half-written set never looks complete. An
    existing ``out_dir`` is an error unless ``overwrite``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    codes = resolve_countries(countries)
    if not 0.0 <= two_row_prob <= 1.0:
        raise ValueError(f"two_row_prob must be in [0, 1], got {two_row_prob}")
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    (tmp / "images").mkdir(parents=True)
    width = max(6, len(str(n - 1)))
    chunk = max(8, min(_CHUNK, -(-n // max(1, workers))))  # the split changes no pixel: only the speed
    ranges = [(a, min(a + chunk, n)) for a in range(0, n, chunk)]
    args = (str(tmp),)
    try:
        rows: list[tuple[str, str, str, int]] = []
        if workers <= 1 or len(ranges) == 1:
            for a, b in ranges:
                rows += _write_range(*args, a, b, width, seed, codes, two_row_prob, augment)
        else:
            ctx = mp.get_context("spawn")  # safe with threads (torch) in the parent
            with ProcessPoolExecutor(max_workers=min(workers, len(ranges)), mp_context=ctx) as pool:
                futures = [pool.submit(_write_range, *args, a, b, width, seed, codes, two_row_prob, augment)
                           for a, b in ranges]
                for fut in futures:
                    rows += fut.result()
        with open(tmp / "labels.csv", "w", newline="", encoding="utf-8") as fh:
            wr = csv.writer(fh)
            wr.writerow(LABEL_COLUMNS)
            wr.writerows(rows)
        if out.exists():
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
