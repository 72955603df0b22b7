"""The plots of the notebooks that take more than a line of pandas: each returns its Figure."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from data.datasets import DatasetError, read_image_rgb


def image_grid(rows: pd.DataFrame, title: Callable[[pd.Series], str], cols: int = 4,
               tile: tuple[float, float] = (2.6, 1.0), suptitle: str | None = None) -> Figure:
    """Images of ``rows["file"]`` in a grid, each titled ``title(row)``."""
    n = max(1, len(rows))
    nrows = -(-n // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(tile[0] * cols, (tile[1] + 0.45) * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (_, row) in zip(axes.flat, rows.iterrows()):
        try:
            ax.imshow(read_image_rgb(row["file"]))
        except DatasetError:
            ax.text(0.5, 0.5, "unreadable", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title(row), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def grids_by_group(samples: Mapping[str, pd.DataFrame], title: Callable[[pd.Series], str],
                   cols: int = 6) -> Figure:
    """One row of sample images per group (e.g. per country), the group name on the left."""
    groups = list(samples)
    fig, axes = plt.subplots(max(1, len(groups)), cols, figsize=(1.9 * cols, 0.8 * max(1, len(groups))),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, g in enumerate(groups):
        axes[r, 0].text(-0.08, 0.5, g, ha="right", va="center", transform=axes[r, 0].transAxes, fontsize=9)
        for ax, (_, row) in zip(axes[r], samples[g].iterrows()):
            try:
                ax.imshow(read_image_rgb(row["file"]))
            except DatasetError:
                continue
            ax.set_title(title(row), fontsize=6, pad=1)
    fig.tight_layout()
    return fig


def aspect_by_group(sizes: pd.DataFrame, by: str = "country") -> Figure:
    """Box plot of the aspect ratio (width / height) per group, one-row and two-row side by side."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.38 * sizes[by].nunique() + 2), 3.5))
    groups = sorted(sizes[by].unique())
    for k, (rows, colour) in enumerate([(1, "tab:blue"), (2, "tab:orange")]):
        data = [sizes.loc[(sizes[by] == g) & (sizes["rows"] == rows), "aspect"].dropna().to_numpy() for g in groups]
        pos = [i + (k - 0.5) * 0.35 for i, d in enumerate(data) if len(d)]
        data = [d for d in data if len(d)]
        if data:
            bp = ax.boxplot(data, positions=pos, widths=0.3, patch_artist=True, showfliers=False)
            for box in bp["boxes"]:
                box.set_facecolor(colour)
            ax.plot([], [], color=colour, lw=6, label=f"{rows}-row")
    ax.set_xticks(range(len(groups)), groups, rotation=90)
    ax.set_ylabel("aspect (w / h)")
    ax.legend()
    fig.tight_layout()
    return fig


def size_scatter(sizes: pd.DataFrame) -> Figure:
    """Image width against height, one colour per row count, with the aspect histogram beside it."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.5))
    for rows, g in sizes.groupby("rows"):
        a.scatter(g["width"], g["height"], s=6, alpha=0.5, label=f"{rows}-row")
        b.hist(g["aspect"].dropna(), bins=40, alpha=0.6, label=f"{rows}-row")
    a.set(xlabel="width (px)", ylabel="height (px)", title="image sizes")
    b.set(xlabel="aspect (w / h)", ylabel="plates", title="aspect ratios")
    a.legend()
    b.legend()
    fig.tight_layout()
    return fig


def char_frequency_bars(freq: pd.DataFrame) -> Figure:
    """Counts per character; characters outside the charset in red, absent charset ones marked."""
    fig, ax = plt.subplots(figsize=(max(8.0, 0.22 * len(freq)), 3))
    colours = ["tab:blue" if ok else "tab:red" for ok in freq["in_charset"]]
    ax.bar(range(len(freq)), freq["count"], color=colours)
    ax.set_xticks(range(len(freq)), freq.index)
    for i, c in enumerate(freq["count"]):
        if c == 0:
            ax.annotate("0", (i, 0), ha="center", va="bottom", color="tab:red", fontsize=7)
    ax.set(ylabel="occurrences", title="characters (red: outside the charset)")
    fig.tight_layout()
    return fig


def confusion_heatmap(matrix: pd.DataFrame) -> Figure:
    """Counts of true character (rows) read as another (columns)."""
    n = max(1, len(matrix))
    fig, ax = plt.subplots(figsize=(1.2 + 0.42 * n, 1.0 + 0.4 * n))
    if matrix.empty:
        ax.text(0.5, 0.5, "no character errors", ha="center", va="center")
        ax.axis("off")
        return fig
    ax.imshow(matrix.to_numpy(), cmap="Reds")
    ax.set_xticks(range(n), matrix.columns)
    ax.set_yticks(range(n), matrix.index)
    ax.set(xlabel="read as", ylabel="true")
    for (i, j), v in np.ndenumerate(matrix.to_numpy()):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
    fig.tight_layout()
    return fig


def confidence_plots(bins: pd.DataFrame, curve: pd.DataFrame, threshold: float | None, target: float) -> Figure:
    """Accuracy per confidence bin (reliability) and precision/coverage against the threshold."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.5))
    a.plot([0, 1], [0, 1], ls=":", color="grey")
    a.plot(bins["conf_mean"], bins["accuracy"], "o-")
    a.set(xlabel="mean confidence in bin", ylabel="accuracy", title="accuracy against confidence",
          xlim=(0, 1.02), ylim=(-0.02, 1.02))
    b.plot(curve["threshold"], curve["precision"], label="precision")
    b.plot(curve["threshold"], curve["coverage"], label="coverage")
    b.axhline(target, ls=":", color="grey")
    if threshold is not None:
        b.axvline(threshold, color="tab:red", ls="--", label=f"threshold {threshold:.3f}")
    b.set(xlabel="confidence threshold", title=f"accept plates with confidence >= threshold (target {target:g})")
    b.legend()
    fig.tight_layout()
    return fig


def training_curves(train: pd.DataFrame, val: pd.DataFrame) -> Figure:
    """Loss and learning rate by step, and validation exact match and CER."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.5))
    if len(train):
        a.plot(train.index, train["loss"], label="train loss")
        a.set(xlabel="step", ylabel="CTC loss", yscale="log", title="training loss (dotted: learning rate)")
        a2 = a.twinx()
        a2.plot(train.index, train["lr"], color="tab:grey", ls=":", label="lr")
        a2.set_ylabel("learning rate")
    if len(val):
        b.plot(val.index, val["exact_match"], "o-", label="exact match")
        b.plot(val.index, val["cer"], "s-", label="CER")
        b.set(xlabel="step", ylim=(-0.02, 1.02), title="validation")
        b.legend()
    fig.tight_layout()
    return fig


def candidate_bars(table: pd.DataFrame, needs, title: str = "") -> Figure:
    """CTC time steps per candidate against what the labels need, and latencies (log scale).

    ``needs`` is an :class:`analysis.sizing.CTCNeeds`."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 0.45 * len(table) + 1.4), sharey=True)
    ok = table["safe_worst_case"].astype(bool)
    a.barh(table.index, table["seq_len"], color=np.where(ok, "tab:blue", "tab:red"))
    a.axvline(needs.min_steps, color="tab:orange", ls="--", label=f"needed by the labels ({needs.min_steps})")
    a.axvline(needs.worst_case, color="tab:red", ls=":", label=f"2L - 1 ({needs.worst_case})")
    a.set(xlabel="CTC time steps", title=f"sequence length {title} (red: too short for 2L - 1)")
    a.legend(loc="lower right", fontsize=8)
    lat = table.filter(like="latency")
    for k, col in enumerate(lat.columns):
        b.barh(np.arange(len(table)) + (k - (len(lat.columns) - 1) / 2) * 0.35, lat[col], height=0.35, label=col)
    b.set(xscale="log", xlabel="ms per forward pass", title="CPU latency")
    b.legend(fontsize=8)
    fig.tight_layout()
    return fig


def candidates_scatter(table: pd.DataFrame, latency_col: str, metric: str = "exact_match",
                       budget_ms: float | None = None) -> Figure:
    """``metric`` and the final training loss against latency, one labelled point per trained candidate."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    rows = table.dropna(subset=[metric, latency_col])
    for ax, col in zip(axes, [metric, "final_loss"]):
        if col not in rows:
            continue
        ax.scatter(rows[latency_col], rows[col])
        for name, r in rows.iterrows():
            ax.annotate(str(name), (r[latency_col], r[col]), fontsize=8, xytext=(3, 3), textcoords="offset points")
        if budget_ms is not None:
            ax.axvline(budget_ms, ls="--", color="tab:red", label=f"budget {budget_ms:g} ms")
            ax.legend()
        ax.set(xlabel=latency_col, ylabel=col, title=f"short trainings: {col} against latency")
    fig.tight_layout()
    return fig
