"""Throughput of the synthetic training input pipeline on ONE core.

    python benchmarks/data_pipeline.py [--config configs/realism_attn.yaml] [--height 64 --width 128]
        [--seconds 3] [--batch-size 64] [--profile] [--bank-uses N]

The input size is the config's ``data.image_height`` x ``data.image_width`` (default config:
configs/crnn.yaml) unless --height/--width are given; the realism and camera effects, the
two-row share, the countries and the plate bank (``data.synth_bank_uses``) are the config's.
Prints samples/s for: render alone (SyntheticPlateGenerator), render + train transform
(augment, resize, to tensor), the same through a DataLoader with num_workers=0 and 1 (batches
collated with collate_plates), and last the figure that counts, the training stream itself
(``SyntheticPlateDataset``'s iterator: render + effects + augmentation + tensor, as training
sees it), as ``stream: N samples/s per core``. ``--profile`` adds the time per stage (render
stages under cProfile, so inflated but in proportion; each augmentation step timed alone).
Torch and OpenCV are limited to one thread (also in the worker). Rates are per second of this
process's CPU time (per core, so other jobs on the machine change them less), except the
DataLoader with a worker process, per second of wall time. Other processes still share caches
and cores: run it twice and take the better figures.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import argparse
import cProfile
import dataclasses
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from configs import ConfigError, load_config  # noqa: E402
from data.datasets import SyntheticPlateDataset, collate_plates  # noqa: E402
from data.transforms import spec_transform, to_tensor  # noqa: E402
from training.data import input_spec  # noqa: E402

DEFAULT_CONFIG = "configs/crnn.yaml"

# Render stages for --profile: (label, file the function is in, function name); cumulative
# times of these functions under cProfile (nested ones are inside their parents' figures).
RENDER_STAGES = (
    ("text (format, characters)", "data/formats.py", "generate_raw"),
    ("plate: layout + glyphs + decor", "data/synth/render.py", "render_with_box"),
    ("  glyph rows (text_into)", "data/synth/render.py", "text_into"),
    ("  glyph masks drawn (once per font/char)", "data/synth/fonts.py", "glyph"),
    ("  decor tiles built (cached)", "data/synth/render.py", "_tile"),
    ("  plate effects (all below)", "data/synth/render.py", "_plate_effects"),
    ("    us_scenes", "data/synth/effects.py", "us_scene"),
    ("    gap icon / tab", "data/synth/effects.py", "gap_icon"),
    ("    gradient", "data/synth/effects.py", "gradient"),
    ("    emboss", "data/synth/effects.py", "emboss"),
    ("    screws", "data/synth/effects.py", "screws"),
    ("    stickers", "data/synth/effects.py", "sticker"),
    ("    captions (small_text, stickers, frames)", "data/synth/render.py", "put_caption"),
    ("    dirt", "data/synth/effects.py", "dirt"),
    ("    glare", "data/synth/effects.py", "glare"),
    ("surround + frame (mount)", "data/synth/effects.py", "mount"),
)


def one_thread(_worker_id: int | None = None) -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def rate(fn, seconds: float, per_call: int = 1, warmup: int = 20, cpu: bool = True) -> float:
    """Calls of ``fn`` (times ``per_call``) per second for ``seconds`` of wall time: per second of
    this process's CPU time when ``cpu`` (what one core does, whatever else the machine runs),
    else per second of wall time (a loader whose work runs in another process)."""
    clock = time.process_time if cpu else time.perf_counter
    for _ in range(warmup):
        fn()
    n, t0, c0 = 0, time.perf_counter(), clock()
    while time.perf_counter() - t0 < seconds:
        for _ in range(10):
            fn()
        n += 10 * per_call
    return n / (clock() - c0)


def profile_render(gen, n: int) -> list[tuple[str, float]]:
    """(stage, microseconds per plate under cProfile) for RENDER_STAGES, and the whole render."""
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    for _ in range(n):
        gen()
    prof.disable()
    stats = pstats.Stats(prof).stats  # {(file, line, name): (cc, nc, tottime, cumtime, callers)}
    total = sum(v[2] for v in stats.values())
    out = [("render, all (profiled)", 1e6 * total / n)]
    for label, file, name in RENDER_STAGES:
        cum = sum(v[3] for (f, _, fn), v in stats.items() if fn == name and f.endswith(file))
        out.append((label, 1e6 * cum / n))
    return out


def _op_name(op) -> str:
    inner = getattr(op, "transforms", None)
    if inner:
        return f"{type(op).__name__}({'|'.join(type(t).__name__ for t in inner)})"
    return type(op).__name__


def profile_transform(tf, images: list, seconds_cap: float = 30.0) -> list[tuple[str, float]]:
    """(step, microseconds per sample) of each top-level step of the train transform, and to_tensor."""
    ops = list(tf.compose.transforms)
    spent = {id(op): 0.0 for op in ops}
    originals = {}
    for cls in {type(op) for op in ops}:
        orig = cls.__call__
        originals[cls] = orig

        def timed(self, *a, _orig=orig, **k):
            t = time.process_time()
            r = _orig(self, *a, **k)
            if id(self) in spent:
                spent[id(self)] += time.process_time() - t
            return r

        cls.__call__ = timed
    try:
        outs, t0 = [], time.perf_counter()
        for img in images:
            outs.append(tf.augment(img))
            if time.perf_counter() - t0 > seconds_cap:
                break
    finally:
        for cls, orig in originals.items():
            cls.__call__ = orig
    n = len(outs)
    rows = [(f"aug: {_op_name(op)} (p={op.p:g})", 1e6 * spent[id(op)] / n) for op in ops]
    t = time.process_time()
    for o in outs:
        to_tensor(o)
    rows.append(("to tensor", 1e6 * (time.process_time() - t) / n))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=DEFAULT_CONFIG,
                    help="input size, effects, countries, two-row share and plate bank from this config")
    ap.add_argument("--height", type=int, default=None, help="input height (default: data.image_height)")
    ap.add_argument("--width", type=int, default=None, help="input width (default: data.image_width)")
    ap.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=1000,
                    help="samples drawn before the render and stream figures (the glyph and tile caches fill)")
    ap.add_argument("--profile", action="store_true", help="also print the time per stage")
    ap.add_argument("--bank-uses", type=int, default=None,
                    help="plate bank: each rendered plate is drawn this many times (default: data.synth_bank_uses)")
    args = ap.parse_args(argv)
    one_thread()

    from data.synth import SyntheticPlateGenerator

    try:
        dc = load_config(path=args.config).data
        if args.bank_uses is not None:
            dc = dataclasses.replace(dc, synth_bank_uses=args.bank_uses)
    except ConfigError as e:
        ap.error(str(e))
    height = args.height or dc.image_height
    width = args.width or dc.image_width
    spec = dataclasses.replace(input_spec(dc, training=True), height=height, width=width)  # as training feeds it
    effects, camera = dc.effects, dc.camera
    bank = dc.bank
    gen_kw = dict(countries=dc.synth_countries, two_row_prob=dc.train_two_row_prob, effects=effects,
                  country_weights=dc.synth_country_weights)

    def dataset() -> SyntheticPlateDataset:
        return SyntheticPlateDataset(spec_transform(spec, "train", camera),
                                     seed=args.seed, bank=bank, **gen_kw)

    gen = SyntheticPlateGenerator(seed=args.seed, **gen_kw)
    tf = spec_transform(spec, "train", camera)
    tf.set_seed(args.seed)
    print(f"{args.config} (effects {'on' if effects.any or camera else 'off'}"
          f"{f', plate bank: each plate drawn {bank.uses}x' if bank.on else ''}); "
          f"input {height}x{width}, one core (torch threads {torch.get_num_threads()}, "
          f"cv2 threads {cv2.getNumThreads()}), {args.seconds:.0f}s per figure")

    results = {}
    results["render"] = rate(gen, args.seconds, warmup=args.warmup)
    results["render + train transform"] = rate(lambda: tf(gen().image), args.seconds)

    for workers in (0, 1):
        loader = DataLoader(dataset(), batch_size=args.batch_size, num_workers=workers, collate_fn=collate_plates,
                            worker_init_fn=one_thread if workers else None,
                            prefetch_factor=4 if workers else None)
        it = iter(loader)
        results[f"DataLoader num_workers={workers}"] = rate(lambda: next(it), args.seconds, per_call=args.batch_size,
                                                            warmup=2, cpu=workers == 0)
        del it
    for name, r in results.items():
        print(f"{name:32s} {r:8.0f} samples/s  ({1e6 / r:6.0f} us/sample)")

    if args.profile:
        print("\nper stage, CPU us per sample (render stages under cProfile: inflated, in proportion):")
        stages = profile_render(gen, 1000)
        stages += profile_transform(tf, [gen().image for _ in range(1000)])
        for name, us in stages:
            print(f"  {name:58s} {us:8.0f}")
        print()

    stream = iter(dataset())  # the training stream: SyntheticPlateDataset.__iter__, one core
    print(f"stream: {rate(lambda: next(stream), args.seconds, warmup=args.warmup):.0f} samples/s per core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
