"""Train a plate reader with Hugging Face Accelerate (the command line of ``training.train``).

    accelerate launch train_accelerate.py --arch crnn [--config FILE] [section.key=value ...]
    python train_accelerate.py --arch crnn train.max_steps=200
    accelerate launch train_accelerate.py --resume runs/crnn/20261123-101500

One process or many (multi-GPU, multi-node, or CPU processes under torchrun):
Accelerate places the model, shards map-style data, syncs gradients and
handles mixed precision and gradient accumulation. Synthetic training data is
generated independently on every process (seeded by rank and worker).

Ctrl-C or SIGTERM stops after the current step with a checkpoint and prints the command that
continues the run (exit status 130 or 143); a second Ctrl-C aborts at once.
"""

from __future__ import annotations

import argparse
import os
import sys

from configs import ConfigError
from training import TrainReport, run_config, train
from training.signals import Interrupted


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", help="model architecture (crnn, ...); default from the config")
    p.add_argument("--config", help="YAML config (default configs/<arch>.yaml)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint")
    p.add_argument("--output-dir", help="run folder (default runs/<arch>/<timestamp>)")
    p.add_argument("--overwrite", action="store_true",
                   help="start again in an --output-dir that holds a run (its files are deleted)")
    p.add_argument("--init-from", metavar="MODEL_DIR",
                   help="fine-tune: start from the weights of a trained model folder (sets train.init_from); "
                        "its model options and input size are the run's; optimiser and schedule start fresh")
    p.add_argument("--mixed-precision", choices=["no", "fp16", "bf16", "auto"],
                   help="overrides train.mixed_precision and Accelerate's launch config")
    p.add_argument("overrides", nargs="*", metavar="section.key=value",
                   help="config overrides, anywhere on the command line (before, between or after options)")
    # Intermixed: overrides between options are all taken (parse_args leaves those after an option's
    # value "unrecognized").
    return p.parse_intermixed_args(argv)


def main(argv: list[str] | None = None) -> TrainReport:
    args = parse_args(argv)
    overrides = list(args.overrides)
    if args.mixed_precision:
        overrides.append(f"train.mixed_precision={args.mixed_precision}")
    cfg, run_dir, init = run_config(args.arch, args.config, overrides, output_dir=args.output_dir,
                                    init_from=args.init_from, resume=args.resume)
    try:
        return train(cfg, run_dir, resume=bool(args.resume), init=init, overwrite=args.overwrite)
    except KeyboardInterrupt as e:  # a second Ctrl-C: what the last checkpoint holds is kept
        if not isinstance(e, Interrupted) and os.environ.get("RANK", "0") == "0":
            print("aborted", file=sys.stderr)
            if run_dir.can_resume():
                processes = int(os.environ.get("WORLD_SIZE", 1))
                print(f"continue from the last checkpoint with:\n  {run_dir.resume_command(processes)}",
                      file=sys.stderr)
        raise


if __name__ == "__main__":
    try:
        main()
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as e:  # the message is printed already: no traceback
        sys.exit(e.exit_code if isinstance(e, Interrupted) else 130)
