"""CPU inference speed of plate readers in PyTorch and ONNX Runtime, with FLOPs and the share of peak.

    python benchmarks/inference_speed.py                       # weights/crnn, weights/attn if present,
                                                               # else fresh default-config models
    python benchmarks/inference_speed.py --weights runs/crnn/<run>/best --weights model.onnx
    python benchmarks/inference_speed.py --build crnn --build crnn,model.backbone=resnet10t,model.rnn_hidden_size=64
    python benchmarks/inference_speed.py --build crnn --profile  # + ONNX Runtime time per op type and stage
    python benchmarks/inference_speed.py --weights weights/crnn   # the resnet18 CRNN alone

For each model, in one run on one machine: batch-1 latency (median and p95,
ms) and batch-64 throughput (plates/s) of the model alone (a preprocessed
input tensor in, raw outputs out) in PyTorch, in ONNX Runtime (the graph
``export.py`` writes) and, for the archs ``export.py --int8`` quantises (the
CRNN), in ONNX Runtime on that graph's static int8 quantisation
(``export.quantize_onnx_int8``, as ``export.py --int8`` writes it; ``--no-int8``
skips it); the FLOPs of one plate (counted with
``torch.utils.flop_counter.FlopCounterMode``: one multiply-add = 2 FLOPs; the
attention model is counted over all its decoder steps, as its ONNX graph runs
them) and the share of the machine's peak matmul FLOP/s that the batch-64
throughput reaches (float32 rows only: int8 arithmetic has another peak). The
peak is measured here: a large ``torch.matmul`` on the
benchmark's threads (wall clock), and one core's float32 matmul rate from
process CPU time, in torch and in ONNX Runtime's MatMul (its MLAS kernels can
use wider vector units than torch's BLAS: on AMD Zen 5 they run about twice as
fast); the peak used is the largest (one core's x threads, or the wall-clock
figure). Preprocessing (resize + normalise) and decoding costs per plate are
printed too, and ONNX Runtime's process CPU time per plate at one thread: a
figure that other processes on a busy machine do not inflate.

Threads: torch 2 (intra-op) and 1 inter-op, OMP_WAIT_POLICY=PASSIVE unless set;
ONNX Runtime intra_op 2, inter_op 1, sequential, graph optimisation level
``--ort-opt`` (default all; the lower levels measured ~45% slower on the CRNN:
``all`` adds the NCHWc conv layout), thread spinning ``--ort-spin`` (default 1,
ONNX Runtime's own default; 0 cut the batch-1 p95 from 5.3 to 1.2 ms on a busy machine). Weights do not
matter for speed, except that PyTorch's attention decoding stops early when every
plate has read EOS (the ONNX graph always runs every step).

Other processes share the cores of a busy machine: the load average is printed
at the start; compare figures from one run, or run twice and take the better.
Issue 5 targets (default CRNN, ONNX Runtime): batch-1 median <= 2 ms and
>= 2,000 plates/s at batch 64.
"""

from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# Idle OpenMP threads sleep rather than spin (as predict.py and val.py set it). With the default
# spinning, PyTorch at 2 threads on 2 cores that other processes also use measured 10-300x slower
# (e.g. 945 ms instead of 2.9 ms per batch-1 CRNN call). OMP_WAIT_POLICY=ACTIVE in the
# environment measures the default behaviour.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

TARGET_B1_MS = 2.0
TARGET_B64_PLATES_S = 2000.0


@dataclass
class Result:
    name: str
    arch: str
    input: str
    params: int
    flops: float  # per plate
    torch_b1_median_ms: float | None = None
    torch_b1_p95_ms: float | None = None
    torch_b64_plates_s: float | None = None
    ort_b1_median_ms: float | None = None
    ort_b1_p95_ms: float | None = None
    ort_b64_plates_s: float | None = None
    ort_cpu_ms_b1: float | None = None  # process CPU time per plate, 1 intra-op thread
    ort_cpu_ms_b64: float | None = None
    ort_int8_input: bool = False  # the .onnx measured above is itself an int8 graph
    int8_b1_median_ms: float | None = None  # ONNX Runtime on the static int8 quantisation of the graph
    int8_b1_p95_ms: float | None = None
    int8_b64_plates_s: float | None = None
    int8_cpu_ms_b1: float | None = None
    int8_cpu_ms_b64: float | None = None
    int8_skipped: str | None = None  # why there is no int8 row
    preprocess_us: float | None = None
    decode_us: float | None = None
    ort_profile: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- timing


def latency(fn, seconds: float, min_iters: int = 30, warmup: int = 10) -> tuple[float, float]:
    """(median, p95) in ms of ``fn()`` over ``seconds`` (at least ``min_iters`` calls)."""
    for _ in range(warmup):
        fn()
    times = []
    t_end = time.perf_counter() + seconds
    while len(times) < min_iters or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return 1e3 * statistics.median(times), 1e3 * times[min(len(times) - 1, int(0.95 * len(times)))]


def throughput(fn, batch: int, seconds: float, min_iters: int = 5, warmup: int = 2) -> float:
    """Plates/s of ``fn()`` on a batch, from the median batch time."""
    med, _ = latency(fn, seconds, min_iters=min_iters, warmup=warmup)
    return batch / (med / 1e3)


def cpu_time_per_call(fn, calls: int, warmup: int = 3) -> float:
    """Process CPU seconds per call: unlike wall time, not inflated while other processes hold the cores."""
    for _ in range(warmup):
        fn()
    t0 = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - t0) / calls


def peak_matmul_flops(n: int = 2048, reps: int = 10) -> float:
    """Best wall-clock FLOP/s of an n x n float32 torch.matmul on the current torch threads."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def per_core_matmul_flops(n: int = 2048, reps: int = 10) -> dict[str, float]:
    """FLOP/s of ONE core from process CPU time (robust to other load): torch.matmul at 1 thread, and
    ONNX Runtime's MatMul (MLAS kernels, which may use wider vector units than torch's BLAS)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        t_torch = min(cpu_time_per_call(lambda: a @ b, 1) for _ in range(reps))
    finally:
        torch.set_num_threads(threads)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "mm",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, [n, n]) for k in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    feeds = {"a": a.numpy(), "b": b.numpy()}
    t_ort = min(cpu_time_per_call(lambda: sess.run(None, feeds), 1) for _ in range(reps))
    return {"torch": 2 * n**3 / t_torch, "onnxruntime": 2 * n**3 / t_ort}


def per_core_peak(n: int) -> dict[str, float]:
    """Best of ``per_core_matmul_flops`` at n and at 512 (in cache: often the faster)."""
    out: dict[str, float] = {}
    for size in sorted({512, n}):
        for k, v in per_core_matmul_flops(size).items():
            out[k] = max(out.get(k, 0.0), v)
    return out


# --------------------------------------------------------------------------- models


def build(spec: str):
    """``ARCH[,section.key=value,...]`` -> a fresh model from configs/<arch>.yaml (+ overrides)."""
    from data.text import Charset
    from models import InputSpec, create_model

    arch, *overrides = [s.strip() for s in spec.split(",") if s.strip()]
    try:
        from configs import default_config_path, load_config

        if default_config_path(arch).is_file():
            cfg = load_config(arch, overrides=overrides)
            d = cfg.data
            import dataclasses

            return create_model(arch, dataclasses.asdict(cfg.model), Charset(d.charset),
                                InputSpec(d.image_height, d.image_width, d.keep_aspect, d.stretch_contrast))
    except ImportError:  # pragma: no cover
        pass
    if overrides:
        raise SystemExit(f"--build {spec}: overrides need configs/{arch}.yaml")
    return create_model(arch, {}, Charset(), InputSpec(32, 160))


def default_specs() -> list[tuple[str, str]]:
    """weights/crnn and weights/attn if present, else fresh default-config models."""
    from models import list_models

    root = Path(__file__).resolve().parents[1]
    out = []
    for arch in ("crnn", "attn"):
        folder = root / "weights" / arch
        if (folder / "config.json").is_file():
            out.append(("weights", str(folder)))
        elif arch in list_models():
            out.append(("build", arch))
    return out


def count_flops(module, x: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    # With autograd on: FlopCounterMode's module tracker hooks need grad_fns (it fails on the attention
    # decoder's parameter slices under no_grad / inference_mode). Forward only, batch 1.
    with torch.enable_grad(), FlopCounterMode(display=False) as fc:
        module(x)
    return fc.get_total_flops() / x.shape[0]


ORT_SPIN = "1"  # session.intra_op.allow_spinning, set from --ort-spin


def ort_session(path: Path, threads: int, opt: str, profile_prefix: str | None = None):
    import onnxruntime as ort

    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = levels[opt]
    so.add_session_config_entry("session.intra_op.allow_spinning", ORT_SPIN)
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def _stage(node_name: str) -> str:
    """A readable stage from an exported node name, e.g. /model/backbone/body/layer1/... -> layer1."""
    parts = [p for p in node_name.split("/") if p and p not in ("model", "body", "module")]
    if not parts:
        return node_name
    if parts[0] == "backbone" and len(parts) > 1:
        stem = parts[1] in ("conv1", "bn1", "act1", "maxpool", "conv_stem", "bn1", "stem")
        return "backbone.stem" if stem else f"backbone.{parts[1]}"
    if parts[0] in ("encoder",) and len(parts) > 1:
        sub = [p for p in parts[1:] if p not in ("backbone",)]
        return f"encoder.{sub[0]}" if sub else "encoder"
    return parts[0] if len(parts) > 1 else "other"


def profile_ort(path: Path, x1: np.ndarray, x64: np.ndarray, threads: int, opt: str, iters: int = 20) -> dict:
    """Share of ONNX Runtime's node time per op type and per stage, at batch 1 and batch 64."""
    out = {}
    for label, x, n in (("b1", x1, iters * 10), ("b64", x64, iters)):
        with tempfile.TemporaryDirectory() as tmp:
            sess = ort_session(path, threads, opt, profile_prefix=str(Path(tmp) / "ort"))
            name = sess.get_inputs()[0].name
            for _ in range(n):
                sess.run(None, {name: x})
            events = json.loads(Path(sess.end_profiling()).read_text())
        by_op: dict[str, float] = defaultdict(float)
        by_stage: dict[str, float] = defaultdict(float)
        total = 0.0
        for e in events:
            if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
                continue
            dur = float(e.get("dur", 0))
            op = e.get("args", {}).get("op_name", "?")
            by_op[op] += dur
            by_stage[_stage(e["name"][: -len("_kernel_time")])] += dur
            total += dur
        top = lambda d: {k: round(v / total, 4) for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:8]}  # noqa: E731
        out[label] = {"op_type": top(by_op), "stage": top(by_stage),
                      "node_time_ms_per_run": round(total / n / 1e3, 3)}
    return out


def bench_one(kind: str, spec: str, args, tmpdir: Path) -> Result:
    from data.synth import SyntheticPlateGenerator
    from export import export_onnx
    from inference import OnnxPlateReader
    from models import PlateRecognizer

    torch_model, onnx_path = None, None
    if kind == "build":
        torch_model = build(spec).eval()
        name = spec
    else:
        from inference import resolve_weights

        wkind, p = resolve_weights(spec)
        name = spec
        if wkind == "onnx":
            onnx_path = p
        else:
            torch_model = PlateRecognizer.from_pretrained(p)
    if onnx_path is None:
        onnx_path = tmpdir / f"m{len(list(tmpdir.iterdir()))}.onnx"
        export_onnx(torch_model, onnx_path)
    reader = OnnxPlateReader(onnx_path, threads=args.threads)
    s = reader.input_spec
    arch = reader.arch
    g = torch.Generator().manual_seed(0)
    x64 = torch.rand(64, 3, s.height, s.width, generator=g) * 2 - 1
    x1 = x64[:1].clone()

    shape_model = torch_model
    if shape_model is None:  # an .onnx alone: FLOPs and parameters of the model its config describes
        from models import create_model

        cfg = reader.config
        options = {**cfg["model"], **({"pretrained": False} if "pretrained" in cfg["model"] else {})}
        shape_model = create_model(arch, options, reader.charset, reader.input_spec).eval()
    params = shape_model.num_parameters()
    # What the ONNX graph runs (an attention model: every decoder step), as export.py traces it.
    counted = shape_model.export_module()[0] if shape_model.beam_width == 1 else shape_model
    flops = count_flops(counted, x1)
    res = Result(name=name, arch=arch, input=f"{s.height}x{s.width}", params=params, flops=flops)

    if torch_model is not None:
        with torch.inference_mode():
            res.torch_b1_median_ms, res.torch_b1_p95_ms = latency(lambda: torch_model(x1), args.seconds)
            res.torch_b64_plates_s = throughput(lambda: torch_model(x64), 64, args.seconds)

    sess = ort_session(onnx_path, args.threads, args.ort_opt)
    iname = sess.get_inputs()[0].name
    n1, n64 = x1.numpy(), x64.numpy()
    res.ort_b1_median_ms, res.ort_b1_p95_ms = latency(lambda: sess.run(None, {iname: n1}), args.seconds)
    res.ort_b64_plates_s = throughput(lambda: sess.run(None, {iname: n64}), 64, args.seconds)
    one = ort_session(onnx_path, 1, args.ort_opt)
    res.ort_cpu_ms_b1 = 1e3 * cpu_time_per_call(lambda: one.run(None, {iname: n1}), 200)
    res.ort_cpu_ms_b64 = 1e3 * cpu_time_per_call(lambda: one.run(None, {iname: n64}), 10) / 64
    bench_int8(res, onnx_path, sess, n1, n64, args, tmpdir)

    # Pre- and post-processing per plate (outside the model).
    plates = [SyntheticPlateGenerator(seed=1)().image for _ in range(64)]
    t0 = time.perf_counter()
    for im in plates:
        reader.preprocess(im)
    res.preprocess_us = 1e6 * (time.perf_counter() - t0) / len(plates)
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {iname: n64})))
    t0 = time.perf_counter()
    for _ in range(5):
        reader.decoder(reader.charset, outs)
    res.decode_us = 1e6 * (time.perf_counter() - t0) / (5 * 64)

    if args.profile:
        res.ort_profile = profile_ort(onnx_path, n1, n64, args.threads, args.ort_opt)
    return res


def bench_int8(res: Result, onnx_path: Path, sess, n1: np.ndarray, n64: np.ndarray, args, tmpdir: Path) -> None:
    """The int8 row: ONNX Runtime on ``export.quantize_onnx_int8`` of the float32 graph."""
    from export import ONNX_META_QUANT, int8_archs, quantize_onnx_int8

    if ONNX_META_QUANT in sess.get_modelmeta().custom_metadata_map:
        res.ort_int8_input, res.int8_skipped = True, "the .onnx given is already int8"
        return
    if args.no_int8:
        res.int8_skipped = "--no-int8"
        return
    if res.arch not in int8_archs():
        res.int8_skipped = f"export.py --int8 does not quantise {res.arch!r} models"
        return
    q_path = quantize_onnx_int8(onnx_path, tmpdir / f"{onnx_path.stem}.int8.onnx")
    q = ort_session(q_path, args.threads, args.ort_opt)
    iname = q.get_inputs()[0].name
    res.int8_b1_median_ms, res.int8_b1_p95_ms = latency(lambda: q.run(None, {iname: n1}), args.seconds)
    res.int8_b64_plates_s = throughput(lambda: q.run(None, {iname: n64}), 64, args.seconds)
    one = ort_session(q_path, 1, args.ort_opt)
    res.int8_cpu_ms_b1 = 1e3 * cpu_time_per_call(lambda: one.run(None, {iname: n1}), 200)
    res.int8_cpu_ms_b64 = 1e3 * cpu_time_per_call(lambda: one.run(None, {iname: n64}), 10) / 64


# --------------------------------------------------------------------------- report


def _f(x, fmt: str) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, fmt)


def report(results: list[Result], peaks: dict, args) -> str:
    peak = peaks["peak"]
    core = peaks["per_core"]
    lines = [
        f"peak float32 matmul: torch.matmul {args.matmul_n}^2 {args.threads} threads wall "
        f"{peaks['torch_wall'] / 1e9:.0f} GFLOP/s; one core from CPU time (best of 512^2 and "
        f"{args.matmul_n}^2): torch {core['torch'] / 1e9:.0f}, "
        f"onnxruntime {core['onnxruntime'] / 1e9:.0f} GFLOP/s -> peak of {args.threads} cores used below: "
        f"{peak / 1e9:.0f} GFLOP/s",
        "",
        "| model | input | params | GFLOPs/plate | backend | batch-1 median ms | batch-1 p95 ms "
        "| batch-64 plates/s | % of peak at batch 64 |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in results:
        ort = "onnxruntime int8" if r.ort_int8_input else "onnxruntime"
        for backend, med, p95, tput in (("torch", r.torch_b1_median_ms, r.torch_b1_p95_ms, r.torch_b64_plates_s),
                                        (ort, r.ort_b1_median_ms, r.ort_b1_p95_ms, r.ort_b64_plates_s),
                                        ("onnxruntime int8", r.int8_b1_median_ms, r.int8_b1_p95_ms,
                                         r.int8_b64_plates_s)):
            if med is None:
                continue
            int8 = backend.endswith("int8")  # no float32 peak to compare with
            share = 100.0 * r.flops * tput / peak if tput and r.flops == r.flops and not int8 else None
            lines.append(f"| {r.name} | {r.input} | {r.params / 1e6:.2f}M | {_f(r.flops / 1e9, '.3f')} | {backend} "
                         f"| {_f(med, '.2f')} | {_f(p95, '.2f')} | {_f(tput, ',.0f')} | {_f(share, '.1f')}"
                         f"{'%' if share is not None else ''} |")
    lines.append("")
    for r in results:
        if r.int8_skipped and not r.ort_int8_input:
            lines.append(f"{r.name}: no int8 row ({r.int8_skipped})")
    for r in results:
        lines.append(f"{r.name}: preprocessing {r.preprocess_us:.0f} us/plate, decoding {r.decode_us:.1f} us/plate "
                     "(outside the model, not in the figures above)")
    best_core = max(core.values())
    for r in results:
        ort = "onnxruntime int8" if r.ort_int8_input else "onnxruntime"
        for backend, cpu_b1, cpu_b64 in ((ort, r.ort_cpu_ms_b1, r.ort_cpu_ms_b64),
                                         ("onnxruntime int8", r.int8_cpu_ms_b1, r.int8_cpu_ms_b64)):
            if not cpu_b64:
                continue
            if backend.endswith("int8"):
                rate = ""  # int8 arithmetic: no float32 peak to compare with
            else:
                eff = r.flops / (cpu_b64 / 1e3) if r.flops == r.flops else float("nan")
                rate = f" = {eff / 1e9:.0f} GFLOP/s ({100 * eff / best_core:.0f}% of one core's peak)"
            lines.append(
                f"{r.name}: {backend} at 1 thread, process CPU time (not inflated by other load): "
                f"{cpu_b1:.2f} ms per batch-1 call, {cpu_b64:.3f} ms per plate at batch 64{rate} -> "
                f"{args.threads} free cores could give at most ~{args.threads * 1e3 / cpu_b64:,.0f} plates/s")
    for r in results:
        ort = "onnxruntime int8" if r.ort_int8_input else "onnxruntime"
        for backend, b1, b64 in ((ort, r.ort_b1_median_ms, r.ort_b64_plates_s),
                                 ("onnxruntime int8", r.int8_b1_median_ms, r.int8_b64_plates_s)):
            if r.arch != "crnn" or b1 is None:
                continue
            ok1 = b1 <= TARGET_B1_MS
            ok64 = (b64 or 0) >= TARGET_B64_PLATES_S
            need = TARGET_B64_PLATES_S * r.flops if r.flops == r.flops else float("nan")
            cost = "" if backend.endswith("int8") else (
                f" (2,000 plates/s of this model is {need / 1e9:.0f} GFLOP/s = {100 * need / peak:.0f}% of the peak)")
            lines.append(
                f"targets for {r.name} ({backend}): batch-1 median {b1:.2f} ms "
                f"{'<=' if ok1 else '>'} {TARGET_B1_MS:g} ms [{'met' if ok1 else 'NOT met'}]; "
                f"{b64:,.0f} plates/s at batch 64 {'>=' if ok64 else '<'} "
                f"{TARGET_B64_PLATES_S:,.0f} [{'met' if ok64 else 'NOT met'}]{cost}")
    for r in results:
        for label, prof in r.ort_profile.items():
            ops = ", ".join(f"{k} {100 * v:.0f}%" for k, v in prof["op_type"].items())
            stages = ", ".join(f"{k} {100 * v:.0f}%" for k, v in prof["stage"].items())
            lines.append(f"profile {r.name} {label} ({prof['node_time_ms_per_run']:.2f} ms of node time per run): "
                         f"by op: {ops}; by stage: {stages}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", action="append", default=[], help="model folder or .onnx file (repeatable)")
    ap.add_argument("--build", action="append", default=[],
                    help="fresh model ARCH[,section.key=value,...] from configs/<arch>.yaml (repeatable)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    ap.add_argument("--ort-opt", default="all", choices=["disable", "basic", "extended", "all"])
    ap.add_argument("--ort-spin", default="1", choices=["0", "1"], help="ONNX Runtime intra-op thread spinning")
    ap.add_argument("--matmul-n", type=int, default=2048)
    ap.add_argument("--profile", action="store_true", help="ONNX Runtime profile: time per op type and stage")
    ap.add_argument("--no-int8", action="store_true", help="skip the ONNX Runtime int8 rows (export.py --int8)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)

    global ORT_SPIN
    ORT_SPIN = args.ort_spin
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    specs = [("weights", w) for w in args.weights] + [("build", b) for b in args.build] or default_specs()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads, OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY')}); onnxruntime {args.threads} threads, spinning {args.ort_spin}, "
          f"optimisation {args.ort_opt}", flush=True)
    torch_wall = peak_matmul_flops(args.matmul_n)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, spec in specs:
            print(f"... {spec}", flush=True)
            results.append(bench_one(kind, spec, args, Path(tmp)))
    torch_wall = max(torch_wall, peak_matmul_flops(args.matmul_n))  # again, in case the first was disturbed
    per_core = per_core_peak(args.matmul_n)
    peaks = {"torch_wall": torch_wall, "per_core": per_core,
             "peak": max(torch_wall, args.threads * max(per_core.values()))}
    text = report(results, peaks, args)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"peaks": peaks, "threads": args.threads, "ort_opt": args.ort_opt,
                                               "load_average": load, "results": [asdict(r) for r in results]},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
