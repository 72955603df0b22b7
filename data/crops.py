"""Format (c) -> format (a): cut plate crops out of full photos, once, into a cache folder.

Command::

    python -m data.crops --images PHOTO_DIR --annotations ann.json|ann.csv --out CACHE_DIR \\
        [--workers N] [--margin 0.05] [--height 64] [--force]

Annotation formats (coordinates in pixels of the stored image; EXIF
orientation is not applied; ``image`` is a path relative to PHOTO_DIR):

CSV, one plate per row, a header row, one of two column sets (extra columns
ignored, header names case-insensitive)::

    image,text,x,y,w,h[,country][,rows]                       axis-aligned box
    image,text,x1,y1,x2,y2,x3,y3,x4,y4[,country][,rows]       four corners, clockwise from top-left

(``rows``, the plate's number of text rows, may be called ``lines``, its old name.)

JSON, a list of photos (or ``{"images": [...]}``)::

    [{"image": "cars/001.jpg",
      "country": "DE",                                    # optional, default for its plates
      "rows": 1,                                          # optional, default for its plates
      "plates": [{"text": "B AB 123", "box": [x, y, w, h]},
                 {"text": "M XY 9", "points": [[x1, y1], [x2, y2], [x3, y3], [x4, y4]],
                  "country": "DE", "rows": 1}]}]

A box is cut with ``margin`` (a fraction of its width and height) added on
each side, clipped to the photo. Four corner points are rectified with a
perspective transform (``cv2.getPerspectiveTransform``) to an upright
rectangle whose size is the quad's longest top/bottom and left/right edges,
plus the same relative margin. Crops are then resized to ``height`` pixels
(aspect kept; ``height=0`` keeps their size).

The cache is a format (a) folder: ``images/NNNNNN[_TEXT].png`` (the text in
the name when it is plain ``A-Z0-9``) and ``labels.csv`` with
``filename,text,country,rows``, plus ``manifest.json``. It is built in a
temporary folder next to ``out_dir`` and renamed into place when complete, so
an interrupted run leaves no half cache. A re-run whose manifest matches (same
annotation file content, photo folder, margin and height) returns at once;
``force=True`` rebuilds. Labels are normalised but not checked against a
charset here (the dataset reader does that); masked ``*`` labels are kept.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from data.datasets import OLD_ROWS_COLUMN, DatasetError, ImageReadError, read_image_rgb, rows_of
from data.files import swap_into_place
from data.text import normalize_country, normalize_plate_text

MANIFEST = "manifest.json"
LABELS = "labels.csv"
CACHE_VERSION = 1


class CropError(DatasetError):
    """A bad annotation or photo: the message names the annotation file, the row and the photo."""


@dataclass
class PlateAnn:
    where: str  # "ann.csv, line 5 (data row 4)" / "ann.json, entry 3, plate 2"
    image: str  # relative to the photo folder
    text: str
    country: str
    rows: int
    box: tuple[float, float, float, float] | None = None  # x, y, w, h
    points: tuple[tuple[float, float], ...] | None = None  # 4 corners, clockwise from top-left


# --------------------------------------------------------------------------- parsing


def _number(value: Any, where: str, column: str) -> float:
    try:
        v = float(str(value).strip()) if not isinstance(value, (int, float)) else float(value)
    except (TypeError, ValueError):
        raise CropError(f"{where}, column {column!r}: not a number: {value!r}") from None
    if not math.isfinite(v):
        raise CropError(f"{where}, column {column!r}: not a finite number: {value!r}")
    return v


def _finish(where: str, image: Any, text: Any, country: Any, rows: Any,
            old_rows: Any = None) -> tuple[str, str, str, int]:
    if not isinstance(image, str) or not image.strip():
        raise CropError(f"{where}, column 'image': missing or empty image path")
    if not isinstance(text, str):
        raise CropError(f"{where}, column 'text': missing label")
    norm = normalize_plate_text(text)
    if not norm:
        raise CropError(f"{where}, column 'text': empty label")
    try:
        c = normalize_country(None if country is None else str(country))
    except ValueError as e:
        raise CropError(f"{where}, column 'country': {e}") from None
    try:
        n = rows_of(rows, old_rows)
    except ValueError as e:
        raise CropError(f"{where}, {e}") from None
    return image.strip(), norm, c, n


def _check_box(where: str, box: tuple[float, float, float, float]) -> None:
    if box[2] <= 0 or box[3] <= 0:
        raise CropError(f"{where}: box width and height must be positive, got w={box[2]}, h={box[3]}")


def _check_points(where: str, pts: tuple[tuple[float, float], ...]) -> None:
    a = np.array(pts, np.float64)
    # Shoelace area: positive for clockwise order in image coordinates (y down).
    area = 0.5 * sum(a[i, 0] * a[(i + 1) % 4, 1] - a[(i + 1) % 4, 0] * a[i, 1] for i in range(4))
    if abs(area) < 1.0:
        raise CropError(f"{where}: the four corner points enclose no area: {pts}")
    if area < 0:
        raise CropError(
            f"{where}: corner points are counter-clockwise; expected clockwise from top-left: {pts}"
        )


def parse_csv_annotations(path: Path) -> list[PlateAnn]:
    """Plates of a CSV annotation file (see the module docstring)."""
    out: list[PlateAnn] = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise CropError(f"{path}: empty annotation file") from None
        cols = [h.strip().lower() for h in header]
        box_cols = ("x", "y", "w", "h")
        pt_cols = ("x1", "y1", "x2", "y2", "x3", "y3", "x4", "y4")
        for required in ("image", "text"):
            if required not in cols:
                raise CropError(f"{path}, line 1 (header): missing column {required!r} (found: {', '.join(cols)})")
        if all(c in cols for c in pt_cols):
            geo = pt_cols
        elif all(c in cols for c in box_cols):
            geo = box_cols
        else:
            raise CropError(
                f"{path}, line 1 (header): need columns x,y,w,h (box) or x1,y1,...,x4,y4 (corners); "
                f"found: {', '.join(cols)}"
            )
        idx = {c: cols.index(c) for c in cols if c}
        row_no = 0
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            row_no += 1
            where = f"{path}, line {reader.line_num} (data row {row_no})"

            def cell(name: str) -> str | None:
                i = idx.get(name)
                return row[i] if i is not None and i < len(row) else None

            image, text, country, rows = _finish(where, cell("image"), cell("text") or "", cell("country"),
                                                 cell("rows"), cell(OLD_ROWS_COLUMN))
            vals = []
            for c in geo:
                v = cell(c)
                if v is None or not v.strip():
                    raise CropError(f"{where}, column {c!r}: empty")
                vals.append(_number(v, where, c))
            if geo == box_cols:
                box = tuple(vals)
                _check_box(where, box)
                out.append(PlateAnn(where, image, text, country, rows, box=box))
            else:
                pts = tuple((vals[i], vals[i + 1]) for i in range(0, 8, 2))
                _check_points(where, pts)
                out.append(PlateAnn(where, image, text, country, rows, points=pts))
    return out


def parse_json_annotations(path: Path) -> list[PlateAnn]:
    """Plates of a JSON annotation file (see the module docstring)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise CropError(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    if isinstance(data, dict) and isinstance(data.get("images"), list):
        data = data["images"]
    if not isinstance(data, list):
        raise CropError(f"{path}: expected a list of photos (or {{\"images\": [...]}}), got {type(data).__name__}")
    out: list[PlateAnn] = []
    for i, entry in enumerate(data, 1):
        where_e = f"{path}, entry {i}"
        if not isinstance(entry, dict):
            raise CropError(f"{where_e}: expected an object with 'image' and 'plates'")
        image = entry.get("image")
        if isinstance(image, str):
            where_e += f" (image {image!r})"
        plates = entry.get("plates")
        if not isinstance(plates, list):
            raise CropError(f"{where_e}, field 'plates': missing or not a list")
        for j, plate in enumerate(plates, 1):
            where = f"{where_e}, plate {j}"
            if not isinstance(plate, dict):
                raise CropError(f"{where}: expected an object with 'text' and 'box' or 'points'")
            country = plate.get("country", entry.get("country"))
            rows = plate.get("rows", entry.get("rows"))
            old_rows = plate.get(OLD_ROWS_COLUMN, entry.get(OLD_ROWS_COLUMN))
            img, text, c, n = _finish(where, image, plate.get("text"), country, rows, old_rows)
            if "points" in plate:
                pts = plate["points"]
                if not (isinstance(pts, list) and len(pts) == 4 and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pts)):
                    raise CropError(f"{where}, field 'points': expected 4 [x, y] pairs, got {pts!r}")
                pts_t = tuple((_number(p[0], where, "points"), _number(p[1], where, "points")) for p in pts)
                _check_points(where, pts_t)
                out.append(PlateAnn(where, img, text, c, n, points=pts_t))
            elif "box" in plate:
                box = plate["box"]
                if not (isinstance(box, (list, tuple)) and len(box) == 4):
                    raise CropError(f"{where}, field 'box': expected [x, y, w, h], got {box!r}")
                box_t = tuple(_number(v, where, "box") for v in box)
                _check_box(where, box_t)
                out.append(PlateAnn(where, img, text, c, n, box=box_t))
            else:
                raise CropError(f"{where}: needs 'box' [x, y, w, h] or 'points' [[x, y] x 4]")
    return out


def parse_annotations(path: str | os.PathLike) -> list[PlateAnn]:
    path = Path(path)
    if not path.is_file():
        raise CropError(f"{path}: annotation file not found")
    ext = path.suffix.lower()
    if ext == ".json":
        return parse_json_annotations(path)
    if ext == ".csv":
        return parse_csv_annotations(path)
    raise CropError(f"{path}: unknown annotation format {ext!r}; expected .json or .csv")


# --------------------------------------------------------------------------- cutting


def cut_box(img: np.ndarray, box: tuple[float, float, float, float], margin: float) -> np.ndarray:
    """Axis-aligned crop of ``box`` (x, y, w, h) grown by ``margin`` x its size, clipped to the image."""
    x, y, w, h = box
    H, W = img.shape[:2]
    x0, y0 = math.floor(x - margin * w), math.floor(y - margin * h)
    x1, y1 = math.ceil(x + w + margin * w), math.ceil(y + h + margin * h)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise ValueError(f"box {list(box)} lies outside the {W}x{H} photo")
    return img[y0:y1, x0:x1].copy()


def cut_quad(img: np.ndarray, points: tuple[tuple[float, float], ...], margin: float) -> np.ndarray:
    """Perspective-rectified crop of a quad (4 corners clockwise from top-left) with a margin."""
    p = np.array(points, np.float32)
    H, W = img.shape[:2]
    if p[:, 0].max() < 0 or p[:, 1].max() < 0 or p[:, 0].min() > W or p[:, 1].min() > H:
        raise ValueError(f"corner points {p.tolist()} lie outside the {W}x{H} photo")
    qw = max(np.linalg.norm(p[1] - p[0]), np.linalg.norm(p[2] - p[3]))
    qh = max(np.linalg.norm(p[3] - p[0]), np.linalg.norm(p[2] - p[1]))
    w, h = max(1, round(qw)), max(1, round(qh))
    mx, my = margin * w, margin * h
    dst = np.array([[mx, my], [mx + w, my], [mx + w, my + h], [mx, my + h]], np.float32)
    out_w, out_h = max(1, round(w + 2 * mx)), max(1, round(h + 2 * my))
    M = cv2.getPerspectiveTransform(p, dst)
    return cv2.warpPerspective(img, M, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def resize_to_height(img: np.ndarray, height: int) -> np.ndarray:
    if not height or img.shape[0] == height:
        return img
    h, w = img.shape[:2]
    new_w = max(1, round(w * height / h))
    interp = cv2.INTER_AREA if height < h else cv2.INTER_CUBIC
    return cv2.resize(img, (new_w, height), interpolation=interp)


def _crop_photo(task: tuple[str, list[tuple[int, PlateAnn]], str, float, int]) -> list[tuple[str, str, str, int]]:
    """Worker: cut all plates of one photo; returns label rows. Raises CropError naming the row and photo."""
    photo, plates, images_out, margin, height = task
    try:
        img = read_image_rgb(photo)
    except ImageReadError as e:
        raise CropError(f"{plates[0][1].where}: {e}") from None
    rows = []
    for index, ann in plates:
        try:
            crop = cut_quad(img, ann.points, margin) if ann.points is not None else cut_box(img, ann.box, margin)
        except ValueError as e:
            raise CropError(f"{ann.where}: {e} (photo {photo})") from None
        crop = resize_to_height(crop, height)
        name = f"{index:06d}_{ann.text}.png" if re.fullmatch(r"[A-Z0-9]+", ann.text) else f"{index:06d}.png"
        ok, buf = cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        if not ok:
            raise CropError(f"{ann.where}: cannot encode the crop of {photo}")
        buf.tofile(os.path.join(images_out, name))
        rows.append((f"images/{name}", ann.text, ann.country, ann.rows))
    return rows


# --------------------------------------------------------------------------- cache


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _manifest_for(images_dir: Path, annotations: Path, margin: float, height: int) -> dict[str, Any]:
    return {
        "version": CACHE_VERSION,
        "annotations": str(annotations.resolve()),
        "annotations_sha256": _sha256(annotations),
        "images_dir": str(images_dir.resolve()),
        "margin": margin,
        "height": height,
    }


def cache_is_complete(out_dir: Path, expected: dict[str, Any]) -> bool:
    """True if ``out_dir`` holds a finished cache built from the same inputs and settings."""
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    keys = ("version", "annotations_sha256", "images_dir", "margin", "height")
    if any(manifest.get(k) != expected[k] for k in keys):
        return False
    if not (out_dir / LABELS).is_file():
        return False
    try:
        present = set(os.listdir(out_dir / "images"))
    except OSError:
        return False
    return len(present) >= int(manifest.get("count", -1)) and all(
        f.split("/", 1)[1] in present for f in manifest.get("files", [])
    )


def build_crop_cache(
    images_dir: str | os.PathLike,
    annotations: str | os.PathLike,
    out_dir: str | os.PathLike,
    workers: int = 0,
    margin: float = 0.05,
    height: int = 64,
    force: bool = False,
    progress: bool = False,
) -> Path:
    """Cut the plates of ``annotations`` out of the photos in ``images_dir`` into ``out_dir`` (format a).

    ``workers``: processes (0 = os.cpu_count(), 1 = in this process). Returns
    ``out_dir``. Skips the work if ``out_dir`` already holds a complete cache of
    the same inputs (unless ``force``). Raises :class:`CropError` naming the
    annotation row and photo for bad rows, missing or unreadable photos.
    """
    images_dir, annotations, out_dir = Path(images_dir), Path(annotations), Path(out_dir)
    if not 0 <= margin < 1:
        raise ValueError(f"margin must be in [0, 1), got {margin}")
    if height < 0:
        raise ValueError(f"height must be >= 0, got {height}")
    if not images_dir.is_dir():
        raise CropError(f"{images_dir}: photo folder not found")
    expected = _manifest_for(images_dir, annotations, margin, height) if annotations.is_file() else None
    if expected is None:
        raise CropError(f"{annotations}: annotation file not found")
    if not force and cache_is_complete(out_dir, expected):
        return out_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise CropError(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MANIFEST).exists():
        raise CropError(f"{out_dir}: folder exists, is not empty and is not a crop cache; choose another --out")

    plates = parse_annotations(annotations)
    if not plates:
        raise CropError(f"{annotations}: no plates")
    # Group by photo (each photo is decoded once) and check photos exist before any work.
    by_photo: dict[str, list[tuple[int, PlateAnn]]] = {}
    for i, ann in enumerate(plates):
        photo = os.path.join(images_dir, ann.image)
        by_photo.setdefault(photo, []).append((i, ann))
    for photo, items in by_photo.items():
        if not os.path.isfile(photo):
            raise CropError(f"{items[0][1].where}: photo not found: {photo}")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        (tmp / "images").mkdir()
        tasks = [(photo, items, str(tmp / "images"), margin, height) for photo, items in by_photo.items()]
        n_workers = workers or (os.cpu_count() or 1)
        n_workers = max(1, min(n_workers, len(tasks)))
        rows: list[tuple[str, str, str, int]] = []
        t0 = time.time()
        if n_workers == 1:
            results = map(_crop_photo, tasks)
            for k, r in enumerate(results, 1):
                rows.extend(r)
                if progress and k % 500 == 0:
                    print(f"  {k}/{len(tasks)} photos", file=sys.stderr)
        else:
            chunk = max(1, min(64, len(tasks) // (n_workers * 8)))
            with ProcessPoolExecutor(n_workers) as ex:
                for k, r in enumerate(ex.map(_crop_photo, tasks, chunksize=chunk), 1):
                    rows.extend(r)
                    if progress and k % 500 == 0:
                        print(f"  {k}/{len(tasks)} photos", file=sys.stderr)
        rows.sort()
        with open(tmp / LABELS, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["filename", "text", "country", "rows"])
            w.writerows(rows)
        manifest = {**expected, "count": len(rows), "files": [r[0] for r in rows],
                    "seconds": round(time.time() - t0, 2)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        # Swap into place: the old cache (if any) is moved aside first, then removed.
        swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m data.crops", description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", required=True, help="folder of full photos")
    ap.add_argument("--annotations", required=True, help="annotation file (.json or .csv)")
    ap.add_argument("--out", required=True, help="cache folder to write (format a)")
    ap.add_argument("--workers", type=int, default=0, help="processes (0 = all cores)")
    ap.add_argument("--margin", type=float, default=0.05, help="margin around each plate, fraction of its size")
    ap.add_argument("--height", type=int, default=64, help="crop height in pixels (0 = keep)")
    ap.add_argument("--force", action="store_true", help="rebuild even if the cache is complete")
    args = ap.parse_args(argv)
    t0 = time.time()
    try:
        out = Path(args.out)
        expected_skip = False
        if not args.force and Path(args.annotations).is_file() and Path(args.images).is_dir():
            expected_skip = cache_is_complete(
                out, _manifest_for(Path(args.images), Path(args.annotations), args.margin, args.height)
            )
        build_crop_cache(args.images, args.annotations, out, args.workers, args.margin, args.height,
                         force=args.force, progress=True)
    except CropError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    n = json.loads((out / MANIFEST).read_text())["count"]
    verb = "up to date" if expected_skip else f"built in {time.time() - t0:.1f}s"
    print(f"{out}: {n} crops ({verb})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
