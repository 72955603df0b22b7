"""Training as functions: ``train(cfg) -> TrainReport`` and its parts.

    from training import run_config, train
    cfg, run_dir, init = run_config("crnn", overrides=["train.max_steps=200"])
    report = train(cfg, run_dir, init=init)

- ``training.trainer``: :func:`run_config`, :func:`train` (``setup``, ``fit``, ``final_test``)
- ``training.run_dir``: :class:`RunDir`, the run folder's contract (config.yaml, best/, last/, ...)
- ``training.data``: datasets and loaders from the data config, the fixed synthetic val/test sets
- ``training.finetune``: ``train.init_from`` (fine-tuning) and ``train.trainable`` (freezing)
"""

from training.data import ensure_synth_set, synth_set_path
from training.run_dir import RunDir
from training.trainer import TrainReport, run_config, train

__all__ = ["RunDir", "TrainReport", "ensure_synth_set", "run_config", "synth_set_path", "train"]
