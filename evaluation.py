"""Run a model over an evaluation loader and score it: shared by training, val.py and compare tools."""

from __future__ import annotations

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from metrics import Equivalences, PlateMetrics, gather_eval_batch


@torch.no_grad()
def evaluate(model, loader, accelerator: Accelerator, desc: str = "eval",
             equivalences: Equivalences | None = None) -> dict:
    """Metrics over the whole loader; with several processes every sample counts once.

    ``model`` may be wrapped by ``accelerator.prepare``; ``loader`` should be
    prepared too when more than one process runs.
    """
    net = accelerator.unwrap_model(model)
    was_training = model.training
    model.eval()
    metrics = PlateMetrics(equivalences=equivalences)
    for batch in tqdm(loader, desc=desc, leave=False, disable=not accelerator.is_local_main_process):
        images = batch["images"].to(accelerator.device)
        preds = net.decode(model(images))
        # Models without a head predict None: PlateMetrics skips those entries.
        gathered = gather_eval_batch(accelerator, [p.text for p in preds], batch["texts"],
                                     batch["countries"], batch["lines"].tolist(),
                                     [p.country for p in preds], [p.lines for p in preds])
        metrics.update(*gathered)
    model.train(was_training)
    return metrics.compute()
