"""Plate-crop datasets: on-disk formats, readers, and the torch datasets.

Formats
-------
(a) CSV folder: a folder with ``labels.csv`` (or any CSV passed by path) with a
    header row and the columns ``filename,text[,country][,rows]`` (any order,
    header names case-insensitive, extra columns ignored). ``filename`` is
    relative to the CSV's folder. ``country`` is a code known to
    :func:`data.text.normalize_country`; an empty cell (or no column) means no
    country label (``NO_COUNTRY``: left out of the country loss and scores, unlike
    the label ``unknown``); ``rows``, the number
    of text rows on the plate, is 1 or 2 (empty = 1). Files written before the
    column was renamed call it ``lines``; it still reads (see :func:`rows_of`).
    Read with :func:`read_csv_dataset`.

(b) File-name folder: a folder, searched recursively, of crops whose file name
    holds the label. Read with :func:`read_filename_dataset`; the rule is in
    :func:`label_from_filename`. There is no country label and rows is 1.

(c) Full photos with plate boxes: cut once into a format (a) cache with
    ``python -m data.crops`` (see :mod:`data.crops`).

:func:`load_records` picks (a) or (b) from a path. Readers never open images:
they only check that each file exists, so a 100k-row CSV reads in a fraction of
a second. ``python -m data.check DATASET`` opens every image to verify a
dataset before training.

Every label goes through :func:`data.text.normalize_plate_text` and is checked
against the charset (masked ``*`` characters only with ``allow_mask=True``, for
evaluation sets).
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

# Image files (torch-free, shared with the ONNX reading path); imported here for the readers below.
from data.images import CHECK_HINT, IMAGE_EXTENSIONS, DatasetError, ImageReadError, image_files, read_image_rgb, to_rgb_uint8  # noqa: F401
from data.text import NO_COUNTRY, Charset, normalize_country, normalize_plate_text

DEFAULT_CSV_NAME = "labels.csv"
_ON_INVALID = ("error", "skip")


@dataclass
class PlateRecord:
    path: Path
    text: str
    country: str  # a code, "unknown", or NO_COUNTRY (""): no country label
    rows: int = 1  # text rows on the plate


# --------------------------------------------------------------------------- helpers


def _check_on_invalid(on_invalid_label: str) -> None:
    if on_invalid_label not in _ON_INVALID:
        raise ValueError(f"on_invalid_label must be one of {_ON_INVALID}, got {on_invalid_label!r}")


def parse_rows(value: str | int | None, column: str = "rows") -> int:
    """The ``rows`` column: 1 or 2; empty or None reads as 1. Raises ValueError otherwise."""
    if value is None:
        return 1
    if isinstance(value, bool):
        raise ValueError(f"{column} must be 1 or 2, got {value!r}")
    if isinstance(value, (int, np.integer)):
        n = int(value)
    elif isinstance(value, float) and value.is_integer():
        n = int(value)
    else:
        s = str(value).strip()
        if not s:
            return 1
        if not re.fullmatch(r"[12](\.0*)?", s):
            raise ValueError(f"{column} must be 1 or 2, got {value!r}")
        n = int(s[0])
    if n not in (1, 2):
        raise ValueError(f"{column} must be 1 or 2, got {value!r}")
    return n


_ROWS_FAST = {"": 1, "1": 1, "2": 2}

# The name of the ``rows`` column (and annotation key) in files written before it was renamed.
OLD_ROWS_COLUMN = "lines"


def rows_of(rows: str | int | None, old_rows: str | int | None = None) -> int:
    """The row count of one record from its ``rows`` cell and its ``lines`` cell (the old
    name); None or an empty cell where the record has none. ValueError, naming the column, for
    a bad value or when both are given and disagree."""
    n = _ROWS_FAST.get(rows) if isinstance(rows, str) else None  # the common case, fast
    if n is None:
        try:
            n = parse_rows(rows)
        except ValueError as e:
            raise ValueError(f"column 'rows': {e}") from None
    if _blank(old_rows):
        return n
    old = _ROWS_FAST.get(old_rows) if isinstance(old_rows, str) else None
    if old is None:
        try:
            old = parse_rows(old_rows, OLD_ROWS_COLUMN)
        except ValueError as e:
            raise ValueError(f"column {OLD_ROWS_COLUMN!r}: {e}") from None
    if not _blank(rows) and old != n:
        raise ValueError(f"columns 'rows' ({n}) and {OLD_ROWS_COLUMN!r} ({old}, its old name) disagree")
    return old


def _blank(cell: str | int | None) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


class _FileExists:
    """``os.path.isfile`` with one directory listing per folder (fast for big datasets)."""

    def __init__(self) -> None:
        self._dirs: dict[str, frozenset[str] | None] = {}

    def __call__(self, path: str) -> bool:
        folder, name = os.path.split(path)
        names = self._dirs.get(folder, False)
        if names is False:
            try:
                names = frozenset(os.listdir(folder or "."))
            except OSError:
                names = None
            self._dirs[folder] = names
        if names is not None and name in names:
            return True  # (a folder of that name would fail later, when the image is read)
        # Not listed under this exact spelling (e.g. a case-insensitive file system): ask the OS.
        return os.path.isfile(path)


# --------------------------------------------------------------------------- format (a)


def checked_label(raw: str, charset: Charset, allow_mask: bool, on_invalid_label: str,
                  stats: dict[str, Any], where: str, note: str = "") -> str | None:
    """The normalised label, or None when it is invalid and ``on_invalid_label`` is "skip"
    (counted in ``stats``); otherwise an invalid label raises DatasetError naming ``where``."""
    text = normalize_plate_text(raw)
    try:
        charset.check(text, allow_mask=allow_mask)
    except ValueError as e:
        msg = f"{where}: {e}{note}"
        if on_invalid_label != "skip":
            raise DatasetError(msg) from None
        stats["skipped_invalid_label"] += 1
        if len(stats["skipped_examples"]) < 5:
            stats["skipped_examples"].append(msg)
        return None
    return text


def read_csv_dataset(
    root: str | os.PathLike,
    csv_name: str = DEFAULT_CSV_NAME,
    charset: Charset | None = None,
    on_invalid_label: str = "error",
    allow_mask: bool = False,
) -> tuple[list[PlateRecord], dict[str, Any]]:
    """Read a format (a) folder: ``root/csv_name`` with ``filename,text[,country][,rows]``
    (``rows`` may be called ``lines``, its old name; see :func:`rows_of`).

    Errors (:class:`DatasetError`) name the CSV file, the line number in the
    file (line 1 is the header) with the 1-based data row, and the column.
    Labels that are empty or have characters outside ``charset`` raise, or with
    ``on_invalid_label="skip"`` are skipped and counted in
    ``stats["skipped_invalid_label"]``. Unknown countries, bad ``rows`` values
    and missing image files always raise.

    Returns ``(records, stats)``; stats has ``rows`` (data rows read),
    ``records`` (kept), ``skipped_invalid_label`` and ``skipped_examples`` (up to
    five messages).
    """
    _check_on_invalid(on_invalid_label)
    charset = charset or Charset()
    root = Path(root)
    csv_path = root / csv_name
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path}: CSV file not found")

    records: list[PlateRecord] = []
    stats: dict[str, Any] = {"rows": 0, "records": 0, "skipped_invalid_label": 0, "skipped_examples": []}
    exists = _FileExists()
    root_str = str(root)
    country_cache: dict[str, str] = {}

    try:
        f = open(csv_path, newline="", encoding="utf-8-sig")
    except OSError as e:
        raise DatasetError(f"{csv_path}: cannot open: {e}") from e
    with f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise DatasetError(f"{csv_path}: empty file, expected a header with columns filename,text") from None
        except (csv.Error, UnicodeDecodeError) as e:
            raise DatasetError(f"{csv_path}, line 1 (header): {e}") from e
        cols = [h.strip().lower() for h in header]
        for required in ("filename", "text"):
            if required not in cols:
                raise DatasetError(
                    f"{csv_path}, line 1 (header): missing column {required!r} "
                    f"(found columns: {', '.join(repr(c) for c in cols)}; expected filename,text[,country][,rows])"
                )
        i_file, i_text = cols.index("filename"), cols.index("text")
        i_country = cols.index("country") if "country" in cols else None
        i_rows = cols.index("rows") if "rows" in cols else None
        i_old_rows = cols.index(OLD_ROWS_COLUMN) if OLD_ROWS_COLUMN in cols else None

        row_no = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as e:
                raise DatasetError(f"{csv_path}, line {reader.line_num}: {e}") from e
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            row_no += 1
            where = f"{csv_path}, line {reader.line_num} (data row {row_no})"

            def cell(i: int | None) -> str:
                return row[i].strip() if i is not None and i < len(row) else ""

            filename = cell(i_file)
            if not filename:
                raise DatasetError(f"{where}, column 'filename': empty file name")

            raw_text = row[i_text] if i_text < len(row) else ""
            text = checked_label(raw_text, charset, allow_mask, on_invalid_label, stats,
                                 f"{where}, column 'text'", "" if raw_text.strip() else " (the cell is empty)")
            if text is None:
                continue

            raw_country = cell(i_country)
            country = country_cache.get(raw_country)
            if country is None:
                try:
                    country = normalize_country(raw_country)
                except ValueError as e:
                    raise DatasetError(f"{where}, column 'country': {e}") from None
                country_cache[raw_country] = country

            try:
                rows = rows_of(cell(i_rows) if i_rows is not None else None,
                               cell(i_old_rows) if i_old_rows is not None else None)
            except ValueError as e:
                raise DatasetError(f"{where}, {e}") from None

            path = os.path.join(root_str, filename)
            if not exists(path):
                raise DatasetError(f"{where}, column 'filename': image file not found: {path}")
            records.append(PlateRecord(Path(path), text, country, rows))

    stats["rows"] = row_no
    stats["records"] = len(records)
    return records, stats


# --------------------------------------------------------------------------- format (b)

_COPY_MARKER = re.compile(r"\s*\(\d+\)$")


def label_from_filename(name: str) -> str:
    """The raw label a format (b) file name holds (before normalisation).

    Rule, on the file name without its last extension (the *stem*):

    1. A trailing copy marker ``" (N)"`` is removed (``AB123 (2).jpg``).
    2. The stem is split on ``_`` (empty pieces dropped).
    3. If the last piece is all digits and the piece before it has a non-digit
       character, the last piece is a duplicate counter and the label is the
       piece before it; otherwise the label is the last piece.

    So ``AB123CD.jpg``, ``AB-123-CD_2.png``, ``00012_AB123CD.png``,
    ``00012_AB123CD_7.png`` and ``00012_1234567.png`` read as ``AB123CD``,
    ``AB-123-CD``, ``AB123CD``, ``AB123CD`` and ``1234567``. The one case the
    rule cannot tell apart: an all-digit plate *with* a duplicate counter
    (``1234567_2`` reads as ``2``) -- name such files ``N_1234567`` or use a CSV.
    Separators (``-``, space, ``.``) inside the label are dropped by
    normalisation.
    """
    stem = name.rsplit(".", 1)[0] if "." in name else name
    stem = _COPY_MARKER.sub("", stem)
    parts = [p for p in stem.split("_") if p]
    if not parts:
        return ""
    if len(parts) >= 2 and parts[-1].isdigit() and not parts[-2].isdigit():
        return parts[-2]
    return parts[-1]


# Words of camera, export and tool file names (crop_0000.png, IMG_1234.jpg, frame12.png), not of plates.
_FILE_NAME_WORDS = re.compile(r"CROP|IMG|IMAGE|FRAME|PHOTO|PICTURE|SCAN|SAMPLE|SNAPSHOT|CAPTURE|UNTITLED|SCREENSHOT")


def looks_like_plate(label: str) -> bool:
    """Whether a label read from a file name could be a plate's text: it has a digit (nearly
    every plate has) and no word of file names (``CROP``, ``IMG``, ``FRAME``, ...)."""
    return any(c.isdigit() for c in label) and not _FILE_NAME_WORDS.search(label)


def read_filename_dataset(
    root: str | os.PathLike,
    charset: Charset | None = None,
    on_invalid_label: str = "error",
    allow_mask: bool = False,
    extensions: Iterable[str] = IMAGE_EXTENSIONS,
) -> tuple[list[PlateRecord], dict[str, Any]]:
    """Read a format (b) folder: image files (recursive, sorted) named by their label.

    The label rule is :func:`label_from_filename`. Hidden files and folders
    (starting with ``.``) are ignored, as are files without an image extension.
    Invalid labels raise :class:`DatasetError` naming the file, or with
    ``on_invalid_label="skip"`` are skipped and counted. Returns ``(records, stats)``; stats
    also count the names whose label does not look like a plate (:func:`looks_like_plate`):
    ``unlike_plates`` and up to three ``unlike_examples`` ("name -> LABEL").
    """
    _check_on_invalid(on_invalid_label)
    charset = charset or Charset()
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    exts = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
    records: list[PlateRecord] = []
    stats: dict[str, Any] = {"rows": 0, "records": 0, "skipped_invalid_label": 0, "skipped_examples": [],
                             "unlike_plates": 0, "unlike_examples": []}
    for path in image_files(root, exts):
        stats["rows"] += 1
        name = os.path.basename(path)
        raw = label_from_filename(name)
        if not looks_like_plate(normalize_plate_text(raw)):
            stats["unlike_plates"] += 1
            if len(stats["unlike_examples"]) < 3:
                stats["unlike_examples"].append(f"{name} -> {normalize_plate_text(raw) or '(empty)'}")
        text = checked_label(raw, charset, allow_mask, on_invalid_label, stats,
                             f"{path}: label {raw!r} read from the file name")
        if text is None:
            continue
        records.append(PlateRecord(Path(path), text, NO_COUNTRY, 1))
    if stats["rows"] == 0:
        raise DatasetError(
            f"{root}: no image files found (looked for {', '.join(sorted(exts))}, recursively)"
        )
    stats["records"] = len(records)
    return records, stats


# --------------------------------------------------------------------------- detection


def detect_format(source: str | os.PathLike) -> tuple[str, Path, str | None]:
    """``("csv", root, csv_name)`` or ``("filename", root, None)`` for a dataset path.

    A folder with ``labels.csv`` or a ``.csv`` file is format (a); a folder
    without any CSV at its top level is format (b). Anything else raises
    :class:`DatasetError` naming the path.
    """
    p = Path(source)
    if p.is_file():
        if p.suffix.lower() == ".csv":
            return "csv", p.parent, p.name
        raise DatasetError(
            f"{p}: not a dataset: expected a folder (with {DEFAULT_CSV_NAME}, or of crops named by "
            "their label) or a .csv file"
        )
    if p.is_dir():
        if (p / DEFAULT_CSV_NAME).is_file():
            return "csv", p, DEFAULT_CSV_NAME
        csvs = sorted(n for n in os.listdir(p) if n.lower().endswith(".csv") and (p / n).is_file())
        if csvs:
            raise DatasetError(
                f"{p}: has CSV file(s) {', '.join(csvs)} but no {DEFAULT_CSV_NAME}: pass the CSV file "
                "itself for a CSV dataset, or use fmt='filename' to read the folder by file names"
            )
        return "filename", p, None
    raise DatasetError(f"{p}: dataset path does not exist")


def load_dataset(
    source: str | os.PathLike,
    charset: Charset | None = None,
    on_invalid_label: str = "error",
    allow_mask: bool = False,
    fmt: str = "auto",
) -> tuple[list[PlateRecord], dict[str, Any]]:
    """Like :func:`load_records`, also returning the reader's stats (with ``format``)."""
    if fmt == "auto":
        fmt, root, csv_name = detect_format(source)
    elif fmt == "csv":
        p = Path(source)
        root, csv_name = (p.parent, p.name) if p.suffix.lower() == ".csv" else (p, DEFAULT_CSV_NAME)
    elif fmt == "filename":
        root, csv_name = Path(source), None
    else:
        raise ValueError(f"fmt must be 'auto', 'csv' or 'filename', got {fmt!r}")
    if fmt == "csv":
        records, stats = read_csv_dataset(root, csv_name, charset, on_invalid_label, allow_mask)
    else:
        records, stats = read_filename_dataset(root, charset, on_invalid_label, allow_mask)
    stats["format"] = fmt
    return records, stats


# Why ``on_invalid_label="skip"`` dropped rows: the stats key of each reason, and its words.
SKIP_REASONS = {"skipped_invalid_label": "invalid label (empty, or characters outside the charset)"}


def skipped_summary(stats: dict[str, Any], source: str | os.PathLike) -> str | None:
    """One line saying how many rows of ``source`` were skipped, per reason, and the first
    example; None when none was (``stats`` from :func:`load_dataset`)."""
    counts = [(stats.get(key, 0), words) for key, words in SKIP_REASONS.items()]
    counts = [(n, words) for n, words in counts if n]
    if not counts:
        return None
    reasons = ", ".join(f"{n} {words}" for n, words in counts)
    line = f"{source}: skipped {sum(n for n, _ in counts)} of {stats.get('rows', '?')} rows: {reasons}"
    examples = stats.get("skipped_examples") or []
    return line + (f"; first: {examples[0]}" if examples else "")


def label_source_notes(stats: dict[str, Any], source: str | os.PathLike) -> list[str]:
    """Where the labels of ``source`` came from, for a folder read by file names (format b), and a
    warning when most of those names do not look like plates (``crop_0000.png`` reads ``CROP``):
    scores against such labels mean nothing. [] for a CSV (``stats`` from :func:`load_dataset`)."""
    if stats.get("format") != "filename":
        return []
    lines = [f"labels: from file names (no {DEFAULT_CSV_NAME} in {source})"]
    unlike, n = stats.get("unlike_plates", 0), stats.get("rows", 0)
    if n and unlike * 2 > n:
        lines.append(
            f"warning: {unlike} of {n} file names in {source} do not look like plates "
            f"(e.g. {', '.join(stats.get('unlike_examples', []))}), so scores against the labels read from "
            f"them (exact match, CER) are meaningless: give the folder a {DEFAULT_CSV_NAME} "
            f"(filename,text[,country]), or just read the crops with python predict.py --input {source}")
    return lines


def dataset_notes(stats: dict[str, Any], source: str | os.PathLike, name: str | None = None) -> list[str]:
    """The lines a command prints after reading the dataset ``source``: where its labels came
    from (:func:`label_source_notes`) and the rows it skipped (:func:`skipped_summary`, under
    ``name``, e.g. the config key, or ``source``)."""
    skipped = skipped_summary(stats, name or source)
    return label_source_notes(stats, source) + ([skipped] if skipped else [])


def load_records(
    source: str | os.PathLike,
    charset: Charset | None = None,
    on_invalid_label: str = "error",
    allow_mask: bool = False,
    fmt: str = "auto",
) -> list[PlateRecord]:
    """Records of a dataset path, format detected by :func:`detect_format` (or forced by ``fmt``)."""
    return load_dataset(source, charset, on_invalid_label, allow_mask, fmt)[0]


# --------------------------------------------------------------------------- torch datasets

Transform = Callable[[np.ndarray], Any]


class PlateDataset(Dataset):
    """Map-style dataset over :class:`PlateRecord` s; images are read lazily in ``__getitem__``.

    ``transform`` maps an RGB uint8 HxWx3 array to a float tensor 3xHxW (see
    :func:`data.transforms.build_transform`); with ``transform=None`` the raw
    array is returned. Items: ``{"image", "text", "country", "rows"}``.
    """

    def __init__(self, records: Sequence[PlateRecord], transform: Transform | None = None,
                 skip_unreadable: bool = False):
        self.records = list(records)
        self.transform = transform
        # True: an unreadable image gives {"image": None, "unreadable": message} (the evaluation
        # loop leaves it out and counts it) instead of raising ImageReadError.
        self.skip_unreadable = skip_unreadable

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        r = self.records[index]
        try:
            img = read_image_rgb(r.path)
        except ImageReadError as e:
            if self.skip_unreadable:
                return {"image": None, "unreadable": str(e), "text": r.text, "country": r.country, "rows": r.rows}
            raise ImageReadError(f"{e} ({CHECK_HINT})") from None
        if self.transform is not None:
            try:
                img = self.transform(img)
            except Exception as e:
                raise RuntimeError(f"{r.path}: transform failed on image of shape {img.shape}: {e}") from e
        return {"image": img, "text": r.text, "country": r.country, "rows": r.rows}


def stream_seed(seed: int, rank: int = 0, worker: int = 0, epoch: int = 0) -> int:
    """A 63-bit seed for the (seed, rank, worker, epoch) stream: distinct per tuple, reproducible."""
    words = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(rank), int(worker), int(epoch)]).generate_state(2)
    return int((int(words[0]) << 31) ^ int(words[1])) & ((1 << 63) - 1)


class SyntheticPlateDataset(IterableDataset):
    """Infinite stream of synthetic plates from :class:`data.synth.SyntheticPlateGenerator`.

    Each (``seed``, ``rank``, DataLoader worker, epoch) gets its own generator
    and transform seed, so streams differ across processes and workers and
    replay exactly for the same tuple. Call :meth:`set_epoch` between epochs
    (if the iterator is re-created) to get fresh samples. Items are the same
    dicts as :class:`PlateDataset`. ``bank`` (a :class:`data.synth.bank.BankSpec` with
    ``uses`` > 1) draws each rendered plate ``uses`` times (:mod:`data.synth.bank`).
    """

    def __init__(
        self,
        transform: Transform | None,
        seed: int = 0,
        countries: Sequence[str] | None = None,
        two_row_prob: float = 0.15,
        rank: int = 0,
        world_size: int = 1,
        effects=None,
        effects_ramp: tuple[int, int] = (0, 0),
        country_weights: dict[str, float] | None = None,
        bank=None,
    ):
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        self.transform = transform
        self.bank = bank  # data.synth.bank.BankSpec (data.synth_bank_*), or None: a fresh plate per sample
        self.seed = int(seed)
        self.countries = list(countries) if countries is not None else None
        self.two_row_prob = two_row_prob
        self.effects = effects  # data.synth.effects.SynthEffects, or None
        self.country_weights = country_weights
        # (ramp, start) in samples of this process: the share of plates with effects grows from
        # 0 to 1 over the first ``ramp`` samples; ``start`` samples were seen before (a resumed run).
        self.effects_ramp = effects_ramp
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def max_label_length(self) -> int:
        return self._make_generator(self.seed).max_label_length

    def _make_generator(self, seed: int):
        from data.synth import SyntheticPlateGenerator

        return SyntheticPlateGenerator(seed=seed, countries=self.countries, two_row_prob=self.two_row_prob,
                                       effects=self.effects, country_weights=self.country_weights)

    def stream_seed(self) -> int:
        info = get_worker_info()
        worker = info.id if info is not None else 0
        return stream_seed(self.seed, self.rank, worker, self.epoch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        s = self.stream_seed()
        generator = self._make_generator(s % (2**31 - 1))
        transform = self.transform
        set_seed = getattr(transform, "set_seed", None)
        if callable(set_seed):
            set_seed(s ^ 0x5EED)
        ramp, start = self.effects_ramp
        info = get_worker_info()
        workers = info.num_workers if info is not None else 1
        draw = generator
        if self.bank is not None and self.bank.on:
            from data.synth.bank import PlateBank

            draw = PlateBank(generator, self.bank, np.random.default_rng([s, 0xBA4C]))
        i = 0
        while True:
            if ramp > 0:  # the generator's effects (with a bank: of the plates rendered) and the camera's
                share = min(1.0, (start + i * workers) / ramp)
                generator.effects_share = share
                if transform is not None and hasattr(transform, "effects_share"):
                    transform.effects_share = share
                i += 1
            plate = draw()
            img = transform(plate.image) if transform is not None else plate.image
            yield {"image": img, "text": plate.text, "country": plate.country, "rows": int(plate.rows)}


def mix_is_synthetic(i: int, synth_share: float) -> bool:
    """Whether item ``i`` of a mixed stream comes from the synthetic generator.

    Spreads the synthetic items evenly (``floor((i + 1) * share) > floor(i * share)``):
    any ``n`` consecutive items hold ``floor(n * share)`` or ``ceil(n * share)``
    synthetic ones, so every batch gets its share, not just the stream on average.
    """
    return math.floor((i + 1) * synth_share) > math.floor(i * synth_share)


class MixedPlateDataset(IterableDataset):
    """Real crops interleaved with synthetic plates: an infinite stream, ``synth_share`` of it synthetic.

    ``real`` is a map-style dataset (a :class:`PlateDataset`); it is read in
    shuffled passes without end (a new permutation each pass, the same on every
    process for a given ``seed``, epoch and pass), and each pass is split
    across processes (``rank``/``world_size``) and DataLoader workers, so a
    pass shows every real crop once over all of them. ``synth`` is the
    synthetic stream (a :class:`SyntheticPlateDataset` with its own seed,
    rank and transform). Synthetic items are spread evenly through the stream
    (:func:`mix_is_synthetic`), so each batch holds ``synth_share`` of them to
    within one item. Items are the same dicts as :class:`PlateDataset`.
    """

    def __init__(self, real: Dataset, synth: SyntheticPlateDataset, synth_share: float, seed: int = 0,
                 rank: int = 0, world_size: int = 1):
        if not 0.0 <= synth_share < 1.0:
            raise ValueError(f"synth_share must be in [0, 1), got {synth_share}")
        if len(real) == 0:
            raise ValueError("the real dataset is empty")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        self.real, self.synth, self.synth_share = real, synth, float(synth_share)
        self.seed, self.rank, self.world_size = int(seed), rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.synth.set_epoch(epoch)

    def real_indices(self, shard: int, num_shards: int) -> Iterator[int]:
        """Indices into ``real`` for one shard: shuffled passes without end."""
        n = len(self.real)
        for p in itertools.count():
            rng = np.random.default_rng(np.random.SeedSequence([self.seed & 0xFFFFFFFF, self.epoch, p, 0x4EA1]))
            perm = rng.permutation(n)
            # Fewer crops than shards: every shard walks the whole pass (nothing is starved).
            yield from (perm[shard::num_shards] if n >= num_shards else perm).tolist()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        real = (self.real[i] for i in self.real_indices(self.rank * workers + worker, self.world_size * workers))
        synth = iter(self.synth) if self.synth_share > 0 else iter(())
        for i in itertools.count():
            yield next(synth) if mix_is_synthetic(i, self.synth_share) else next(real)


def _stack_images(images: list) -> torch.Tensor:
    if not all(isinstance(im, torch.Tensor) for im in images):
        images = [torch.as_tensor(im) for im in images]
    shapes = {tuple(im.shape) for im in images}
    if len(shapes) != 1:
        raise ValueError(
            f"collate_plates: images have different shapes {sorted(shapes)}; use a transform that resizes "
            "to a fixed height and width"
        )
    return torch.stack(images)


def collate_plates(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch items: ``{"images": [B,3,H,W], "texts", "countries", "rows": LongTensor[B]}``
    (``images`` a tuple of such batches where each item's image is a tuple: one per model)."""
    if not samples:
        raise ValueError("collate_plates: empty batch")
    images = [s["image"] for s in samples]
    if isinstance(images[0], tuple):  # one input per model (inference.JointTransform)
        stacked = tuple(_stack_images(list(part)) for part in zip(*images))
    else:
        stacked = _stack_images(images)
    return {
        "images": stacked,
        "texts": [s["text"] for s in samples],
        "countries": [s["country"] for s in samples],
        "rows": torch.tensor([int(s["rows"]) for s in samples], dtype=torch.long),
    }

