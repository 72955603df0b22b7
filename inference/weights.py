"""Which weights a path holds: a model folder, an exported ``.onnx`` file, or a refusal.

Nothing is unpickled: pickled checkpoints (``.pt``, ``.bin``, ...) are recognised by name and
first bytes and refused, with a message on what to pass instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from models.interface import CONFIG_FILE, WEIGHTS_FILE

# The shipped default model (a save_pretrained folder), relative to the repository root.
DEFAULT_WEIGHTS = Path("weights/crnn_ppocr")
REPO_ROOT = Path(__file__).resolve().parent.parent

ONNX_FILE = "model.onnx"  # the name a model folder may hold an exported graph under
PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".tar"})


class WeightsError(ValueError):
    """A weights path is not a usable model; the message says what it is and what to pass instead."""


def _looks_pickled(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head.startswith(b"PK\x03\x04") or (len(head) >= 2 and head[0] == 0x80 and head[1] <= 5)


def _pickle_refusal(path: Path) -> WeightsError:
    return WeightsError(
        f"{path} looks like a pickled PyTorch checkpoint (torch.save / .pt / .bin). This project never "
        "unpickles files (unpickling can run arbitrary code). Pass a model folder (config.json + "
        "model.safetensors, as training writes to runs/<arch>/<run>/best) or an .onnx file from export.py; "
        "to convert a checkpoint you trust, load it in your own code and call model.save_pretrained(folder)."
    )


def resolve_default_weights() -> Path:
    """:data:`DEFAULT_WEIGHTS` in the current folder, else in the repository; a clear error if it is missing."""
    for base in (Path.cwd(), REPO_ROOT):
        p = base / DEFAULT_WEIGHTS
        if (p / CONFIG_FILE).is_file():
            return p
    raise WeightsError(
        f"no default model at {DEFAULT_WEIGHTS}/ (it holds config.json + model.safetensors and is not in "
        "this checkout). Train one with `python train_accelerate.py --arch crnn` and pass "
        f"--weights runs/crnn/<run>/best, or copy that best/ folder to {DEFAULT_WEIGHTS}/."
    )


def resolve_weights(path: str | os.PathLike | None) -> tuple[str, Path]:
    """``("folder", path)`` or ``("onnx", path)`` for a weights path (None: the default model);
    :class:`WeightsError` otherwise."""
    if path is None:
        return "folder", resolve_default_weights()
    p = Path(path)
    if not p.exists():
        raise WeightsError(f"{p}: weights not found (expected a model folder or an .onnx file)")
    if p.is_file():
        if p.suffix.lower() == ".onnx":
            return "onnx", p
        if p.suffix.lower() in PICKLE_SUFFIXES or _looks_pickled(p):
            raise _pickle_refusal(p)
        if p.name in (CONFIG_FILE, WEIGHTS_FILE) or p.suffix.lower() == ".safetensors":
            raise WeightsError(f"{p} is one file of a model folder: pass the folder {p.parent} instead")
        raise WeightsError(
            f"{p} is not a model: expected a folder with {CONFIG_FILE} + {WEIGHTS_FILE}, or an .onnx file"
        )
    # A folder.
    if (p / CONFIG_FILE).is_file() and (p / WEIGHTS_FILE).is_file():
        return "folder", p
    if (p / ONNX_FILE).is_file():
        return "onnx", p / ONNX_FILE
    pickles = sorted(c.name for c in p.iterdir() if c.is_file() and c.suffix.lower() in PICKLE_SUFFIXES)
    onnx_files = sorted(c.name for c in p.iterdir() if c.is_file() and c.suffix.lower() == ".onnx")
    hint = ""
    if pickles:
        hint = (f" It holds {', '.join(pickles[:3])}: pickled checkpoints are never loaded here "
                "(unpickling can run arbitrary code).")
    elif onnx_files:
        hint = f" It holds {', '.join(onnx_files[:3])}: pass that file itself."
    raise WeightsError(
        f"{p} is not a model folder: expected {CONFIG_FILE} and {WEIGHTS_FILE} inside it "
        f"(as save_pretrained writes them).{hint}"
    )
