"""Exported graphs: the metadata contract ``export.py`` writes and :class:`OnnxPlateReader`, which
reads plates with ONNX Runtime, numpy and OpenCV alone (no torch, no albumentations).

An ``.onnx`` file from ``export.py`` is self-contained: its metadata_props hold the model's
config.json content (:data:`ONNX_META_CONFIG`) and a description of the graph
(:data:`ONNX_META_GRAPH`: input name, output names, and the numpy decoder that turns the outputs
into text, a key of ``data.tokenizers.NUMPY_DECODERS`` named by the architecture).
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from data.images import preprocess_eval
from data.text import Charset
from data.tokenizers import NUMPY_DECODERS
from inference.readers import PlateReader
from inference.weights import WeightsError
from models.interface import InputSpec, PlatePrediction, add_class_predictions

# Keys of an exported graph's metadata_props.
ONNX_META_CONFIG = "plate_ocr.config"  # the model's config.json content
ONNX_META_GRAPH = "plate_ocr.graph"  # {"input": ..., "outputs": [...], "decoder": ..., "layout": ...}
ONNX_META_QUANT = "plate_ocr.quantization"  # an int8 graph only: how it was quantised (JSON)
ONNX_INPUT = "images"
ONNX_LAYOUT = "NCHW RGB float32 [-1, 1]"


def graph_metadata(config: dict, outputs: Sequence[str], decoder: str) -> dict[str, str]:
    """The metadata_props ``export.py`` writes into a graph: what :func:`onnx_metadata` reads back."""
    return {
        ONNX_META_CONFIG: json.dumps(config),
        ONNX_META_GRAPH: json.dumps({"input": ONNX_INPUT, "outputs": list(outputs), "decoder": decoder,
                                     "layout": ONNX_LAYOUT}),
    }


def onnx_metadata(session: Any, path: Path) -> tuple[dict, dict]:
    """(model config, graph description) from an exported graph's metadata_props."""
    meta = session.get_modelmeta().custom_metadata_map
    if ONNX_META_CONFIG not in meta or ONNX_META_GRAPH not in meta:
        raise WeightsError(
            f"{path} is an ONNX model but not one written by export.py: its metadata has no "
            f"{ONNX_META_CONFIG!r} (the model's config: arch, charset, input size). "
            "Export it with: python export.py --weights MODEL_FOLDER --format onnx"
        )
    try:
        config, graph = json.loads(meta[ONNX_META_CONFIG]), json.loads(meta[ONNX_META_GRAPH])
        Charset(config["charset"]), InputSpec(**config["input"]), config["arch"]  # noqa: B018 - validate
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise WeightsError(f"{path}: invalid {ONNX_META_CONFIG} metadata: {e!r}") from e
    return config, graph


def onnx_session(path: str | os.PathLike, threads: int | None = None, providers: Sequence[str] | None = None):
    """An ONNX Runtime session of ``path`` (``threads``: intra-op threads, None: one per core);
    a :class:`WeightsError` naming the file if it is not a readable graph."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads is not None:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(os.fspath(path), sess_options=opts,
                                    providers=list(providers or ["CPUExecutionProvider"]))
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise WeightsError(f"{path} is not a readable ONNX model: {e}") from e


class OnnxPlateReader(PlateReader):
    """An ``.onnx`` file from ``export.py`` run by ONNX Runtime on the CPU.

    ``threads`` sets ONNX Runtime's intra-op threads (None: its default, one per core).
    Preprocessing is ``data.images.preprocess_eval``, the training-time eval transform in numpy.
    """

    backend = "onnxruntime"

    def __init__(self, path: Path, batch_size: int = 64, threads: int | None = None,
                 providers: Sequence[str] | None = None):
        session = onnx_session(path, threads, providers)
        config, graph = onnx_metadata(session, path)
        if graph.get("decoder") not in NUMPY_DECODERS:
            raise WeightsError(
                f"{path}: its graph needs decoder {graph.get('decoder')!r}, which this version does not "
                f"know (known: {', '.join(sorted(NUMPY_DECODERS))})"
            )
        super().__init__(config, path, batch_size)
        self.session = session
        self.graph = graph
        self.decoder = NUMPY_DECODERS[graph["decoder"]]
        self.input_name = graph.get("input", ONNX_INPUT)
        self.output_names = [o.name for o in session.get_outputs()]
        s = self.input_spec
        self.transform = functools.partial(preprocess_eval, height=s.height, width=s.width,
                                           keep_aspect=s.keep_aspect, stretch=s.stretch_contrast, dark=s.dark_text,
                                           grey=s.grey)

    def forward(self, images: Any) -> dict[str, np.ndarray]:
        """The graph's outputs by name for a preprocessed batch (a numpy array or a CPU tensor)."""
        x = np.ascontiguousarray(np.asarray(images), dtype=np.float32)
        return dict(zip(self.output_names, self.session.run(self.output_names, {self.input_name: x})))

    def decode(self, outputs: dict[str, np.ndarray]) -> list[PlatePrediction]:
        preds = [PlatePrediction(d.text, d.confidence, d.char_confidences)
                 for d in self.decoder(self.charset, outputs)]
        return add_class_predictions(preds, outputs)
