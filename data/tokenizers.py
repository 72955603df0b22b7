"""Tokenizers: text <-> class indices, one per decoding family.

A plate alphabet has ~36 symbols, so a learned subword tokenizer
(sentencepiece, HF tokenizers) has nothing to merge: a plate is read one
character at a time, and these two small classes are the whole job.

Decoding also runs without torch, in numpy (:data:`NUMPY_DECODERS`: an exported graph's outputs
-> texts, for ``inference.onnx``); torch is imported only where training makes tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from data.text import Charset

if TYPE_CHECKING:
    import torch


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax in float32 numpy (the one the numpy decoders and the class head's readers use)."""
    x = np.asarray(x, dtype=np.float32)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@dataclass
class DecodedText:
    text: str
    confidence: float  # plate confidence: product of the character confidences
    char_confidences: list[float]


def best_path_steps(classes: list[int], confs: list[float], blank: int = 0) -> list[tuple[int, int]]:
    """The characters of a CTC best path: (class, step) per emitted character, repeats collapsed,
    blanks dropped; the step is the one of its run where the character was most probable."""
    out: list[tuple[int, int]] = []
    prev = blank
    for t, k in enumerate(classes):
        if k != blank:
            if k != prev:
                out.append((k, t))
            elif confs[t] > confs[out[-1][1]]:
                out[-1] = (k, t)
        prev = k
    return out


class CTCTokenizer:
    """Class 0 is the CTC blank; class i+1 is ``charset.chars[i]``."""

    blank = 0

    def __init__(self, charset: Charset):
        self.charset = charset
        self._index = {c: i + 1 for i, c in enumerate(charset.chars)}

    @property
    def num_classes(self) -> int:
        return len(self.charset) + 1

    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Concatenated targets and their lengths, as ``nn.CTCLoss`` takes them."""
        import torch

        targets = [self._index[c] for t in texts for c in t]
        lengths = [len(t) for t in texts]
        return torch.tensor(targets, dtype=torch.long), torch.tensor(lengths, dtype=torch.long)

    @staticmethod
    def min_steps(text: str) -> int:
        """Time steps CTC needs to emit ``text``: one per character plus a blank between repeats."""
        return len(text) + sum(a == b for a, b in zip(text, text[1:]))

    def decode_greedy(self, probs: torch.Tensor | np.ndarray) -> list[DecodedText]:
        """Best-path decoding of ``probs`` [B, T, C] (softmax output; a tensor or a numpy array,
        e.g. from ONNX Runtime).

        A character's confidence is the highest probability over the run of
        steps that emitted it.
        """
        if hasattr(probs, "detach"):  # a torch tensor
            conf, idx = probs.detach().float().max(dim=-1)  # [B, T]
            idx, conf = idx.tolist(), conf.tolist()
        else:
            probs = np.asarray(probs, dtype=np.float32)
            best = probs.argmax(-1)
            idx, conf = best.tolist(), np.take_along_axis(probs, best[..., None], -1)[..., 0].tolist()
        out = []
        for seq, seq_conf in zip(idx, conf):
            emitted = best_path_steps(seq, seq_conf, self.blank)
            chars = [self.charset.chars[k - 1] for k, _ in emitted]
            confs = [seq_conf[t] for _, t in emitted]
            plate_conf = 1.0
            for p in confs:
                plate_conf *= p
            out.append(DecodedText("".join(chars), plate_conf if chars else 0.0, confs))
        return out

    def decode_logits(self, logits: np.ndarray) -> list[DecodedText]:
        """Best-path decoding of per-step logits [B, T, C] in numpy (softmax, then :meth:`decode_greedy`)."""
        return self.decode_greedy(softmax(logits))


class AttnTokenizer:
    """Tokens for autoregressive decoders: PAD=0, BOS=1, EOS=2, then the charset.

    A decoder predicts over ``num_classes`` = EOS + charset (BOS and PAD are
    never targets); use :meth:`class_to_token` / :meth:`token_to_class` to move
    between the two index spaces.
    """

    pad, bos, eos = 0, 1, 2
    specials = ("<pad>", "<bos>", "<eos>")

    def __init__(self, charset: Charset):
        self.charset = charset
        self._index = {c: i + len(self.specials) for i, c in enumerate(charset.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.charset) + len(self.specials)

    @property
    def num_classes(self) -> int:
        return len(self.charset) + 1  # EOS + characters

    def encode(self, texts: list[str], max_len: int) -> torch.Tensor:
        """[B, max_len + 2] tokens: BOS, text, EOS, then PAD."""
        import torch

        out = torch.full((len(texts), max_len + 2), self.pad, dtype=torch.long)
        for i, t in enumerate(texts):
            if len(t) > max_len:
                raise ValueError(f"label {t!r} is longer than max_label_length={max_len}")
            ids = [self.bos] + [self._index[c] for c in t] + [self.eos]
            out[i, : len(ids)] = torch.tensor(ids)
        return out

    def token_to_class(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids (EOS or characters) to output class ids (EOS=0, chars from 1)."""
        return tokens - self.eos

    def class_to_token(self, classes: torch.Tensor) -> torch.Tensor:
        return classes + self.eos

    def decode(self, classes: torch.Tensor | np.ndarray, probs: torch.Tensor | np.ndarray) -> list[DecodedText]:
        """Texts from output classes [B, L] and their probabilities [B, L] (tensors or numpy arrays),
        stopping at EOS (class 0)."""
        if hasattr(probs, "detach"):  # a torch tensor
            probs = probs.detach().float()
        out = []
        for seq, seq_p in zip(classes.tolist(), probs.tolist()):
            chars: list[str] = []
            confs: list[float] = []
            eos_p = 1.0
            for k, p in zip(seq, seq_p):
                if k == 0:
                    eos_p = p
                    break
                chars.append(self.charset.chars[k - 1])
                confs.append(p)
            plate_conf = eos_p
            for p in confs:
                plate_conf *= p
            out.append(DecodedText("".join(chars), plate_conf if chars else 0.0, confs))
        return out

    def decode_log_probs(self, log_probs: np.ndarray) -> list[DecodedText]:
        """The argmax reading of per-step log-probabilities [B, T, C] in numpy, up to EOS."""
        log_probs = np.asarray(log_probs, dtype=np.float32)
        return self.decode(log_probs.argmax(-1), np.exp(log_probs.max(-1)))


# Numpy decoders of a model's raw outputs, by name: (charset, outputs by name) -> texts. An
# architecture names its own (``PlateRecognizer.onnx_decoder``); export.py writes the name into
# the exported graph, whose reader (inference.onnx) looks it up here.
NumpyDecoder = Callable[[Charset, "dict[str, np.ndarray]"], "list[DecodedText]"]
NUMPY_DECODERS: dict[str, NumpyDecoder] = {
    "ctc_greedy": lambda charset, outputs: CTCTokenizer(charset).decode_logits(outputs["logits"]),
    "attn_argmax": lambda charset, outputs: AttnTokenizer(charset).decode_log_probs(outputs["log_probs"]),
}
