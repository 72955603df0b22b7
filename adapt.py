"""Adapt a model to your cameras without labels: self-training on a folder of unlabelled crops.

    python adapt.py --weights weights/crnn --images my_crops --country BR --output-dir runs/adapt/mine

Each round reads every crop, keeps the readings that pass the filters (confidence, the plate
formats of the country, the same text in every view), fine-tunes on them mixed with synthetic
plates, and reads again. The adapted model is RUN/model, an ordinary model folder
(docs/adaptation.md). Trailing KEY=VALUE arguments override the round's training config.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adaptation import MIN_IMAGES, AdaptSettings, adapt
from configs import ConfigError


def parse_args(argv: list[str] | None = None) -> AdaptSettings:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, help="the model folder to adapt")
    p.add_argument("--images", required=True,
                   help=f"folder of unlabelled crops (at least {MIN_IMAGES}); with a labels.csv, its filename "
                        "column lists them and its texts only measure the pseudo-labels' precision")
    p.add_argument("--country", default="auto",
                   help="the plates' country (their formats filter the readings), or auto: the predicted one")
    p.add_argument("--output-dir", help="the run folder (default runs/adapt/<timestamp>)")
    p.add_argument("--check", help="a labelled crops folder or CSV: the model's exact match on it each round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, help="training steps per round (default: the config's train.max_steps)")
    p.add_argument("--min-confidence", type=float, default=AdaptSettings.min_confidence)
    p.add_argument("--views", default=",".join(AdaptSettings.views),
                   help="reading views that must all read the same text (none,stretch,pad5,pad10,crop5)")
    p.add_argument("--joint", metavar="WEIGHTS",
                   help="a second model that reads the crops together with the adapted one, as predict.py "
                        "--joint (a better teacher; it is not trained)")
    p.add_argument("--teacher", metavar="WEIGHTS",
                   help="a model whose readings are the pseudo-labels instead of the adapted model's, e.g. "
                        "the other architecture adapted first (it is not trained; its readings serve every round)")
    p.add_argument("--config", help="the round's training config (default configs/adapt_<arch>.yaml)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier adaptation in --output-dir")
    p.add_argument("overrides", nargs="*", help="KEY=VALUE overrides of the training config")
    a = p.parse_args(argv)
    views = tuple(v.strip() for v in a.views.split(",") if v.strip())
    return AdaptSettings(a.weights, a.images, a.country, a.output_dir, a.check, a.rounds, a.steps,
                         a.min_confidence, views, a.config, a.overrides, a.overwrite, a.joint, a.teacher)


def main(argv: list[str] | None = None) -> Path:
    settings = parse_args(argv)
    try:
        return adapt(settings)
    except (ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
