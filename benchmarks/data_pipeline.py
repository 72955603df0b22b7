"""Throughput of the synthetic training input pipeline on ONE core.

    python benchmarks/data_pipeline.py [--height 32 --width 128] [--seconds 3] [--batch-size 64]

Prints samples/s for: render alone (SyntheticPlateGenerator), render + train
transform (augment, resize, to tensor), and the same through a DataLoader with
num_workers=0 and num_workers=1 (batches collated with collate_plates). Torch
and OpenCV are limited to one thread (also in the worker). Other processes on
the machine share the cores: run it twice and take the better figures.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from data.datasets import SyntheticPlateDataset, collate_plates  # noqa: E402
from data.transforms import build_transform  # noqa: E402


def one_thread(_worker_id: int | None = None) -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def rate(fn, seconds: float, per_call: int = 1, warmup: int = 20) -> float:
    for _ in range(warmup):
        fn()
    n, t0 = 0, time.perf_counter()
    while (dt := time.perf_counter() - t0) < seconds:
        for _ in range(10):
            fn()
        n += 10 * per_call
    return n / dt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--height", type=int, default=32)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", default=None,
                    help="use this config's data.synth_effects and data.camera_effects (e.g. configs/realism_crnn.yaml)")
    args = ap.parse_args(argv)
    one_thread()

    from data.synth import SyntheticPlateGenerator

    effects, camera = None, None
    if args.config:
        from configs import load_config

        data_cfg = load_config(path=args.config).data
        effects, camera = data_cfg.effects, data_cfg.camera
    gen = SyntheticPlateGenerator(seed=args.seed, effects=effects)
    tf = build_transform("train", args.height, args.width, camera_effects=camera)
    tf.set_seed(args.seed)
    print(f"{args.config or 'no realism or camera effects'}; "
          f"input {args.height}x{args.width}, one core (torch threads {torch.get_num_threads()}, "
          f"cv2 threads {cv2.getNumThreads()}), {args.seconds:.0f}s per figure")

    results = {}
    results["render"] = rate(gen, args.seconds)
    results["render + train transform"] = rate(lambda: tf(gen().image), args.seconds)

    for workers in (0, 1):
        ds = SyntheticPlateDataset(build_transform("train", args.height, args.width, camera_effects=camera),
                                   seed=args.seed, effects=effects)
        loader = DataLoader(ds, batch_size=args.batch_size, num_workers=workers, collate_fn=collate_plates,
                            worker_init_fn=one_thread if workers else None,
                            prefetch_factor=4 if workers else None)
        it = iter(loader)
        results[f"DataLoader num_workers={workers}"] = rate(lambda: next(it), args.seconds,
                                                            per_call=args.batch_size, warmup=2)
        del it
    for name, r in results.items():
        print(f"{name:32s} {r:8.0f} samples/s  ({1e6 / r:6.0f} us/sample)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
