"""A general OCR engine's text recogniser on every real plate set: the figures our readers must beat.

    python benchmarks/general_ocr.py --rec-onnx ch_PP-OCRv4_rec_infer.onnx               # crops as 48x224
    python benchmarks/general_ocr.py --rec-onnx ch_PP-OCRv4_rec_infer.onnx --width 0     # the engine's way
    python benchmarks/general_ocr.py --rec-onnx FILE --sets "/data/plates/*" --out ppocr.json

The recogniser is a CTC line reader exported to ONNX whose metadata holds its dictionary
(``character``, one symbol a line; class 0 the blank, then the dictionary, then a space), as
PP-OCR's are. PP-OCRv4's comes inside the ``rapidocr-onnxruntime`` wheel (Apache-2.0); nothing
is downloaded here:

    pip download --no-deps rapidocr-onnxruntime==1.4.4 -d /tmp/rapidocr
    unzip -j /tmp/rapidocr/rapidocr_onnxruntime-1.4.4-py3-none-any.whl '*/ch_PP-OCRv4_rec_infer.onnx' -d .

Each crop is read as given (no detector: the sets are plate crops), resized to the recogniser's
height (48) and to ``--width`` pixels (224 by default, the width our CRNN reads; ``0`` keeps each
crop's aspect ratio, capped at 480, as the engine itself does), in BGR scaled to [-1, 1]. Its
readings are restricted to the plate charset (blank and ``0-9A-Z``: the largest class among them
at each step), so the engine is scored on plate characters as our readers are, with
``real_plates.py``'s scoring: exact match and CER per set, the macro mean and the worst set.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.real_plates import add_set_args, read_sets, sets_and_equivalences  # noqa: E402
from data.images import as_rgb, normalize, resize_plate  # noqa: E402
from data.text import DEFAULT_CHARSET  # noqa: E402
from data.tokenizers import CTCTokenizer  # noqa: E402
from inference.onnx import onnx_session  # noqa: E402
from inference.readers import PlateReader  # noqa: E402
from models.interface import PlatePrediction  # noqa: E402

REC_HEIGHT = 48  # PP-OCR's recognisers read lines 48 pixels high
MAX_WIDTH = 480  # --width 0: the widest line read


class GeneralOcrReader(PlateReader):
    """A CTC line recogniser (ONNX, dictionary in its metadata) restricted to a plate charset."""

    backend = "onnxruntime"

    def __init__(self, path: str | Path, width: int = 224, charset: str = DEFAULT_CHARSET,
                 threads: int | None = None):
        path = Path(path)
        self.session = onnx_session(path, threads)  # a WeightsError (a ValueError) names an unreadable file
        meta = self.session.get_modelmeta().custom_metadata_map
        if "character" not in meta:
            raise ValueError(f"{path}: its metadata has no 'character' dictionary (a PP-OCR recogniser's has)")
        vocab = ["<blank>", *meta["character"].split("\n"), " "]
        missing = [c for c in charset if c not in vocab]
        if missing:
            raise ValueError(f"{path}: its dictionary lacks {''.join(missing)!r} of the charset")
        # the engine's class of each of ours: blank first, then the charset in order (CTCTokenizer's)
        self.classes = np.array([0] + [vocab.index(c) for c in charset])
        if width < 0:
            raise ValueError(f"--width must be 0 (keep each crop's aspect) or a width in pixels, got {width}")
        self.width = int(width)
        super().__init__({"arch": "general-ocr", "charset": charset,
                          "input": {"height": REC_HEIGHT, "width": self.width or MAX_WIDTH}}, path)
        self.tokenizer = CTCTokenizer(self.charset)
        self.input_name = self.session.get_inputs()[0].name
        self.transform = self.preprocess

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        img = as_rgb(rgb)
        width = self.width
        if not width:
            h, w = img.shape[:2]
            width = max(16, min(math.ceil(REC_HEIGHT * w / h), MAX_WIDTH))
        return normalize(resize_plate(img, REC_HEIGHT, width)[..., ::-1])  # BGR, as the engine reads

    def forward(self, images: Any) -> dict[str, np.ndarray]:
        x = np.ascontiguousarray(np.asarray(images), dtype=np.float32)
        probs = self.session.run(None, {self.input_name: x})[0][..., self.classes]
        return {"probs": probs / probs.sum(-1, keepdims=True)}

    def decode(self, outputs: dict[str, np.ndarray]) -> list[PlatePrediction]:
        return [PlatePrediction(d.text, d.confidence, d.char_confidences)
                for d in self.tokenizer.decode_greedy(outputs["probs"])]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rec-onnx", required=True, help="the recogniser's .onnx file (see above)")
    p.add_argument("--width", type=int, default=224,
                   help="read crops resized to 48 x WIDTH; 0 keeps each crop's aspect (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: one per core)")
    add_set_args(p)
    args = p.parse_args(argv)

    sets, equivalences = sets_and_equivalences(args)
    try:
        reader = GeneralOcrReader(args.rec_onnx, args.width, threads=args.threads)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    batch_size = 64 if args.width else 1  # crops of their own widths are read one at a time
    title = f"{Path(args.rec_onnx).name}, 48x{args.width or 'aspect'}, restricted to {reader.charset.chars}"
    return read_sets(reader, sets, equivalences, args.limit, batch_size, title, {"reader": title}, args.out)


if __name__ == "__main__":
    main()
