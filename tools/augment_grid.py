"""A grid of augmented samples with their labels: what a pipeline (and a config's effects) does to plates.

    python -m tools.augment_grid --out grid.png [--pipeline train] [--n 32] [--height 32 --width 128]
        [--data DATASET] [--seed 0] [--config configs/crnn.yaml] [--effect NAME]

Samples are synthetic by default. ``--config`` applies a config's realism effects
(``data.synth_effects``) and camera effects (``data.camera_effects``); ``--effect`` shows one
effect (or group) always on, all others off (on the countries it applies to: US scenes and
state formats on US plates); ``--effect all`` shows every effect, one row each, its name on
every tile.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import random

import cv2
import numpy as np

from configs import load_config
from data.datasets import load_records, read_image_rgb
from data.synth import SyntheticPlateGenerator
from data.synth.effects import EFFECT_COUNTRIES, SynthEffects
from data.transforms import CAMERA_EFFECTS, PIPELINES, spec_transform
from models.interface import InputSpec
from training.data import input_spec


def make_grid(
    images: list[np.ndarray], labels: list[str], cols: int = 4, scale: int = 2
) -> np.ndarray:
    """RGB grid of same-size images, each with its label printed under it."""
    h, w = images[0].shape[:2]
    th, tw = h * scale, w * scale
    label_h = 22
    pad = 6
    rows = math.ceil(len(images) / cols)
    grid = np.full((rows * (th + label_h + pad) + pad, cols * (tw + pad) + pad, 3), 255, np.uint8)
    for i, (img, label) in enumerate(zip(images, labels)):
        r, c = divmod(i, cols)
        y, x = pad + r * (th + label_h + pad), pad + c * (tw + pad)
        grid[y : y + th, x : x + tw] = cv2.resize(img, (tw, th), interpolation=cv2.INTER_NEAREST)
        cv2.putText(grid, label, (x + 2, y + th + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return grid


def _spec(args) -> InputSpec:
    return InputSpec(args.height, args.width, args.keep_aspect, args.stretch_contrast, args.dark_text, args.grey)


def _label(text: str, country: str, rows: int) -> str:
    return f"{text}  {country}" + ("  2-row" if rows == 2 else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.augment_grid", description="Save a grid of augmented samples.")
    ap.add_argument("--out", required=True, help="output PNG")
    ap.add_argument("--pipeline", default="train", choices=PIPELINES)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--height", type=int, default=32)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--keep-aspect", action="store_true")
    ap.add_argument("--stretch-contrast", action="store_true",
                    help="each image last through data.images.stretch_contrast (data.stretch_contrast; on with a --config that sets it)")
    ap.add_argument("--dark-text", action="store_true",
                    help="each image then turned to dark characters on light, data.images.dark_text (on with a --config "
                         "that turns: data.dark_text in training, data.read_dark_text in reading)")
    ap.add_argument("--grey", action="store_true",
                    help="each image first turned to its luma, data.images.to_grey (data.grey; on with a --config "
                         "that sets it)")
    ap.add_argument("--data", default=None, help="dataset path (format a or b); default: synthetic plates")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cols", type=int, default=4)
    ap.add_argument("--scale", type=int, default=2, help="upscale factor of each tile")
    ap.add_argument("--config", default=None,
                    help="take data.synth_effects and data.camera_effects from this config (default: none on)")
    ap.add_argument("--effect", default=None,
                    help="show one effect always on, all others off ('all': every effect, a row each): "
                         "a generator effect or group "
                         "(data.synth.effects: fonts, clutter, surface, surround, plates, extra_fonts, ...) or a "
                         f"camera effect ({', '.join(CAMERA_EFFECTS)})")
    args = ap.parse_args(argv)

    if args.effect == "all":
        return _all_effects(args)
    synth_fx, camera = SynthEffects(), {}
    if args.config:
        cfg = load_config(path=args.config)
        synth_fx, camera = cfg.data.effects, cfg.data.camera
        spec = input_spec(cfg.data, training=args.pipeline == "train")  # the polarity differs by pipeline
        args.stretch_contrast = args.stretch_contrast or spec.stretch_contrast
        args.dark_text = args.dark_text or spec.dark_text
        args.grey = args.grey or spec.grey
    if args.effect:
        if args.effect in CAMERA_EFFECTS:
            synth_fx, camera = SynthEffects(), {args.effect: 1.0}
        else:
            try:
                synth_fx, camera = SynthEffects().only(args.effect), {}
            except ValueError as e:
                ap.error(f"--effect: {e}; camera effects: {', '.join(CAMERA_EFFECTS)}")
    tf = spec_transform(_spec(args), args.pipeline, camera if args.pipeline == "train" else None)
    tf.set_seed(args.seed)
    images, labels = [], []
    if args.data:
        records = load_records(args.data, on_invalid_label="skip", allow_mask=True)
        rng = random.Random(args.seed)
        picks = rng.sample(records, min(args.n, len(records)))
        for r in picks:
            images.append(tf.augment(read_image_rgb(r.path)))
            labels.append(_label(r.text, r.country, r.rows))
    else:
        countries = EFFECT_COUNTRIES.get(args.effect) if args.effect else None
        gen = SyntheticPlateGenerator(seed=args.seed, effects=synth_fx, countries=countries)
        for _ in range(args.n):
            plate = gen()
            images.append(tf.augment(plate.image))
            labels.append(_label(plate.text, plate.country, plate.rows))
    if not images:
        raise SystemExit("no samples")
    _write(args, images, labels)
    return 0


def _write(args, images: list[np.ndarray], labels: list[str]) -> None:
    grid = make_grid(images, labels, cols=args.cols, scale=args.scale)
    out = os.fspath(args.out)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    if not ok:
        raise SystemExit(f"cannot encode {out}")
    buf.tofile(out)
    print(f"wrote {out} ({len(images)} samples, {args.pipeline}, {args.height}x{args.width})")


def _all_effects(args) -> int:
    """One row of ``--cols`` samples per effect (each synthetic effect, then each camera effect),
    that effect always on and all others off; the tiles are labelled with the effect's name."""
    images, labels = [], []
    names = [f.name for f in dataclasses.fields(SynthEffects)] + list(CAMERA_EFFECTS)
    for i, name in enumerate(names):
        camera = {name: 1.0} if name in CAMERA_EFFECTS else {}
        synth_fx = SynthEffects() if camera else SynthEffects().only(name)
        tf = spec_transform(_spec(args), args.pipeline, camera if args.pipeline == "train" else None)
        tf.set_seed(args.seed + i)
        gen = SyntheticPlateGenerator(seed=args.seed + i, effects=synth_fx, countries=EFFECT_COUNTRIES.get(name))
        for _ in range(args.cols):
            plate = gen()
            images.append(tf.augment(plate.image))
            labels.append(f"{name}: {plate.text}")
    _write(args, images, labels)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
