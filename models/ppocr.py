"""PP-OCRv4's text recogniser (PaddleOCR, Apache-2.0) as a CRNN backbone: ``model.backbone: ppocrv4_rec``.

A general OCR engine's line reader, trained on a great deal of real text, reads real plate
crops zero-shot better than our readers trained on synthetic plates
(docs/experiments.md, "A general recogniser as the start"). Its network (a PP-LCNetV3 CNN and an
SVTR neck: ~1.7 M parameters, stride 8 across, a 48-pixel-high line in, one 120-wide feature
vector per 8 columns out) is built from the published ONNX graph, which the project keeps beside
this file with its licence (``pretrained/``), through onnx2torch: a torch.fx module whose weights
train and export like any other. The graph's own classifier over its 6,625-symbol dictionary is
not part of the backbone; :meth:`PPOCRFeatures.head_for` gives its rows for a charset, so a CRNN
without an RNN (``model.rnn_layers: 0``) starts from the engine's own readings.

The engine reads BGR in [-1, 1]; the project's tensors are RGB in [-1, 1]: the backbone flips
the channels itself.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from pathlib import Path

import torch
from torch import nn

NAME = "ppocrv4_rec"  # model.backbone
GRAPH = Path(__file__).resolve().parent / "pretrained" / "ppocrv4_rec.onnx"
GRAPH_SHA256 = "48fc40f24f6d"  # first hex digits of the file's sha256 (checked on load)
HEIGHT = 48  # the line height the graph reads (its pooling leaves one feature row only at 48)


@functools.lru_cache(maxsize=1)
def _graph() -> tuple:
    """The recogniser's ONNX graph prepared for onnx2torch (cut before its classifier, weights
    as initialisers), its dictionary and its classifier's weight and bias; cached per process."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if not GRAPH.is_file():
        raise FileNotFoundError(f"{GRAPH} is missing: it ships with the repository (models/pretrained/)")
    raw = GRAPH.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if not digest.startswith(GRAPH_SHA256):
        raise ValueError(f"{GRAPH}: sha256 {digest[:12]}, expected {GRAPH_SHA256}...: not the published graph")
    m = onnx.load_from_string(raw)
    g = m.graph
    dictionary = next(p.value for p in m.metadata_props if p.key == "character").split("\n")
    # Paddle's exporter writes the weights as Constant nodes; onnx2torch makes parameters of initialisers.
    nodes = []
    for n in g.node:
        if n.op_type == "Constant":
            g.initializer.append(numpy_helper.from_array(numpy_helper.to_array(n.attribute[0].t), n.output[0]))
        else:
            nodes.append(n)
    head = max(i for i, n in enumerate(nodes) if n.op_type == "MatMul")  # the classifier: features @ W + b
    features, weight = nodes[head].input
    bias = next(x for x in nodes[head + 1].input if x != nodes[head].output[0])
    del g.node[:]
    g.node.extend(nodes[:head])
    del g.output[:]
    g.output.append(helper.make_tensor_value_info(features, TensorProto.FLOAT, ["batch", "steps", "channels"]))
    dims = g.input[0].type.tensor_type.shape.dim
    dims[0].dim_param, dims[3].dim_param = "batch", "width"
    dims[2].ClearField("dim_param")
    dims[2].dim_value = HEIGHT
    head_arrays = {k: t for t in g.initializer if (k := t.name) in (weight, bias)}
    m = onnx.shape_inference.infer_shapes(m)
    # onnx2torch sizes a BatchNorm by its input's rank, which shape inference loses after the
    # neck's computed reshapes: every one of them normalises a 4-D map.
    known = {v.name: v for v in m.graph.value_info}
    for n in m.graph.node:
        if n.op_type == "BatchNormalization":
            v = known.get(n.input[0])
            if v is None or len(v.type.tensor_type.shape.dim) != 4:
                if v is not None:
                    m.graph.value_info.remove(v)
                m.graph.value_info.append(helper.make_tensor_value_info(n.input[0], TensorProto.FLOAT, list("nchw")))
    used = {x for n in m.graph.node for x in n.input}
    kept = [t for t in m.graph.initializer if t.name in used]
    del m.graph.initializer[:]
    m.graph.initializer.extend(kept)
    head_w = numpy_helper.to_array(head_arrays[weight])  # [channels, 1 + dictionary + space]
    head_b = numpy_helper.to_array(head_arrays[bias])
    return m.SerializeToString(), dictionary, head_w, head_b


def _opset_for_onnx2torch() -> None:
    """onnx2torch (1.5) asks ``torch.onnx.symbolic_helper.GLOBALS`` for the opset being exported;
    torch 2.15 keeps it in the TorchScript exporter's own module. Point the old name at it."""
    from torch.onnx import symbolic_helper

    if not hasattr(symbolic_helper, "GLOBALS"):
        try:
            from torch.onnx._internal.torchscript_exporter._globals import GLOBALS
        except ImportError:  # another torch: onnx2torch finds it itself, or export says why
            return
        symbolic_helper.GLOBALS = GLOBALS


class PPOCRFeatures(nn.Module):
    """PP-OCRv4's recogniser up to its classifier: [B, 3, 48, W] RGB in [-1, 1] -> [B, 120, 1, W/8]."""

    def __init__(self, pretrained: bool = True):
        super().__init__()
        import onnx
        from onnx2torch import convert

        _opset_for_onnx2torch()
        raw, self.dictionary, head_w, head_b = _graph()
        self.body = convert(onnx.load_from_string(raw))
        # Paddle's inference graph folds most norms into the convolutions; the matrices of its
        # attention and MLP layers arrive as buffers: make every weight a parameter.
        for module in self.body.modules():
            for name, buf in list(module.named_buffers(recurse=False)):
                if buf.is_floating_point() and buf.numel() > 1 and "running_" not in name:
                    delattr(module, name)
                    module.register_parameter(name, nn.Parameter(buf.clone()))
        self._head = (torch.from_numpy(head_w.copy()), torch.from_numpy(head_b.copy()))
        self.channels: int = int(head_w.shape[0])
        if not pretrained:
            self._reinitialise()
        probe = 64  # any width the graph reads: the stride across is what it divides by
        self.stride: int = probe // self.output_shape(HEIGHT, probe)[2]

    def _reinitialise(self) -> None:
        for module in self.body.modules():
            if hasattr(module, "reset_parameters") and module is not self.body:
                module.reset_parameters()
        for name, p in self.body.named_parameters():
            if p.dim() >= 2 and "initializers" in name:
                nn.init.trunc_normal_(p, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with warnings.catch_warnings():
            # onnx2torch's Slice indexes with a list: torch warns on every call and reads it as it always
            # has (tests/test_ppocr.py compares the readings with the published graph's)
            warnings.filterwarnings("ignore", message="Using a non-tuple sequence for multidimensional indexing")
            seq = self.body(x.flip(1))  # [B, T, C]; the engine reads BGR
        return seq.transpose(1, 2).unsqueeze(2)

    def head_for(self, chars: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The engine's classifier restricted to CTC blank + ``chars`` (in order): weight
        [1 + len(chars), channels] and bias. A character the dictionary lacks gets a zero row
        and a bias far below the others, so it starts never read."""
        weight, bias = self._head
        index = {c: i + 1 for i, c in enumerate(self.dictionary)}  # class 0 is the blank
        rows = [0] + [index.get(c, -1) for c in chars]
        w = torch.stack([weight[:, r] if r >= 0 else torch.zeros(self.channels) for r in rows])
        b = torch.stack([bias[r] if r >= 0 else bias.min() - 10 for r in rows])
        return w, b

    @torch.no_grad()
    def output_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """(channels, feature height, feature width) for an input of height x width."""
        if height != HEIGHT:
            raise ValueError(f"model.backbone {NAME} reads lines {HEIGHT} pixels high: set model.read_height: "
                             f"{HEIGHT} (the input is {height} pixels high)")
        was_training = self.training
        self.eval()
        try:
            out = self(torch.zeros(1, 3, height, width))
        finally:
            self.train(was_training)
        return int(out.shape[1]), int(out.shape[2]), int(out.shape[3])
