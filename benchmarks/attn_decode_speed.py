"""CPU decoding speed of the attention model: greedy, beam, cached vs uncached, NAR.

    python benchmarks/attn_decode_speed.py [--weights runs/attn/<run>/best] [--data DATASET]
                                           [--batch-size 64] [--threads 2] [--seconds 3] [--beams 3 5]
                                           [--accuracy N]

Plates/s at one batch size, end to end (``model.predict``: encoder + decoding +
reading the texts), on real images of the test set when there is one (decoding
stops when every plate has read EOS, so the number of steps depends on the
images). Without ``--weights`` it builds the default ``configs/attn.yaml``
model with random weights, which never stops early: a worst case. The machine
is shared: each figure is the median over its repeats; run it twice.

``--accuracy N`` also scores every decoding mode on the first N plates of
``--data`` (exact match overall / one-row / two-row), so speed and accuracy of
greedy, beam, NAR and refinement can be weighed with the same weights.
"""

from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from configs import load_config  # noqa: E402
from data.datasets import PlateDataset, collate_plates, load_records  # noqa: E402
from data.text import Charset  # noqa: E402
from data.transforms import spec_transform  # noqa: E402
from evaluation import evaluate  # noqa: E402
from models import InputSpec, PlateRecognizer, create_model  # noqa: E402

DEFAULT_DATA = Path("datasets/synth/test_n2000_seed2_2row0.15")


def rate(fn, n_plates: int, seconds: float) -> float:
    fn()  # warm-up
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 3:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return n_plates / statistics.median(times)


class Decoding:
    """The model read with one decoding mode (``generate``'s keywords), for ``evaluation.evaluate``."""

    def __init__(self, model, **kw):
        self.model, self.kw = model, kw

    def predict_tensor(self, images, countries=None):
        return self.model.decode({"log_probs": self.model.generate(images, **self.kw)})


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", help="trained attn model folder (default: configs/attn.yaml, random weights)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="images to decode (default: the synth test set)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=3.0, help="time per figure")
    p.add_argument("--beams", type=int, nargs="+", default=[3, 5])
    p.add_argument("--accuracy", type=int, default=0, metavar="N",
                   help="also score each decoding mode on the first N plates of --data")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    if args.weights:
        model = PlateRecognizer.from_pretrained(args.weights, expected_arch="attn")
    else:
        cfg = load_config("attn")
        model = create_model("attn", dataclasses.asdict(cfg.model), Charset(cfg.data.charset),
                             InputSpec(cfg.data.image_height, cfg.data.image_width, cfg.data.keep_aspect,
                                       cfg.data.stretch_contrast))
    model.eval()
    spec, b = model.input_spec, args.batch_size
    if args.data.exists():
        records = load_records(args.data, model.charset, allow_mask=True)[:b]
        ds = PlateDataset(records, spec_transform(spec))
        images = torch.stack([ds[i]["image"] for i in range(len(ds))])
        source = f"{len(images)} images of {args.data}"
    else:
        images = torch.rand(b, 3, spec.height, spec.width) * 2 - 1
        source = "random images"
    n = len(images)
    trained_perm = model.config.perm_num > 1
    print(f"attn {model.config.encoder}, {model.num_parameters() / 1e6:.2f}M parameters, input "
          f"{spec.height}x{spec.width}, batch {n} ({source}), {torch.get_num_threads()} threads"
          + ("" if args.weights else " -- random weights: no early stop"))

    def run(**kw):
        def f():
            with torch.no_grad():
                model.decode({"log_probs": model.generate(images, **kw)})
        f.decoding = kw
        return f

    rows = [("encoder only", lambda: torch.no_grad()(model.encode)(images)),
            ("greedy, kv-cache", run(beam_width=1, refine_iters=0, decoding="ar", use_cache=True)),
            ("greedy, no cache (prefix recomputed)", run(beam_width=1, refine_iters=0, decoding="ar", use_cache=False))]
    rows += [(f"beam {w}, kv-cache", run(beam_width=w, refine_iters=0, decoding="ar")) for w in args.beams]
    if trained_perm:
        rows += [("greedy + 1 refinement", run(beam_width=1, refine_iters=1, decoding="ar")),
                 ("nar", run(decoding="nar", refine_iters=0, beam_width=1)),
                 ("nar + 1 refinement", run(decoding="nar", refine_iters=1, beam_width=1)),
                 ("nar + 2 refinements", run(decoding="nar", refine_iters=2, beam_width=1))]
    scored = []
    if args.accuracy and args.data.exists():
        records = load_records(args.data, model.charset, allow_mask=True)[: args.accuracy]
        ds = PlateDataset(records, spec_transform(spec))
        scored = [ds[i] for i in range(len(ds))]
    for name, fn in rows:
        line = f"{name:40s} {rate(fn, n, args.seconds):8.0f} plates/s"
        kw = getattr(fn, "decoding", None)
        if scored and kw is not None and kw.get("use_cache", True):
            loader = DataLoader(scored, batch_size=b, collate_fn=collate_plates)
            r = evaluate(Decoding(model, **kw), loader, desc=name).metrics
            em = [r["overall"]["exact_match"]] + [r["by_rows"].get(k, {}).get("exact_match", float("nan"))
                                                  for k in ("1", "2")]
            line += f"   exact match {em[0]:.4f} (1-row {em[1]:.4f}, 2-row {em[2]:.4f}) on {r['overall']['n']} plates"
        print(line, flush=True)


if __name__ == "__main__":
    main()
