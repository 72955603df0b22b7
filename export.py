"""Export a trained model for deployment.

    python export.py --weights runs/crnn/<run>/best --format onnx [--output model.onnx] [--opset 17]

The ONNX graph takes ``images`` [batch, 3, H, W] (float32 RGB in [-1, 1], the
model's input size; the batch axis is dynamic) and returns per-step scores;
turning them into text runs outside the graph, in numpy, with the same
tokenizer code as PyTorch (``inference.ONNX_DECODERS``):

- CRNN: ``logits`` [batch, T, blank + charset]; greedy CTC decoding outside.
- attention (``attn``): the whole greedy loop is in the graph (a fixed
  max_label_length + 1 steps, each feeding its argmax back; ``nar`` decoding and
  refinement passes too), giving ``log_probs`` [batch, T, EOS + charset]; outside,
  the argmax is read up to EOS. Beam search is not exported.

The model's config.json content (arch, charset, input size) is embedded in the
graph's metadata_props, so the .onnx file alone is enough for
``predict.py --weights model.onnx`` and ``inference.load_model``.

After writing, the export is checked: ONNX Runtime and PyTorch must give the
same texts, and outputs within 1e-3 (the max abs difference is printed), on a
few synthetic plates and noise images (``--no-check`` skips it).
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
from typing import Callable

import numpy as np
import torch
from torch import nn

from inference import (ONNX_INPUT, ONNX_META_CONFIG, ONNX_META_GRAPH, WeightsError, load_model,
                       resolve_weights)

DEFAULT_OPSET = 17


@dataclass
class OnnxGraphSpec:
    """How one model is exported: the module to trace, its output names, the numpy decoder."""

    module: nn.Module  # images [B, 3, H, W] -> the outputs, traced with a dynamic batch axis
    outputs: tuple[str, ...]
    decoder: str  # a key of inference.ONNX_DECODERS


class _Forward(nn.Module):
    """``model(images)`` with no texts: the inference path of the model's forward."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor):
        return self.model(images)


class _AttnGreedy(nn.Module):
    """The attention model's greedy decoding (``AttnRecognizer.generate`` with beam_width 1) as a
    fixed loop of ``max_steps`` steps, without the early exit once every plate has read EOS.

    The early exit is the one data-dependent branch of ``generate``: a trace would freeze the
    number of steps of the example batch. Steps after a plate's EOS change nothing in its
    output (they keep the EOS rows), so the result equals ``generate``'s; the content keys
    and values of the steps so far are concatenated instead of written into a preallocated
    cache (an ONNX Concat rather than in-place slice updates). Refinement passes
    (``refine_iters``) follow, as in ``generate``.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        m = self.model
        memory = m.encode(images)
        memory_kv = [layer.memory_kv(memory) for layer in m.layers]
        b = images.shape[0]
        eos_rows = m._eos_rows(b, m.max_steps, memory)
        tokens = torch.full((b,), m.tokenizer.bos, dtype=torch.long, device=images.device)
        done = torch.zeros(b, dtype=torch.bool, device=images.device)
        keys: list[list[torch.Tensor]] = [[] for _ in m.layers]
        values: list[list[torch.Tensor]] = [[] for _ in m.layers]
        rows = []
        for i in range(m.max_steps):
            content = m._step_embedding(tokens, i)
            q = m._queries(b, i, i + 1)
            for li, (layer, mkv) in enumerate(zip(m.layers, memory_kv)):
                k, v = layer.content_kv(content)
                keys[li].append(k)
                values[li].append(v)
                q = layer(q, (torch.cat(keys[li], 2), torch.cat(values[li], 2)), mkv, None)
            logp = m.head(m.norm(q[:, 0])).float().log_softmax(-1)
            cls = logp.argmax(-1).masked_fill(done, 0)
            rows.append(torch.where(done[:, None], eos_rows[:, i], logp))
            done = done | (cls == 0)
            tokens = m.tokenizer.class_to_token(cls)
        logp = torch.stack(rows, 1)
        for _ in range(m.config.refine_iters):
            logp = m._refine(memory_kv, logp.argmax(-1))
        return logp


def _crnn_graph(model) -> OnnxGraphSpec:
    return OnnxGraphSpec(_Forward(model), ("logits",), "ctc_greedy")


def _attn_graph(model) -> OnnxGraphSpec:
    cfg = model.config
    if cfg.decoding == "nar":  # one parallel pass (+ refinement): no data-dependent control flow
        return OnnxGraphSpec(_Forward(model), ("log_probs",), "attn_argmax")
    if cfg.beam_width > 1:
        raise ValueError(
            f"ONNX export of beam search (model.beam_width={cfg.beam_width}) is not implemented: its "
            "loop ends when the best beam has ended, which a traced graph cannot express. "
            "Greedy (beam_width 1) and nar decoding export."
        )
    return OnnxGraphSpec(_AttnGreedy(model), ("log_probs",), "attn_argmax")


# arch -> the graph to export for a model of that arch.
ONNX_GRAPHS: dict[str, Callable[[nn.Module], OnnxGraphSpec]] = {
    "crnn": _crnn_graph,
    "attn": _attn_graph,
}


@contextlib.contextmanager
def _bool_cumsum_as_int(opset: int):
    """While exporting, write ``torch.cumsum`` of a bool tensor (``AttnRecognizer._after_eos``,
    ``_refine``) as a cast to int64 then CumSum: torch sums bools as int64, but the exporter's
    own translation feeds the bool to ONNX CumSum, which accepts numbers only."""

    def cumsum(g, self, dim, dtype=None):
        typ = self.type()
        if hasattr(typ, "scalarType") and typ.scalarType() == "Bool":
            self = g.op("Cast", self, to_i=7)  # TensorProto.INT64
        return g.op("CumSum", self, dim)

    torch.onnx.register_custom_op_symbolic("aten::cumsum", cumsum, opset)
    try:
        yield
    finally:
        torch.onnx.unregister_custom_op_symbolic("aten::cumsum", opset)


def export_onnx(model, output: str | os.PathLike, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``model`` (a PlateRecognizer) to ``output`` as a self-contained ONNX file."""
    import onnx

    if model.arch not in ONNX_GRAPHS:
        raise ValueError(
            f"ONNX export of arch {model.arch!r} is not implemented (exportable: {', '.join(sorted(ONNX_GRAPHS))})"
        )
    model = copy.deepcopy(model).float().cpu().eval()  # the caller's model stays where it is
    spec = ONNX_GRAPHS[model.arch](model)
    module = spec.module.eval()
    h, w = model.input_spec.height, model.input_spec.width
    dummy = torch.zeros(2, 3, h, w)
    dynamic = {ONNX_INPUT: {0: "batch"}, **{name: {0: "batch"} for name in spec.outputs}}
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=output.parent) as tmp:
        raw = Path(tmp) / "graph.onnx"
        with warnings.catch_warnings(), _bool_cumsum_as_int(opset):
            # The TorchScript exporter (no onnxscript dependency) warns that it is legacy, and that a GRU
            # exported at batch > 1 with batch-sized initial states breaks other batch sizes; the
            # models here pass no initial state (ONNX GRU defaults to zeros), so any batch works
            # (checked below and in tests/test_export.py).
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, (dummy,), str(raw), dynamo=False, opset_version=opset,
                input_names=[ONNX_INPUT], output_names=list(spec.outputs), dynamic_axes=dynamic,
                do_constant_folding=True,
            )
        proto = onnx.load(str(raw))
        meta = {
            ONNX_META_CONFIG: json.dumps(model.to_config_dict()),
            ONNX_META_GRAPH: json.dumps({"input": ONNX_INPUT, "outputs": list(spec.outputs),
                                         "decoder": spec.decoder, "layout": "NCHW RGB float32 [-1, 1]"}),
        }
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

    torch_reader = load_model(weights)
    ort_reader = load_model(onnx_path)
    gen = SyntheticPlateGenerator(seed=seed)
    s = torch_reader.input_spec
    plates = torch.stack([torch_reader.preprocess(gen().image) for _ in range(n)])
    noise = torch.rand(2, 3, s.height, s.width, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    x = torch.cat([plates, noise])
    ref = torch_reader.forward(x)
    got = ort_reader.forward(x)
    ref_outs = ref if isinstance(ref, (tuple, list)) else (ref,)
    diff = max(float(np.abs(np.asarray(r.float().cpu()) - got[name]).max())
               for r, name in zip(ref_outs, ort_reader.output_names))
    same = [p.text for p in torch_reader.predict_tensor(x)] == [p.text for p in ort_reader.predict_tensor(x)]
    return diff, same


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True, help="model folder (config.json + model.safetensors)")
    ap.add_argument("--format", default="onnx", choices=["onnx"])
    ap.add_argument("--output", default="model.onnx", help="output file (default: model.onnx)")
    ap.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    ap.add_argument("--no-check", action="store_true", help="skip the PyTorch / ONNX Runtime comparison")
    args = ap.parse_args(argv)
    try:
        kind, folder = resolve_weights(args.weights)
        if kind != "folder":
            raise WeightsError(f"{args.weights} is already an ONNX model; export takes a model folder")
        from models import load_model as load_folder

        model = load_folder(folder)
        output = Path(args.output)
        export_onnx(model, output, opset=args.opset)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    size = output.stat().st_size / 2**20
    print(f"wrote {output} ({size:.1f} MiB, opset {args.opset}, {model.arch} "
          f"{model.input_spec.height}x{model.input_spec.width}, dynamic batch)")
    if not args.no_check:
        diff, same = check_parity(folder, output)
        print(f"check: max |outputs(torch) - outputs(onnxruntime)| = {diff:.2e}, texts equal: {same}")
        if not same or diff > 1e-3:
            print("error: the exported graph does not match the PyTorch model", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
