"""The one evaluation loop: read every plate of a labelled loader, score the readings."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn
from accelerate.utils import gather_object
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from data.datasets import PlateDataset, PlateRecord, collate_plates
from metrics import Equivalences, PlateMetrics, ReadingRecord, gather_records
from models.base import PlatePrediction


class Predictor(Protocol):
    """What :func:`evaluate` reads with: ``inference.PlateReader`` and its kin, or :class:`ModelReader`."""

    def predict_tensor(self, images: Any, countries: Sequence[str | None] | None = None,
                       ) -> list[PlatePrediction]: ...


class ModelReader:
    """A bare model (maybe wrapped by ``accelerator.prepare``), read as it is: no plate formats.

    The forward pass goes through ``model`` as given (so a prepared model keeps its
    mixed-precision wrapper), the decoding through the unwrapped model.
    """

    def __init__(self, model: nn.Module, accelerator: Any = None):
        self.model = model
        self.net = accelerator.unwrap_model(model) if accelerator is not None else model
        self.device = accelerator.device if accelerator is not None else next(self.net.parameters()).device

    @torch.no_grad()
    def predict_tensor(self, images: torch.Tensor, countries: Sequence[str | None] | None = None,
                       ) -> list[PlatePrediction]:
        if countries is not None:
            raise ValueError("reading under plate formats needs a PlateReader (inference.load_reader); "
                             "a bare model reads as it is")
        return self.net.decode(self.model(images.to(self.device)))


class IndexedDataset(Dataset):
    """A dataset's items with their index, so that each read plate names its sample (``ReadingRecord.index``)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict:
        return {**self.dataset[i], "index": i}


def collate_indexed(samples: list[dict]) -> dict:
    """``collate_plates`` plus ``"indices"`` (for :class:`IndexedDataset` items) and
    ``"unreadable"`` (the messages of the images a ``skip_unreadable`` dataset could not read,
    which the batch leaves out)."""
    readable = [s for s in samples if s["image"] is not None]
    if readable:
        batch = collate_plates(readable)
    else:  # every image of the batch unreadable: an empty batch (each process still takes part)
        batch = {"images": None, "texts": [], "countries": [], "rows": torch.zeros(0, dtype=torch.long)}
    batch["indices"] = [s["index"] for s in readable]
    batch["unreadable"] = [s["unreadable"] for s in samples if s["image"] is None]
    return batch


@dataclass
class EvalResult:
    metrics: dict[str, Any]  # PlateMetrics.compute()
    records: list[ReadingRecord] | None = None  # every read plate, in loader order (keep_records=True)
    unreadable: list[str] = field(default_factory=list)  # images left out (skip_unreadable), one message each


@torch.no_grad()
def evaluate(
    predictor: Predictor | nn.Module,
    loader: Any,
    accelerator: Any = None,
    *,
    desc: str = "eval",
    equivalences: Equivalences | None = None,
    formats_by_label: bool | Collection[str] = False,
    keep_records: bool = False,
) -> EvalResult:
    """Read every plate of ``loader`` with ``predictor`` and score the readings.

    ``predictor``: anything with ``predict_tensor(images, countries)``: an
    ``inference.PlateReader`` (formats, joint and multi-view reading), or a model
    (``nn.Module``, maybe prepared by ``accelerator``), read by :class:`ModelReader`
    in eval mode and put back in its former mode afterwards.

    ``loader`` yields ``data.datasets.collate_plates`` batches (with ``"indices"``,
    from :func:`collate_indexed`, each record knows its sample). With several
    processes, prepare the loader with ``accelerator``: every sample counts once,
    and every process gets the same result.

    ``formats_by_label``: True reads each plate under the formats of its labelled
    country; a collection of country codes does so only for plates labelled with one
    of them (the others are read freely); False leaves it to the reader's own setting.
    """
    model = predictor if isinstance(predictor, nn.Module) else None
    if model is not None:
        predictor = ModelReader(model, accelerator)
        was_training = model.training
        model.eval()
    multi = accelerator is not None and accelerator.num_processes > 1
    quiet = accelerator is not None and not accelerator.is_local_main_process
    metrics = PlateMetrics(equivalences=equivalences)
    kept: list[ReadingRecord] | None = [] if keep_records else None
    unreadable: list[str] = []
    try:
        for batch in tqdm(loader, desc=desc, leave=False, disable=quiet):
            countries = None
            if formats_by_label is True:
                countries = list(batch["countries"])
            elif formats_by_label is not False:
                countries = [c if c in formats_by_label else None for c in batch["countries"]]
            unreadable.extend(batch.get("unreadable") or [])
            preds = predictor.predict_tensor(batch["images"], countries) if len(batch["texts"]) else []
            indices = batch.get("indices") or [None] * len(preds)
            records = [ReadingRecord(p.text, t, c, int(n), float(p.confidence), p.country, p.rows, i)
                       for p, t, c, n, i in zip(preds, batch["texts"], batch["countries"],
                                                batch["rows"].tolist(), indices)]
            if multi:  # every sample once: the padding of the last batch is dropped
                records = gather_records(accelerator, records)
            metrics.update(records)
            if kept is not None:
                kept.extend(records)
    finally:
        if model is not None:
            model.train(was_training)
    if multi:  # dict.fromkeys: the padding of the last batch may repeat an image
        unreadable = list(dict.fromkeys(gather_object(unreadable)))
    return EvalResult(metrics.compute(), kept, unreadable)


def score_records(reader: Any, records: Sequence[PlateRecord], accelerator: Any = None, *,
                  batch_size: int = 128, workers: int = 0, skip_unreadable: bool = False,
                  **options: Any) -> EvalResult:
    """:func:`evaluate` over labelled records (``data.datasets.load_records``), each read through the
    reader's own eval preprocessing (``reader.transform``); ``options`` as for :func:`evaluate`.

    An unreadable image raises ``ImageReadError`` naming it, or with ``skip_unreadable`` is left
    out of the metrics and listed in ``EvalResult.unreadable``."""
    dataset = PlateDataset(list(records), reader.transform, skip_unreadable=skip_unreadable)
    loader = DataLoader(IndexedDataset(dataset), batch_size=batch_size,
                        num_workers=workers, collate_fn=collate_indexed)
    if accelerator is not None and accelerator.num_processes > 1:
        loader = accelerator.prepare(loader)
    return evaluate(reader, loader, accelerator, **options)
