"""val.py's pictures: the error gallery (worst readings first) and the country confusion matrix."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from data.datasets import ImageReadError, read_image_rgb
from metrics import Equivalences, ReadingRecord, score_texts


def gallery_tiles(records: Sequence[ReadingRecord], paths: Sequence[str | Path],
                  equivalences: Equivalences | None = None) -> list[dict]:
    """One tile per read plate (``paths[record.index]`` its image), scored as the metrics score it."""
    exact, _ = score_texts([r.text for r in records], [r.label for r in records],
                           [r.country for r in records], equivalences)
    return [{"path": paths[r.index], "label": r.label, "text": r.text, "country": r.country,
             "confidence": r.confidence, "correct": e} for r, e in zip(records, exact)]


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
