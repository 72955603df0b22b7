"""Read the plates in cropped images and write a CSV.

    python predict.py --input crop.jpg
    python predict.py --input crops/ --output preds.csv            # a folder, searched recursively
    python predict.py --input a.png b.png more_crops/               # several images, folders or CSVs
    python predict.py --input datasets/x/labels.csv                 # a dataset CSV (filename[,text] columns)
    python predict.py --input crops/ --weights model.onnx           # run an exported model with onnxruntime
    python predict.py --input crops/ --country BR                   # read under Brazil's plate formats
    python predict.py --input crops/ --country none                 # the model's own reading (default: any,
                                                                    # every country's formats weighed by its head)
    python predict.py --input crops/ --weights weights/attn --joint weights/crnn   # two models reading together
    python predict.py --input crops/ --weights weights/attn --tta   # each crop read in five views

Without --weights the shipped default model (weights/crnn_ppocr) is used. The CSV has
the columns filename,text,confidence,country,country_confidence,rows,error
(rows: the plate's number of text rows; country, country_confidence and rows
are empty for models without a classification head; error names why an image could not be read, and the run
goes on). filename is as given, relative to the input folder, or as written in
the input CSV; with several inputs, each file's path as given (the folder or the CSV's folder
joined with it), so names from two folders stay apart. The output is checked before any reading (its folder is created; an input
file is never overwritten) and rows are written as they are read, so Ctrl-C keeps them.
A progress bar shows on a terminal (off with --quiet).
"""

from __future__ import annotations

import os

if __name__ == "__main__":
    # Run as a command: idle OpenMP threads sleep instead of spinning (set before torch is
    # imported). On a machine whose cores other processes also use, spinning made PyTorch
    # inference up to 13x slower (2 threads, 2 busy cores: 31 instead of 410 plates/s); with free
    # cores it only adds a wake-up latency to each parallel region, which batches do not notice.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import csv
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from data.images import IMAGE_EXTENSIONS, image_files
from inference import Prediction
from inference.csv_output import OutputError, PredictionsCSV, check_output_path
from inference.cli import add_reader_args, reader_from_args
from models.plate_formats import check_country

EXTENSIONS = IMAGE_EXTENSIONS | {".gif", ".ppm", ".pgm", ".pbm", ".pnm", ".jp2"}


class InputError(ValueError):
    pass


def list_inputs(source: str | os.PathLike) -> tuple[list[tuple[str, Path]], dict[str, str] | None]:
    """``([(display filename, path)], labels or None)`` for an image, a folder or a CSV.

    A folder is searched recursively for image files (hidden files and folders
    skipped, sorted); a CSV needs a ``filename`` column (paths relative to the
    CSV's folder) and may have a ``text`` column, returned as labels by display name.
    """
    p = Path(source)
    if not p.exists():
        raise InputError(f"{p}: input not found (expected an image, a folder of images or a CSV)")
    if p.is_dir():
        items = [(Path(f).relative_to(p).as_posix(), Path(f)) for f in image_files(p, EXTENSIONS)]
        if not items:
            raise InputError(f"{p}: no image files found (looked for {', '.join(sorted(EXTENSIONS))}, recursively)")
        return items, None
    if p.suffix.lower() == ".csv":
        return read_input_csv(p)
    return [(str(source), p)], None


def list_all_inputs(sources: list[str]) -> tuple[list[tuple[str, Path]], dict[str, str] | None]:
    """:func:`list_inputs` of each source, in order. With several sources a display name is the
    file's path as given (``crops/a.png``, not ``a.png``), so names from two folders stay apart."""
    if len(sources) == 1:
        return list_inputs(sources[0])
    items: list[tuple[str, Path]] = []
    labels: dict[str, str] | None = None
    for source in sources:
        found, found_labels = list_inputs(source)
        p = Path(source)
        base = p if p.is_dir() else p.parent if p.suffix.lower() == ".csv" else None  # None: an image, as given
        for name, path in found:
            shown = (base / name).as_posix() if base is not None else name
            items.append((shown, path))
            if found_labels is not None and name in found_labels:
                labels = {} if labels is None else labels
                labels[shown] = found_labels[name]
    return items, labels


def read_input_csv(path: Path) -> tuple[list[tuple[str, Path]], dict[str, str] | None]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}: cannot read CSV: {e}") from e
    if not rows:
        raise InputError(f"{path}: empty CSV, expected a header with a filename column")
    cols = [c.strip().lower() for c in rows[0]]
    if "filename" not in cols:
        raise InputError(f"{path}, line 1 (header): no 'filename' column (found: {', '.join(cols)})")
    i_file = cols.index("filename")
    i_text = cols.index("text") if "text" in cols else None
    items, labels = [], {} if i_text is not None else None
    for row in rows[1:]:
        if not row or not any(c.strip() for c in row):
            continue
        name = row[i_file].strip() if i_file < len(row) else ""
        if not name:
            continue
        items.append((name, path.parent / name))
        if labels is not None:
            labels[name] = row[i_text] if i_text < len(row) else ""
    if not items:
        raise InputError(f"{path}: no rows with a filename")
    return items, labels


def _short(s: str, n: int) -> str:
    return s if len(s) <= n else "..." + s[-(n - 3):]


def format_table(preds: list[Prediction], limit: int = 10) -> str:
    shown = preds[:limit]
    wf = max([8] + [len(_short(p.filename or "", 40)) for p in shown])
    has_head = any(p.country is not None or p.rows is not None for p in shown)
    head = f"{'filename':<{wf}}  {'text':<12} {'conf':>6}" + ("  country  rows" if has_head else "")
    lines = [head, "-" * len(head)]
    for p in shown:
        name = _short(p.filename or "", 40)
        if p.error:
            err = p.error if len(p.error) <= 60 else p.error[:57] + "..."
            lines.append(f"{name:<{wf}}  error: {err}")
            continue
        row = f"{name:<{wf}}  {p.text:<12} {p.confidence:6.3f}"
        if has_head:
            cc = "" if p.country_confidence is None else f" {p.country_confidence:.2f}"
            row += f"  {(p.country or '') + cc:<7}  {'' if p.rows is None else p.rows}"
        lines.append(row)
    if len(preds) > limit:
        lines.append(f"... {len(preds) - limit} more")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", required=True, nargs="+", metavar="INPUT",
                    help="images, folders of images (recursive) or CSVs with a filename column (one or several)")
    ap.add_argument("--weights", default=None,
                    help="model folder (config.json + model.safetensors) or .onnx file; default: weights/crnn_ppocr")
    ap.add_argument("--output", default="preds.csv",
                    help="output CSV: filename,text,confidence,country,country_confidence,rows,error "
                         "(default: preds.csv)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="cpu", help="PyTorch device: cpu, cuda, auto (ignored for .onnx)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (torch and onnxruntime)")
    ap.add_argument("--show", type=int, default=10, help="rows to print (0: none)")
    ap.add_argument("--quiet", action="store_true",
                    help="no progress bar (it shows only when stderr is a terminal)")
    ap.add_argument("--country", default="any",
                    help="plate formats to read under, which fixes look-alike characters (1/I, 0/O) in "
                         "positions a format fixes as digits or letters: 'any' (default) weighs every "
                         "country's formats by the model's country head and keeps a reading of no format "
                         "unless a valid one is far likelier; a code (e.g. BR) reads every plate under that "
                         "country's; 'auto' under the head's top country's; 'none' reads as the model does")
    add_reader_args(ap)
    args = ap.parse_args(argv)
    if args.batch_size < 1:
        ap.error("--batch-size must be >= 1")
    if args.country is not None:
        try:
            check_country(args.country, "--country")
        except ValueError as e:
            ap.error(str(e))

    try:
        items, labels = list_all_inputs(args.input)
        # Before any reading: a bad --output fails at once, and never replaces an input.
        out = check_output_path(args.output, [Path(s) for s in args.input] + [path for _, path in items])
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        reader = reader_from_args(args, args.device, country=args.country, batch_size=args.batch_size,
                                  threads=args.threads)
        csv_out = PredictionsCSV(out)
    except OutputError as e:
        print(f"error: --output {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # InputError, WeightsError, a device this machine lacks
        print(f"error: {e}", file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    preds: list[Prediction] = []
    chunk = max(args.batch_size, 256)  # read and run in chunks: memory stays flat for big folders
    bar = tqdm(total=len(items), unit="img", desc="reading", leave=False,
               disable=args.quiet or not sys.stderr.isatty())
    with csv_out, bar:
        try:
            for start in range(0, len(items), chunk):
                part = items[start:start + chunk]
                done = reader.predict([path for _, path in part])
                for (name, _), p in zip(part, done):
                    p.filename = name
                csv_out.write(done)  # flushed: an interrupted run keeps every row read so far
                preds.extend(done)
                bar.update(len(part))
        except KeyboardInterrupt:
            bar.close()
            print(f"interrupted: {csv_out.rows} of {len(items)} images read, their rows written to {out}",
                  file=sys.stderr)
            return 130
    dt = time.perf_counter() - t0

    n_err = sum(1 for p in preds if p.error)
    if args.show > 0:
        print(format_table(preds, args.show))
    print(f"{len(preds)} images, {n_err} unreadable, {dt:.2f} s ({len(preds) / max(dt, 1e-9):.0f} images/s, "
          f"{reader.backend}, {reader.arch} {reader.input_size}) -> {out}")
    if labels:
        from metrics import score_texts

        scored = [(p.text, labels[p.filename]) for p in preds if not p.error and labels.get(p.filename, "").strip()]
        if scored:
            exact, dist = score_texts([s[0] for s in scored], [s[1] for s in scored])
            print(f"against the CSV's text column: exact match {100.0 * sum(exact) / len(exact):.2f}% "
                  f"({sum(exact)}/{len(exact)}), mean edit distance {sum(dist) / len(dist):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
