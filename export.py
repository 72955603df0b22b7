"""Export a trained model for deployment.

    python export.py --weights runs/crnn/<run>/best --format onnx [--output model.onnx] [--opset 17]
    python export.py --weights weights/crnn --output crnn.onnx --int8   # + crnn.int8.onnx

The ONNX graph takes ``images`` [batch, 3, H, W] (float32 RGB in [-1, 1], the
model's input size; the batch axis is dynamic) and returns per-step scores;
turning them into text runs outside the graph, in numpy, with the same
tokenizer code as PyTorch (``data.tokenizers.NUMPY_DECODERS``). Each architecture
says what is traced and how it is decoded (``PlateRecognizer.export_module``,
``onnx_decoder``); today:

- CRNN: ``logits`` [batch, T, blank + charset]; greedy CTC decoding outside.
  The row router and the two-row view are in the graph (a ``Where`` per sample).
- attention (``attn``): the whole greedy loop is in the graph (a fixed
  max_label_length + 1 steps, each feeding its argmax back; with a CTC head, the
  joint scoring of one-row plates too; ``nar`` decoding and refinement passes
  too), giving ``log_probs`` [batch, T, EOS + charset]; outside, the argmax is
  read up to EOS. Beam search is not exported.
- models with a classification head also return ``rows_logits`` [batch, 2] and
  ``country_logits`` [batch, 28], turned into country, confidence and rows outside.

The model's config.json content (arch, charset, input size) is embedded in the
graph's metadata_props (``inference.onnx.graph_metadata``), so the .onnx file alone is enough for
``predict.py --weights model.onnx`` and ``inference.load_reader``.

After writing, the export is checked: ONNX Runtime and PyTorch must give the
same texts, and outputs within 1e-3 (the max abs difference is printed), on a
few synthetic plates and noise images (``--no-check`` skips it).

``--int8`` (CRNN only) also writes a statically quantised copy of that float32
graph (``quantize_onnx_int8``), by default beside it as ``<output stem>.int8.onnx``
(``crnn.onnx`` -> ``crnn.int8.onnx``; ``--int8-output`` names it): ONNX Runtime QDQ
format, uint8 activations, int8 per-channel weights, MinMax ranges calibrated on
``--calib-size`` (default 256) synthetic plates rendered like the fixed val/test
sets (``SyntheticPlateGenerator`` + ``degrade``, a fixed seed of their own:
the same file every run) and preprocessed as inference does. Whatever outputs the
float graph has are quantised as they are; ops ONNX Runtime cannot quantise (the
GRU) stay float32, and so do those of the submodules the architecture names in
``int8_float_modules`` (the CRNN's row router: quantised, its flipped row calls
changed 8.6 % of the shipped model's readings). The file keeps the float file's metadata (it loads like it, in
``predict.py --weights`` and ``inference.load_reader``) plus ``plate_ocr.quantization``
(how it was quantised). Its check: PyTorch's and ONNX Runtime int8's texts must
agree on at least 95 % of 256 other synthetic plates (the agreement is printed).
Architectures say whether they quantise (``PlateRecognizer.int8_refusal``): the
attention model is refused (quantised whole, its greedy loop, each step's argmax
fed back, read nothing right; with only its encoder's convolutions quantised it
read as well but gained 10-20 % at batch 64 and lost at batch 1).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from inference import WeightsError, load_reader, resolve_weights
from inference.onnx import ONNX_INPUT, ONNX_META_CONFIG, ONNX_META_GRAPH, ONNX_META_QUANT, graph_metadata
from models import PlateRecognizer, get_model_class

DEFAULT_OPSET = 17


@contextlib.contextmanager
def _export_symbolics(opset: int):
    """While exporting, two translations the exporter lacks or gets wrong:

    - ``torch.cumsum`` of a bool tensor (``AttnRecognizer._after_eos``, ``_refine``) as a cast to
      int64 then CumSum: torch sums bools as int64, but the exporter's own translation feeds the
      bool to ONNX CumSum, which accepts numbers only;
    - ``torch.logaddexp`` (the CTC prefix scorer of joint decoding), which it does not translate:
      max + log(1 + exp(-|a - b|)), and -inf where both are -inf (their difference is NaN there)."""

    def cumsum(g, self, dim, dtype=None):
        typ = self.type()
        if hasattr(typ, "scalarType") and typ.scalarType() == "Bool":
            self = g.op("Cast", self, to_i=7)  # TensorProto.INT64
        return g.op("CumSum", self, dim)

    def logaddexp(g, a, b):
        top = g.op("Max", a, b)
        gap = g.op("Neg", g.op("Abs", g.op("Sub", a, b)))
        one = g.op("Constant", value_t=torch.tensor(1.0))
        summed = g.op("Add", top, g.op("Log", g.op("Add", one, g.op("Exp", gap))))
        return g.op("Where", g.op("IsInf", top, detect_positive_i=0), top, summed)

    ops = {"aten::cumsum": cumsum, "aten::logaddexp": logaddexp}
    for name, fn in ops.items():
        torch.onnx.register_custom_op_symbolic(name, fn, opset)
    try:
        yield
    finally:
        for name in ops:
            torch.onnx.unregister_custom_op_symbolic(name, opset)


def export_onnx(model: PlateRecognizer, output: str | os.PathLike, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``model`` (a PlateRecognizer) to ``output`` as a self-contained ONNX file."""
    import onnx

    model = copy.deepcopy(model).float().cpu().eval()  # the caller's model stays where it is
    # A traced graph cannot stop when the best beam has ended: the file decodes greedily,
    # and its metadata says so, so ONNX Runtime reads as the graph does.
    model.to_graph_decoding()
    module, outputs = model.export_module()
    module = module.eval()
    h, w = model.input_spec.height, model.input_spec.width
    dummy = torch.zeros(2, 3, h, w)
    dynamic = {ONNX_INPUT: {0: "batch"}, **{name: {0: "batch"} for name in outputs}}
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=output.parent) as tmp:
        raw = Path(tmp) / "graph.onnx"
        with warnings.catch_warnings(), _export_symbolics(opset):
            # The TorchScript exporter (no onnxscript dependency) warns that it is legacy, and that a GRU
            # exported at batch > 1 with batch-sized initial states breaks other batch sizes; the
            # models here pass no initial state (ONNX GRU defaults to zeros), so any batch works
            # (checked below and in tests/test_export.py).
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, (dummy,), str(raw), dynamo=False, opset_version=opset,
                input_names=[ONNX_INPUT], output_names=list(outputs), dynamic_axes=dynamic,
                do_constant_folding=True,
            )
        proto = onnx.load(str(raw))
        meta = graph_metadata(model.to_config_dict(), outputs, model.onnx_decoder)
        del proto.metadata_props[:]
        for k, v in meta.items():
            proto.metadata_props.add(key=k, value=v)
        proto.doc_string = f"plate-ocr {model.arch} {h}x{w}, charset {model.charset.chars}"
        onnx.checker.check_model(proto)
        onnx.save(proto, str(raw))
        os.replace(raw, output)
    return output


def check_parity(weights: str | os.PathLike, onnx_path: str | os.PathLike, n: int = 8,
                 seed: int = 0) -> tuple[float, bool]:
    """(max abs output difference, texts equal) between PyTorch and ONNX Runtime.

    The inputs are ``n`` synthetic plates (realistic inputs: random noise could sit on a near-tie
    of an argmax that an autoregressive decoder feeds back) and two noise images.
    """
    from data.synth import SyntheticPlateGenerator

    torch_reader = load_reader(weights)
    if torch_reader.model.to_graph_decoding():  # read as the graph decodes
        torch_reader.config = torch_reader.model.to_config_dict()
    ort_reader = load_reader(onnx_path)
    gen = SyntheticPlateGenerator(seed=seed)
    s = torch_reader.input_spec
    plates = torch.stack([torch_reader.preprocess(gen().image) for _ in range(n)])
    noise = torch.rand(2, 3, s.height, s.width, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    x = torch.cat([plates, noise])
    ref = torch_reader.forward(x)
    got = ort_reader.forward(x)
    diff = max(float(np.abs(np.asarray(ref[name].float().cpu()) - got[name]).max())
               for name in ort_reader.output_names)
    same = [p.text for p in torch_reader.predict_tensor(x)] == [p.text for p in ort_reader.predict_tensor(x)]
    return diff, same


# --------------------------------------------------------------------------- int8 (static quantisation)

DEFAULT_CALIB_SIZE = 256
CALIB_SEED = 1234  # calibration plates (the fixed val/test sets use seeds 1 and 2)
INT8_CHECK_SEED = 4321  # the int8 check's plates: neither calibration nor test plates
INT8_CHECK_PLATES = 256  # the CRNN's flips are ~2%: 64 plates would fail a 95% bar by chance (3/64 seen)
INT8_MIN_AGREEMENT = 0.95  # share of the check's plates whose int8 text must equal PyTorch's


def int8_output_path(output: str | os.PathLike) -> Path:
    """The int8 file's default name, beside the float one: ``crnn.onnx`` -> ``crnn.int8.onnx``."""
    output = Path(output)
    stem = output.stem if output.suffix.lower() == ".onnx" else output.name
    return output.with_name(f"{stem}.int8.onnx")


def int8_archs() -> list[str]:
    """The architectures whose exported graph :func:`quantize_onnx_int8` quantises."""
    from models import list_models

    return [a for a in list_models() if get_model_class(a).int8_refusal is None]


def check_int8_supported(arch: str) -> None:
    """Raise a ValueError saying why when ``arch``'s graph is not quantised to int8
    (``PlateRecognizer.int8_refusal``)."""
    why = get_model_class(arch).int8_refusal
    if why is not None:
        raise ValueError(
            f"int8 quantisation of arch {arch!r} is not supported (supported: {', '.join(int8_archs())}): "
            f"{why}. Export it without --int8 (float32)."
        )


def synthetic_inputs(config: dict, n: int, seed: int) -> np.ndarray:
    """``n`` preprocessed synthetic plates [n, 3, H, W] (float32 in [-1, 1]) for a model config.

    Rendered as the fixed val/test sets are (``SyntheticPlateGenerator``, all countries, the
    default two-row share, then ``degrade``; plate i depends on (seed, i) only), and
    preprocessed as inference does (``spec_transform(spec)`` at the model's input size).
    """
    from configs.schema import DataConfig
    from data.synth import SyntheticPlateGenerator, degrade
    from data.transforms import spec_transform
    from models.base import InputSpec

    spec = InputSpec(**config["input"])
    transform = spec_transform(spec)
    gen = SyntheticPlateGenerator(seed=seed, two_row_prob=DataConfig().synth_two_row_prob)
    out = np.empty((n, 3, spec.height, spec.width), np.float32)
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        out[i] = np.asarray(transform(degrade(gen.sample(rng).image, rng)), np.float32)
    return out


@contextlib.contextmanager
def _quiet_quantizer():
    """onnxruntime.quantization warns through the root logger, e.g. that the graph did not go through
    its quant_pre_process first (measured on the CRNN: no faster, the same texts)."""
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def _copy_shared_constants(proto) -> int:
    """Give each ``Identity`` of an initializer its own copy of it, and drop the Identity; returns how many.

    torch.onnx's constant folding shares equal constants through Identity nodes: in an untrained
    ResNet, the all-zero weights and biases that BatchNorm folding leaves (timm zero-initialises each
    block's last BatchNorm). ONNX Runtime's quantiser then sees an activation where a weight should
    be and leaves those convolutions in float32 between Q/DQ pairs, slower than the float graph
    (measured on a fresh default CRNN: 1.14 against 0.93 ms of CPU per plate).
    """
    import onnx

    inits = {t.name: t for t in proto.graph.initializer}
    outputs = {o.name for o in proto.graph.output}
    kept, copied = [], 0
    for node in proto.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits and node.output[0] not in outputs:
            t = onnx.TensorProto()
            t.CopyFrom(inits[node.input[0]])
            t.name = node.output[0]
            proto.graph.initializer.append(t)
            copied += 1
        else:
            kept.append(node)
    if copied:
        del proto.graph.node[:]
        proto.graph.node.extend(kept)
    return copied


def quantize_onnx_int8(float_path: str | os.PathLike, out_path: str | os.PathLike, n: int = DEFAULT_CALIB_SIZE,
                       seed: int = CALIB_SEED) -> Path:
    """Write a static int8 quantisation of ``float_path`` (a float32 graph from :func:`export_onnx`).

    ONNX Runtime QDQ format, uint8 activations and int8 per-channel weights (the fast pair on x86
    CPUs with or without VNNI), MinMax activation ranges from ``n`` synthetic plates
    (:func:`synthetic_inputs` with ``seed``: the same file for the same float graph). Every op
    ONNX Runtime can quantise is, except the ops of the submodules the architecture keeps in
    float32 (``PlateRecognizer.int8_float_modules``, e.g. the CRNN's row router); the rest (e.g.
    GRU) stays float32 too, and the graph's inputs and outputs stay float32 tensors. The float
    file's metadata_props are kept, plus :data:`ONNX_META_QUANT`.
    """
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    float_path, out_path = Path(float_path), Path(out_path)
    if n < 1:
        raise ValueError(f"the calibration set needs at least 1 plate, got {n}")
    if float_path.resolve() == out_path.resolve():
        raise ValueError(f"the int8 output {out_path} would replace the float32 graph it is made from")
    proto = onnx.load(str(float_path))
    meta = {p.key: p.value for p in proto.metadata_props}
    if ONNX_META_CONFIG not in meta or ONNX_META_GRAPH not in meta:
        raise WeightsError(f"{float_path} was not written by export.py: its metadata has no {ONNX_META_CONFIG!r}")
    if ONNX_META_QUANT in meta:
        raise ValueError(f"{float_path} is already quantised ({meta[ONNX_META_QUANT]})")
    config = json.loads(meta[ONNX_META_CONFIG])
    check_int8_supported(config["arch"])
    float_modules = get_model_class(config["arch"]).int8_float_modules
    # torch.onnx names each node after the module scope it was traced in: /model/router/convs/...
    keep_float = [node.name for node in proto.graph.node if any(f"/{m}/" in node.name for m in float_modules)]
    input_name = json.loads(meta[ONNX_META_GRAPH]).get("input", ONNX_INPUT)
    x = synthetic_inputs(config, n, seed)

    class Batches(CalibrationDataReader):
        def __init__(self, batch: int = 32):
            self.batches = iter([x[i:i + batch] for i in range(0, len(x), batch)])

        def get_next(self):
            b = next(self.batches, None)
            return None if b is None else {input_name: b}

    settings = {"format": "QDQ", "activations": "uint8", "weights": "int8 per-channel", "calibration": "minmax",
                "calibration_plates": n, "calibration_seed": seed,
                "calibration_data": "SyntheticPlateGenerator + degrade",
                "float32_modules": list(float_modules)}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out_path.parent) as tmp:
        raw, source = Path(tmp) / "int8.onnx", float_path
        if _copy_shared_constants(proto):
            source = Path(tmp) / "float.onnx"
            onnx.save(proto, str(source))
        with _quiet_quantizer():
            quantize_static(
                str(source), str(raw), Batches(), quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                calibrate_method=CalibrationMethod.MinMax,  # (its calibration graph keeps per-batch min/max only)
                nodes_to_exclude=keep_float,
            )
        q = onnx.load(str(raw))
        props = {p.key: p.value for p in q.metadata_props}  # + what the quantiser adds (onnx.infer)
        props.update(meta)
        props[ONNX_META_QUANT] = json.dumps(settings)
        del q.metadata_props[:]
        for k, v in props.items():
            q.metadata_props.add(key=k, value=v)
        q.doc_string = f"{proto.doc_string} (int8)" if proto.doc_string else "int8"
        onnx.checker.check_model(q)
        onnx.save(q, str(raw))
        os.replace(raw, out_path)
    return out_path


@dataclass
class Int8Agreement:
    agree: int  # plates whose int8 text equals PyTorch's
    plates: int
    max_flip_confidence: float | None  # PyTorch's highest confidence among the plates that differ

    @property
    def share(self) -> float:
        return self.agree / self.plates


def check_int8_agreement(weights: str | os.PathLike, int8_path: str | os.PathLike,
                         n: int = INT8_CHECK_PLATES, seed: int = INT8_CHECK_SEED) -> Int8Agreement:
    """How often the int8 graph in ONNX Runtime reads the text PyTorch reads, on ``n`` synthetic
    plates like the test set's (:func:`synthetic_inputs`, not the calibration plates).

    Quantisation moves the outputs by more than float32's tolerance, so texts, not numbers, are
    compared; plates near a tie between two readings (low confidence) may flip.
    """
    torch_reader = load_reader(weights)
    int8_reader = load_reader(int8_path)
    x = torch.from_numpy(synthetic_inputs(torch_reader.config, n, seed))
    ref = torch_reader.predict_tensor(x)
    got = int8_reader.predict_tensor(x)
    flips = [a.confidence for a, b in zip(ref, got) if a.text != b.text]
    return Int8Agreement(n - len(flips), n, max(flips) if flips else None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True, help="model folder (config.json + model.safetensors)")
    ap.add_argument("--format", default="onnx", choices=["onnx"])
    ap.add_argument("--output", default="model.onnx", help="output file (default: model.onnx)")
    ap.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    ap.add_argument("--no-check", action="store_true", help="skip the PyTorch / ONNX Runtime comparison")
    ap.add_argument("--int8", action="store_true",
                    help="also write a static int8 quantisation of the graph (CRNN only; see above)")
    ap.add_argument("--int8-output", help="the int8 file (default: <output stem>.int8.onnx beside --output)")
    ap.add_argument("--calib-size", type=int, default=DEFAULT_CALIB_SIZE,
                    help=f"synthetic plates that calibrate the int8 ranges (default: {DEFAULT_CALIB_SIZE})")
    args = ap.parse_args(argv)
    if args.calib_size < 1:
        ap.error(f"--calib-size must be >= 1, got {args.calib_size}")
    try:
        kind, folder = resolve_weights(args.weights)
        if kind != "folder":
            raise WeightsError(f"{args.weights} is already an ONNX model; export takes a model folder")
        model = PlateRecognizer.from_pretrained(folder)
        output = Path(args.output)
        int8_output = Path(args.int8_output) if args.int8_output else int8_output_path(output)
        if args.int8:  # refuse before writing anything
            check_int8_supported(model.arch)
            if int8_output.resolve() == output.resolve():
                raise ValueError(f"--int8-output {int8_output} is the float32 --output itself")
        export_onnx(model, output, opset=args.opset)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    size = output.stat().st_size / 2**20
    print(f"wrote {output} ({size:.1f} MiB, opset {args.opset}, {model.arch} "
          f"{model.input_spec.height}x{model.input_spec.width}, dynamic batch)")
    for note in copy.deepcopy(model).to_graph_decoding():
        print(f"note: {folder} {note}")
    if not args.no_check:
        diff, same = check_parity(folder, output)
        print(f"check: max |outputs(torch) - outputs(onnxruntime)| = {diff:.2e}, texts equal: {same}")
        if not same or diff > 1e-3:
            print("error: the exported graph does not match the PyTorch model", file=sys.stderr)
            return 1
    if args.int8:
        try:
            quantize_onnx_int8(output, int8_output, n=args.calib_size)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        size = int8_output.stat().st_size / 2**20
        print(f"wrote {int8_output} ({size:.1f} MiB, int8: QDQ, uint8 activations, int8 per-channel weights, "
              f"calibrated on {args.calib_size} synthetic plates)")
        if not args.no_check:
            c = check_int8_agreement(folder, int8_output)
            flips = ("" if c.max_flip_confidence is None else
                     f"; PyTorch's confidence on the others: at most {c.max_flip_confidence:.2f}")
            print(f"check (int8): texts equal to PyTorch's on {c.agree}/{c.plates} synthetic plates "
                  f"({100 * c.share:.1f}%, at least {100 * INT8_MIN_AGREEMENT:.0f}% required{flips})")
            if c.share < INT8_MIN_AGREEMENT:
                print("error: the int8 graph reads too many plates differently from the PyTorch model",
                      file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
