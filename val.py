"""Evaluate a trained model on a labelled dataset: metrics per country and per row count, and an error gallery.

For a model with a country head, also the country accuracy and macro-F1, and
the country confusion matrix as PNG (``--confusion``).

    python val.py --weights runs/crnn/<run>/best --data datasets/synth/test_n2000_seed2_2row0.15
    python val.py --weights runs/crnn/<run>/best --data ../shared/realplates-dev --equiv US:O=0 --out dev.json
    python val.py --weights model.onnx --data DATASET        # an exported model, run by onnxruntime
    python val.py --weights W --data DATASET --formats label:BR,SK   # read under the labelled country's formats
    python val.py --weights weights/attn --joint weights/crnn --data DATASET   # two models reading together
    python val.py --weights weights/attn --tta --data DATASET   # each crop read in five views (--tta pad5,crop5: yours)

The gallery (``--gallery``, default ``<out stem>_errors.png`` next to ``--out``,
else ``errors.png`` in the current folder) shows the worst predictions first:
the wrong ones by confidence, highest first (confidently wrong is worst), then,
if room is left, the right ones by confidence, lowest first. Each tile shows
the crop, its label, the prediction and its confidence.
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
import json
import math
import sys
from pathlib import Path

from accelerate import Accelerator
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from data.datasets import ImageReadError, PlateDataset, collate_plates, load_records, read_image_rgb
from data.transforms import DEFAULT_READING_VIEWS, READING_VIEWS, check_reading_views
from inference import load_joint_model, load_model
from models.plate_formats import check_country
from metrics import PlateMetrics, format_metrics_table, score_texts


def parse_equivalences(items: list[str]) -> dict[str, dict[str, str]]:
    """``US:O=0`` -> {"US": {"O": "0"}}: read O as 0 on US plates when scoring."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        try:
            country, pair = item.split(":", 1)
            src, dst = pair.split("=", 1)
        except ValueError:
            raise SystemExit(f"error: --equiv {item!r} must look like COUNTRY:A=B, e.g. US:O=0") from None
        out.setdefault(country.strip().upper(), {})[src] = dst
    return out


class _Indexed(Dataset):
    """Items of a dataset with their index (to find a sample's file again for the gallery)."""

    def __init__(self, ds: PlateDataset):
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict:
        return {**self.ds[i], "index": i}


def _collate(samples: list[dict]) -> dict:
    batch = collate_plates(samples)
    batch["indices"] = [s["index"] for s in samples]
    return batch


def gallery_order(samples: list[dict]) -> list[dict]:
    """Worst first: wrong predictions by confidence descending, then right ones by confidence ascending."""
    wrong = sorted((s for s in samples if not s["correct"]), key=lambda s: -s["confidence"])
    right = sorted((s for s in samples if s["correct"]), key=lambda s: s["confidence"])
    return wrong + right


def write_gallery(path: str | Path, samples: list[dict], n: int = 40, cols: int = 4, title: str = "") -> Path:
    """A PNG grid of ``samples`` (dicts with path, label, text, confidence, correct, country), in order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = samples[:n]
    rows = max(1, math.ceil(len(shown) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.6, rows * 1.65 + (0.4 if title else 0)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, s in zip(axes.flat, shown):
        try:
            ax.imshow(read_image_rgb(s["path"]), aspect="auto")
        except ImageReadError:
            ax.text(0.5, 0.5, "unreadable", ha="center", va="center")
        color = "#1a7f37" if s["correct"] else "#cf222e"
        country = f" {s['country']}" if s.get("country") and s["country"] != "unknown" else ""
        label, text = s["label"], s["text"]
        # Under a wrong reading of the right length, mark the differing characters (O/0, I/1 look alike).
        marks = ("".join("^" if a != b and b != "*" else " " for a, b in zip(text, label)).rstrip()
                 if not s["correct"] and len(text) == len(label) else "")
        ax.set_title(f"label {label}{country}\npred  {text or '(empty)'}  {s['confidence']:.2f}"
                     + (f"\n      {marks}" if marks else "\n"),
                     fontsize=8.5, color=color, family="monospace", loc="left")
    if not shown:
        axes.flat[0].text(0.5, 0.5, "no samples", ha="center", va="center")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def default_gallery_path(out: str | None, suffix: str = "_errors.png") -> Path:
    if out:
        o = Path(out)
        return o.with_name(f"{o.stem}{suffix}")
    return Path(suffix.lstrip("_"))


def write_confusion_png(path: str | Path, country: dict, title: str = "") -> Path:
    """The ``country`` results' confusion matrix (rows: true, columns: predicted), counts in cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = country["confusion"]["labels"]
    m = np.asarray(country["confusion"]["matrix"], dtype=float)
    recall = m / np.maximum(m.sum(1, keepdims=True), 1)
    size = max(4.0, 0.32 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(recall, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if m[i, j]:
                ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=5,
                        color="white" if recall[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    ax.set_title(f"{title}  accuracy {100 * country['accuracy']:.2f}%, macro-F1 {100 * country['macro_f1']:.2f}% "
                 f"(n={country['n']})", fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return Path(path)


def parse_formats(value: str | None) -> tuple[bool, set[str] | None]:
    """``--formats``: (use the labels' countries, the countries it is limited to or None for all)."""
    if value is None or not value.startswith("label"):
        if value is not None:
            check_country(value, "--formats")
        return False, None
    head, _, rest = value.partition(":")
    if head != "label":
        raise ValueError(f"--formats: expected label, label:CC,CC, auto or a country code, got {value!r}")
    if not rest:
        return True, None
    return True, {check_country(c, "--formats") for c in rest.split(",") if c.strip()}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, help="model folder (config.json + model.safetensors) or .onnx file")
    p.add_argument("--data", required=True, help="dataset: folder with labels.csv, a CSV, or crops named by text")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--equiv", action="append", default=[], metavar="COUNTRY:A=B",
                   help="score character A as B for that country (repeatable), e.g. US:O=0")
    p.add_argument("--skip-invalid", action="store_true", help="skip labels outside the charset instead of failing")
    p.add_argument("--out", help="write the metrics JSON here")
    p.add_argument("--gallery", default=None,
                   help="error gallery PNG (default: <out stem>_errors.png next to --out, else errors.png)")
    p.add_argument("--gallery-n", type=int, default=40, help="tiles in the gallery (default 40)")
    p.add_argument("--no-gallery", action="store_true", help="do not write the gallery")
    p.add_argument("--confusion", default=None,
                   help="country confusion matrix PNG, for models with a country head "
                        "(default: <out stem>_country_confusion.png next to --out, else country_confusion.png "
                        "next to --gallery or in the current folder)")
    p.add_argument("--formats", default=None, metavar="label[:CC,..]|auto|CC",
                   help="read under plate formats (models/plate_formats.py): 'label' uses each sample's labelled "
                        "country (a deployment that knows its country), 'label:BR,SK' only for those labelled "
                        "countries, 'auto' the country the model's head predicts, or one country code for all")
    p.add_argument("--joint", default=None, metavar="WEIGHTS",
                   help="a second model folder reading with --weights (inference.JointPlateReader): where the "
                        "readings differ, the one with the higher summed log-probability under both is kept")
    p.add_argument("--beam", type=int, default=None, metavar="N",
                   help="beam width of the attention model's decoding (1: greedy); default: the model's "
                        "own model.beam_width")
    p.add_argument("--tta", nargs="?", const=",".join(DEFAULT_READING_VIEWS), default=None, metavar="VIEWS",
                   help="read each crop in several views (looser, tighter, contrast-stretched) and keep the "
                        "reading they score highest together; VIEWS: a comma list of "
                        f"{', '.join(READING_VIEWS)} (default: {','.join(DEFAULT_READING_VIEWS)}). Model "
                        "folders only; six to seven times the reading time with the five default views")
    args = p.parse_args(argv)

    accelerator = Accelerator()
    try:
        by_label, only = parse_formats(args.formats)
        country = None if by_label else args.formats
        views = None if args.tta is None else check_reading_views(args.tta, "--tta")
        if args.joint:
            reader = load_joint_model([args.weights, args.joint], device=accelerator.device, country=country,
                                      beam_width=args.beam, views=views or ("none",))
        else:
            reader = load_model(args.weights, device=accelerator.device, country=country, beam_width=args.beam,
                                views=views)
        records = load_records(Path(args.data), reader.charset,
                               on_invalid_label="skip" if args.skip_invalid else "error", allow_mask=True)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    equivalences = parse_equivalences(args.equiv)
    ds = PlateDataset(records, reader.transform)  # the model's own eval preprocessing
    loader = DataLoader(_Indexed(ds), batch_size=args.batch_size, num_workers=args.workers, collate_fn=_collate)
    multi = accelerator.num_processes > 1
    if multi:
        loader = accelerator.prepare(loader)

    metrics = PlateMetrics(equivalences=equivalences)
    samples: list[tuple] = []
    for batch in tqdm(loader, desc="val", leave=False, disable=not accelerator.is_local_main_process):
        countries = None
        if by_label:  # the labelled country where the constraint applies, else none
            countries = [c if only is None or c in only else None for c in batch["countries"]]
        preds = reader.predict_tensor(batch["images"], countries)
        recs = [(pr.text, t, c, int(nl), float(pr.confidence), int(i), pr.country, pr.lines) for pr, t, c, nl, i in
                zip(preds, batch["texts"], batch["countries"], batch["lines"].tolist(), batch["indices"])]
        if multi:  # every sample once: the padding of the last batch is dropped
            recs = accelerator.gather_for_metrics(recs, use_gather_object=True)
        metrics.update(*([r[k] for r in recs] for k in (0, 1, 2, 3, 6, 7)))  # None classes are skipped
        samples.extend(recs)
    results = metrics.compute()
    if not accelerator.is_main_process:
        return results

    print(format_metrics_table(results, title=f"{args.data} ({Path(args.weights)})"))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    if not args.no_gallery:
        exact, _ = score_texts([s[0] for s in samples], [s[1] for s in samples],
                               [s[2] for s in samples], equivalences)
        tiles = [{"path": records[s[5]].path, "label": s[1], "text": s[0], "country": s[2],
                  "confidence": s[4], "correct": e} for s, e in zip(samples, exact)]
        n_wrong = sum(not e for e in exact)
        gallery = Path(args.gallery) if args.gallery else default_gallery_path(args.out)
        write_gallery(gallery, gallery_order(tiles), n=args.gallery_n,
                      title=f"{Path(args.data).name}: {n_wrong} wrong of {len(tiles)} "
                            f"(wrong by confidence, highest first; red = wrong)")
        print(f"error gallery: {gallery} ({min(n_wrong, args.gallery_n)} wrong shown of {n_wrong})")
    if "country" in results:
        if args.confusion:
            path = Path(args.confusion)
        elif args.out or not args.gallery:
            path = default_gallery_path(args.out, "_country_confusion.png")
        else:  # beside the gallery
            path = Path(args.gallery).with_name("country_confusion.png")
        write_confusion_png(path, results["country"], title=f"{Path(args.data).name}: country")
        print(f"country confusion matrix: {path}")
    return results


if __name__ == "__main__":
    main()
