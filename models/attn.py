"""Attention decoder: timm encoder (ViT or CNN) -> image tokens -> transformer decoder.

Encoder, chosen by ``model.encoder``:

- a ViT (``vit_*`` / ``deit_*`` timm names) built at the configured input size
  with ``model.patch_size`` (height, width) patches and, if given,
  ``model.vit_dim`` / ``vit_depth`` / ``vit_heads``; every patch is a token;
- any other timm CNN, cut at ``model.encoder_stage`` (``models.backbones.TimmFeatures``):
  every cell of its 2D feature map is a token, projected to ``model.d_model``
  with learned row + column position embeddings sized from the feature map.

Optional ``model.enc_layers`` transformer layers then mix the tokens.

Decoder: a small transformer decoder of our own with two streams, in the
manner of PARSeq (Bautista & Atienza, 2022): the *query* stream at output
position i starts from a learned position query; it attends (self-attention)
to the *content* stream -- the embeddings of BOS and the characters read so
far, which are never updated -- and to the image tokens (cross-attention).
Because the content stream does not change between steps, its keys and values
are computed once per token and cached: an autoregressive step costs one
query, not the whole prefix.

Training: teacher forcing with cross-entropy (``model.label_smoothing``). With
``model.perm_num`` > 1 the decoder is also trained on random orderings of the
output positions (permutation language modelling: canonical, reversed, and
random pairs of orderings and their mirrors); this is what makes
non-autoregressive decoding (``model.decoding: nar``) and iterative refinement
(``model.refine_iters``, a 'cloze' pass where each position sees every other
one) possible.

Inference (``forward(images)``): greedy or beam search (``model.beam_width``)
autoregressive decoding, or one parallel NAR pass; then ``refine_iters``
refinement passes. The output is a tensor of log-probabilities ``[B, T, C]``
(T = max_label_length + 1 steps, C = EOS + charset) whose argmax per step is
the chosen class; ``decode`` reads it into :class:`PlatePrediction`. A step
after the plate's EOS reads EOS with probability 1; in beam-search output only
the chosen class of each step carries its log-probability.

Where the plate stops (``model.length_loss_weight`` > 0): a length head
(``models.heads.LengthHead``) predicts the number of characters from the
image tokens (learned queries attending over the whole token grid, so one- and
two-row plates alike), trained jointly with cross-entropy weighted by
``length_loss_weight``. Decoding then scores each candidate reading as its
decoder log-probability + ``model.length_weight`` x the head's log-probability
of its length: greedy takes the best of the greedy path's prefixes ending in
EOS (so it can stop earlier than the argmax would), beam search the best of
its finished beams (so it can also stop later); ``text_log_prob`` (joint and
multi-view reading) scores a text the same way. ``nar`` decoding ignores the
head. Without the head (length_loss_weight 0, every model trained before it)
nothing changes.

Joint CTC-attention decoding (``model.ctc_loss_weight`` > 0): a CTC head
(``models.heads.ColumnCTCHead``) reads the token columns beside the decoder,
trained with CTC loss on one-row plates. Greedy decoding of a plate the rows
head calls one-row then takes, at each step, the class of the best
(1 - ``model.ctc_weight``) x decoder log-probability + ``ctc_weight`` x gain in
CTC prefix score (``models.heads.CTCPrefixScorer``), so the head has a say in
every character and in where the reading stops; beam search compares its best
beam with the head's greedy reading as whole readings. The ONNX export holds
the greedy joint decoding. Without the head nothing changes.

Sizes are derived, never configured twice: classes = EOS + charset (from the
charset), decoder positions = ``max_label_length`` + 1 (content: BOS + the
characters; outputs: the characters + EOS), the token grid from the encoder
at the configured input size.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import timm
from timm.layers import resample_abs_pos_embed
import torch
import torch.nn.functional as F
from torch import nn

from data.text import Charset
from data.tokenizers import AttnTokenizer, CTCTokenizer
from models.backbones import TimmFeatures, check_backbone_name
from models.base import Capabilities, InputSpec, OutputTuple, PlatePrediction, PlateRecognizer
from models.heads import (ColumnCTCHead, CTCPrefixScorer, LengthHead, PlateClassHead, ctc_log_likelihood, ctc_loss,
                          length_loss)
from models.registry import register_model

VIT_PREFIXES = ("vit_", "deit_", "deit3_")
MAX_DECODER_POSITIONS = 64
DECODINGS = ("ar", "nar")
IGNORE = -100
# Log-probability written for the classes that were not chosen (beam search) and for
# steps after EOS: finite, so a loss over free-running outputs stays finite.
NEG = -1e4


def is_vit_name(name: str) -> bool:
    return name.startswith(VIT_PREFIXES)


@dataclass
class AttnConfig:
    # --- encoder
    encoder: str = "resnet18"  # vit_*/deit_*: ViT encoder; any other timm CNN: feature-map tokens
    encoder_stage: int = 2  # CNN only: timm feature index to cut at (resnet: 2 = layer2, stride 8)
    pretrained: bool = False  # timm weights; needs them in the local cache (never downloaded here)
    patch_size: list[int] = field(default_factory=lambda: [4, 8])  # ViT only: (height, width)
    vit_dim: int | None = None  # ViT only; None keeps the named model's
    vit_depth: int | None = None
    vit_heads: int | None = None
    enc_layers: int = 0  # extra transformer layers over the encoder tokens
    # --- decoder
    d_model: int = 256
    dec_layers: int = 1
    dec_heads: int = 8
    dec_mlp_ratio: float = 4.0
    dropout: float = 0.1
    max_label_length: int = 12  # decoder positions = this + 1 (characters + EOS)
    label_smoothing: float = 0.1
    perm_num: int = 1  # orderings per batch; 1: left-to-right only, >= 2: permutation LM
    # --- inference
    decoding: str = "ar"  # ar: autoregressive (greedy / beam); nar: all positions at once
    beam_width: int = 1  # ar only; 1 = greedy
    refine_iters: int = 0  # cloze refinement passes after decoding (needs perm_num >= 2)
    # --- plate classification (country and rows, from the pooled image tokens)
    country_head: bool | None = None  # None: on (training turns it off when the data has no country labels)
    cls_loss_weight: float = 0.5
    cls_head_layers: int = 0  # transformer layers over the image tokens inside the head, before pooling
    # --- where the plate stops: a head that predicts the number of characters from the image tokens
    length_loss_weight: float = 0.0  # its loss weight; 0: no length head (older models have none)
    length_weight: float = 1.0  # decoding: a reading scores decoder log-prob + this x length log-prob
    # --- a CTC reader beside the decoder (joint CTC-attention scoring of one-row plates)
    ctc_loss_weight: float = 0.0  # its loss weight; 0: no CTC head (older models have none)
    ctc_weight: float = 0.5  # decoding: a reading scores (1 - this) x decoder log-prob + this x CTC log-prob

    def __post_init__(self) -> None:
        check_backbone_name(self.encoder, "model.encoder")
        for key in ("cls_loss_weight", "length_loss_weight", "length_weight", "ctc_loss_weight"):
            if getattr(self, key) < 0:
                raise ValueError(f"model.{key} must be >= 0, got {getattr(self, key)}")
        if not 0.0 <= self.ctc_weight <= 1.0:
            raise ValueError(f"model.ctc_weight must be in [0, 1], got {self.ctc_weight}")
        if self.encoder_stage < 0:
            raise ValueError(f"model.encoder_stage must be >= 0, got {self.encoder_stage}")
        if len(self.patch_size) != 2 or min(self.patch_size) < 1:
            raise ValueError(f"model.patch_size must be [height, width] of positive integers, got {self.patch_size}")
        for key in ("vit_dim", "vit_depth", "vit_heads"):
            v = getattr(self, key)
            if v is not None and v < 1:
                raise ValueError(f"model.{key} must be >= 1 (or null for the named model's), got {v}")
        if self.vit_dim is not None and self.vit_heads is not None and self.vit_dim % self.vit_heads:
            raise ValueError(f"model.vit_dim={self.vit_dim} must be divisible by model.vit_heads={self.vit_heads}")
        for key in ("d_model", "dec_layers", "dec_heads", "perm_num", "beam_width", "max_label_length"):
            if getattr(self, key) < 1:
                raise ValueError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        if self.enc_layers < 0 or self.refine_iters < 0 or self.cls_head_layers < 0:
            raise ValueError("model.enc_layers, model.refine_iters and model.cls_head_layers must be >= 0")
        if self.d_model % self.dec_heads:
            raise ValueError(f"model.d_model={self.d_model} must be divisible by model.dec_heads={self.dec_heads}")
        if self.dec_mlp_ratio <= 0:
            raise ValueError(f"model.dec_mlp_ratio must be > 0, got {self.dec_mlp_ratio}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"model.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.max_label_length + 1 > MAX_DECODER_POSITIONS:
            raise ValueError(
                f"model.max_label_length={self.max_label_length} needs {self.max_label_length + 1} decoder "
                f"positions; at most {MAX_DECODER_POSITIONS} are supported"
            )
        if self.decoding not in DECODINGS:
            raise ValueError(f"model.decoding must be one of {', '.join(DECODINGS)}, got {self.decoding!r}")
        if self.decoding == "nar" and self.beam_width > 1:
            raise ValueError("model.beam_width > 1 needs model.decoding=ar (beam search is autoregressive)")
        if (self.decoding == "nar" or self.refine_iters > 0) and self.perm_num < 2:
            raise ValueError(
                "model.decoding=nar and model.refine_iters > 0 read positions out of left-to-right order, "
                "which only a decoder trained on permutations can: set model.perm_num >= 2 (e.g. 6)"
            )


# --------------------------------------------------------------------------- encoders
class ViTEncoder(nn.Module):
    """A timm VisionTransformer at the plate input size: one token per patch."""

    def __init__(self, config: AttnConfig, input_spec: InputSpec):
        super().__init__()
        ph, pw = config.patch_size
        h, w = input_spec.height, input_spec.width
        if h % ph or w % pw:
            raise ValueError(
                f"model.patch_size={ph}x{pw} does not divide the input size data.image_height x "
                f"data.image_width = {h}x{w}; choose a patch size whose height divides {h} and width divides {w}"
            )
        kwargs = {k: v for k, v in (("embed_dim", config.vit_dim), ("depth", config.vit_depth),
                                     ("num_heads", config.vit_heads)) if v is not None}
        try:
            self.vit = timm.create_model(
                config.encoder, pretrained=config.pretrained, img_size=(h, w), patch_size=(ph, pw),
                num_classes=0, global_pool="", class_token=False, **kwargs,
            )
        except (TypeError, AssertionError, RuntimeError) as e:
            raise ValueError(f"model.encoder={config.encoder!r} cannot be built as a plate ViT: {e}") from e
        self.grid = (h // ph, w // pw)
        self.num_tokens = self.grid[0] * self.grid[1]
        self.proj = (nn.Linear(self.vit.embed_dim, config.d_model) if self.vit.embed_dim != config.d_model
                     else nn.Identity())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(self.vit.forward_features(images))  # [B, N, d]


class CNNEncoder(nn.Module):
    """A timm CNN cut at a stage; its feature map, flattened, with learned 2D positions."""

    def __init__(self, config: AttnConfig, input_spec: InputSpec):
        super().__init__()
        try:
            self.backbone = TimmFeatures(config.encoder, config.encoder_stage, config.pretrained)
        except ValueError as e:
            raise ValueError(str(e).replace("model.backbone_stage", "model.encoder_stage")) from e
        except RuntimeError as e:  # e.g. a model without features_only support
            raise ValueError(f"model.encoder={config.encoder!r} cannot be cut into CNN features: {e}") from e
        channels, fh, fw = self.backbone.output_shape(input_spec.height, input_spec.width)
        self.grid = (fh, fw)
        self.num_tokens = fh * fw
        d = config.d_model
        self.proj = nn.Linear(channels, d)
        self.row_pos = nn.Parameter(torch.randn(fh, 1, d) * 0.02)
        self.col_pos = nn.Parameter(torch.randn(1, fw, d) * 0.02)
        self.norm = nn.LayerNorm(d)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        f = self.backbone(images)  # [B, C, Hf, Wf]
        x = self.proj(f.flatten(2).transpose(1, 2))  # [B, Hf*Wf, d], row-major
        x = x + (self.row_pos + self.col_pos).reshape(1, self.num_tokens, -1)
        return self.norm(x)


# --------------------------------------------------------------------------- decoder
class Attention(nn.Module):
    """Multi-head attention with the key/value projection exposed, for caching."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, d)

    def project_kv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, S, d] -> keys, values [B, heads, S, d / heads]."""
        b, s, _ = x.shape
        k, v = self.kv(x).view(b, s, 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        return k, v

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """Queries from x [B, T, d] over keys/values; ``mask`` (bool, True = may attend) broadcasts to [B, h, T, S]."""
        b, t, d = x.shape
        q = self.q(x).view(b, t, self.heads, -1).transpose(1, 2)
        o = F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype), attn_mask=mask)
        return self.out(o.transpose(1, 2).reshape(b, t, d))


class DecoderLayer(nn.Module):
    """Pre-norm layer of the query stream: self-attention over the content stream, cross-attention, MLP."""

    def __init__(self, d: int, heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.norm_q = nn.LayerNorm(d)
        self.norm_c = nn.LayerNorm(d)
        self.self_attn = Attention(d, heads)
        self.norm_x = nn.LayerNorm(d)
        self.cross_attn = Attention(d, heads)
        self.norm_f = nn.LayerNorm(d)
        hidden = int(d * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, d))
        self.drop = nn.Dropout(dropout)

    def content_kv(self, content: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.self_attn.project_kv(self.norm_c(content))

    def memory_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cross_attn.project_kv(memory)

    def forward(self, q: torch.Tensor, content_kv, memory_kv, mask: torch.Tensor | None) -> torch.Tensor:
        q = q + self.drop(self.self_attn(self.norm_q(q), *content_kv, mask))
        q = q + self.drop(self.cross_attn(self.norm_x(q), *memory_kv))
        return q + self.drop(self.mlp(self.norm_f(q)))


class KVCache:
    """Per-layer content keys/values, preallocated for all positions and filled one step at a time.

    With ``inplace`` False the steps are kept in lists and concatenated instead: under autograd
    (decoding with gradients, e.g. a loss on free-running outputs), where in-place writes would
    break the backward pass, and in the ONNX export (an ONNX Concat rather than slice updates).
    By default, in-place unless gradients are enabled.
    """

    def __init__(self, layers: int, batch: int, heads: int, steps: int, head_dim: int, like: torch.Tensor,
                 inplace: bool | None = None):
        self.inplace = not torch.is_grad_enabled() if inplace is None else inplace
        if self.inplace:
            shape = (batch, heads, steps, head_dim)
            self.k = [like.new_zeros(shape) for _ in range(layers)]
            self.v = [like.new_zeros(shape) for _ in range(layers)]
        else:
            self.k_steps: list[list[torch.Tensor]] = [[] for _ in range(layers)]
            self.v_steps: list[list[torch.Tensor]] = [[] for _ in range(layers)]
        self.length = 0

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        i = self.length
        if not self.inplace:
            self.k_steps[layer].append(k)
            self.v_steps[layer].append(v)
            return torch.cat(self.k_steps[layer], dim=2), torch.cat(self.v_steps[layer], dim=2)
        self.k[layer][:, :, i:i + 1] = k
        self.v[layer][:, :, i:i + 1] = v
        return self.k[layer][:, :, :i + 1], self.v[layer][:, :, :i + 1]

    def reorder(self, index: torch.Tensor) -> None:
        if not self.inplace:
            self.k_steps = [[k.index_select(0, index) for k in ks] for ks in self.k_steps]
            self.v_steps = [[v.index_select(0, index) for v in vs] for vs in self.v_steps]
            return
        self.k = [k.index_select(0, index) for k in self.k]
        self.v = [v.index_select(0, index) for v in self.v]


def ordering_masks(orders: list[torch.Tensor], steps: int) -> torch.Tensor:
    """[K, T, T] bool masks: output i (query) may see content j (0 = BOS, j >= 1 = output j - 1)
    when j == 0 or output j - 1 comes before output i in the ordering."""
    masks = []
    for order in orders:
        rank = torch.empty(steps, dtype=torch.long, device=order.device)
        rank[order] = torch.arange(steps, device=order.device)
        m = torch.ones(steps, steps, dtype=torch.bool, device=order.device)
        m[:, 1:] = rank[None, :-1] < rank[:, None]
        masks.append(m)
    return torch.stack(masks)


def cloze_mask(steps: int, device) -> torch.Tensor:
    """Refinement: output i sees every content position but its own (j = i + 1)."""
    idx = torch.arange(steps, device=device)
    return idx[None, :] != idx[:, None] + 1


# --------------------------------------------------------------------------- model
@register_model("attn")
class AttnRecognizer(PlateRecognizer):
    """Exported with its decoding loop in the graph (:class:`GreedyExport`; ``nar``: one pass), as
    ``log_probs`` [B, T, EOS + charset] (+ ``rows_logits``, ``country_logits``), whose argmax is
    read up to EOS in numpy. Beam search is not exported."""

    arch = "attn"
    config_class = AttnConfig
    text_output = "log_probs"
    onnx_decoder = "attn_argmax"
    int8_refusal = (
        "quantised whole, its greedy loop (each step's argmax is fed back in the graph) read 0% of the "
        "synthetic test plates right; with only the encoder's convolutions quantised it read as well as "
        "float32 but gained little (10-20% more plates/s at batch 64) and was slower at batch 1")

    def __init__(self, config: AttnConfig, charset: Charset, input_spec: InputSpec):
        super().__init__(config, charset, input_spec)
        self.tokenizer = AttnTokenizer(charset)
        self.num_classes = self.tokenizer.num_classes
        d = config.d_model
        self.encoder = ViTEncoder(config, input_spec) if is_vit_name(config.encoder) else CNNEncoder(config, input_spec)
        self.encoder_kind = "vit" if isinstance(self.encoder, ViTEncoder) else "cnn"
        self.enc_layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d, config.dec_heads, int(d * config.dec_mlp_ratio), config.dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(config.enc_layers)
        )
        self.enc_norm = nn.LayerNorm(d) if config.enc_layers else nn.Identity()
        # Positions: content = BOS + characters, outputs = characters + EOS: max_label_length + 1 each.
        self.max_steps = config.max_label_length + 1
        self.embed = nn.Embedding(self.tokenizer.vocab_size, d)
        self.content_pos = nn.Parameter(torch.randn(self.max_steps, d) * 0.02)
        self.query_pos = nn.Parameter(torch.randn(self.max_steps, d) * 0.02)
        self.layers = nn.ModuleList(
            DecoderLayer(d, config.dec_heads, config.dec_mlp_ratio, config.dropout) for _ in range(config.dec_layers)
        )
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, self.num_classes)
        self.drop = nn.Dropout(config.dropout)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.class_head = (PlateClassHead(d, dropout=config.dropout, context_layers=config.cls_head_layers,
                                          heads=config.dec_heads) if config.country_head is not False else None)
        self.length_head = (LengthHead(d, config.max_label_length, heads=config.dec_heads, dropout=config.dropout)
                            if config.length_loss_weight > 0 else None)
        self.ctc_tokenizer = CTCTokenizer(charset)
        self.ctc_head = (ColumnCTCHead(d, self.encoder.grid, self.ctc_tokenizer.num_classes, dropout=config.dropout)
                         if config.ctc_loss_weight > 0 else None)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(beam_search=True, class_head=self.class_head is not None)

    def class_outputs(self) -> tuple[str, ...]:
        return ("rows_logits", "country_logits") if self.class_head is not None else ()

    @property
    def beam_width(self) -> int:
        return self.config.beam_width

    def set_beam_width(self, width: int) -> None:
        self.config = dataclasses.replace(self.config, beam_width=width)  # a ValueError for nar decoding

    def export_module(self) -> tuple[nn.Module, tuple[str, ...]]:
        names = self.output_names()
        if self.config.decoding == "nar":  # one parallel pass (+ refinement): no data-dependent control flow
            return OutputTuple(self, names), names
        if self.config.beam_width > 1:  # export.py switches such a model to greedy first
            raise ValueError(
                f"ONNX export of beam search (model.beam_width={self.config.beam_width}) is not implemented: "
                "its loop ends when the best beam has ended, which a traced graph cannot express. "
                "Greedy (beam_width 1) and nar decoding export."
            )
        return GreedyExport(self), names

    def weights_from(self, source: PlateRecognizer) -> dict[str, torch.Tensor]:
        """``source``'s weights with its position embeddings resampled to this model's token grid
        (linearly along each axis), when the two were built for different input sizes."""
        state = source.state_dict()
        if self.encoder_kind == "cnn":
            for name, axis in (("row_pos", 0), ("col_pos", 1)):
                key, own = f"encoder.{name}", getattr(self.encoder, name)
                if key in state and state[key].shape != own.shape:
                    pos = state[key].movedim(axis, -1).reshape(1, -1, state[key].shape[axis])  # [1, d, n]
                    pos = F.interpolate(pos, size=own.shape[axis], mode="linear", align_corners=False)
                    state[key] = pos[0].t().unsqueeze(1 - axis)  # [n, 1, d] or [1, n, d]
        else:
            key, own = "encoder.vit.pos_embed", self.encoder.vit.pos_embed
            if key in state and state[key].shape != own.shape:  # the key: a ViT source, with its grid
                state[key] = resample_abs_pos_embed(state[key], list(self.encoder.grid), list(source.encoder.grid),
                                                    num_prefix_tokens=0)
        return state

    # ----------------------------------------------------------------- pieces
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images -> image tokens [B, N, d_model]."""
        x = self.encoder(images)
        if self.enc_layers:
            for layer in self.enc_layers:
                x = layer(x)
            x = self.enc_norm(x)
        return x

    def _content(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        return self.drop(self.embed(tokens) + self.content_pos[start:start + tokens.shape[1]])

    def _queries(self, batch: int, start: int, stop: int) -> torch.Tensor:
        return self.drop(self.query_pos[start:stop]).unsqueeze(0).expand(batch, -1, -1)

    def _run(self, queries, content_kv, memory_kv, mask) -> torch.Tensor:
        q = queries
        for layer, ckv, mkv in zip(self.layers, content_kv, memory_kv):
            q = layer(q, ckv, mkv, mask)
        return self.head(self.norm(q))

    def _check_texts(self, texts: list[str]) -> int:
        longest = max(len(t) for t in texts)
        if longest > self.config.max_label_length:
            raise ValueError(
                f"label of {longest} characters but model.max_label_length={self.config.max_label_length}"
            )
        return longest

    def orderings(self, steps: int, device) -> list[torch.Tensor]:
        """``perm_num`` orderings of the outputs 0..steps-1: left-to-right, its mirror, then random
        orderings, each followed by its mirror. Every output, EOS included, is permuted: an output
        that comes first sees BOS only, which is what non-autoregressive decoding asks of it."""
        canonical = torch.arange(steps, device=device)
        orders = [canonical]
        if self.config.perm_num > 1:
            orders.append(canonical.flip(0))
        while len(orders) < self.config.perm_num:
            p = torch.randperm(steps, device=device)
            orders.append(p)
            if len(orders) < self.config.perm_num:
                orders.append(p.flip(0))
        return orders

    # ----------------------------------------------------------------- training
    def forward(self, images: torch.Tensor, texts: list[str] | None = None,
                rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """With ``texts``: ``logits`` [K, B, T, C], teacher-forced (K orderings, T = longest label + 1).
        Without: ``log_probs`` [B, max_label_length + 1, C] (see the module doc). Either way, with
        the classification head, ``country_logits`` and ``rows_logits``. ``rows`` is not used:
        the decoder reads the two-dimensional layout directly."""
        memory = self.encode(images)
        out = self.class_head(memory) if self.class_head is not None else {}
        if self.length_head is not None:
            out["length_logits"] = self.length_head(memory)
        if self.ctc_head is not None:
            out["ctc_logits"] = self.ctc_head(memory)
        if texts is None:
            out["log_probs"] = self.generate(images, memory=memory, length_logits=out.get("length_logits"),
                                             ctc_logits=out.get("ctc_logits"), one_row=self._one_row(out))
            return out
        out["logits"] = self.teacher_forced(memory, texts)
        return out

    def teacher_forced(self, memory: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """Logits [K, B, T, C] for the encoder tokens ``memory`` and the label ``texts``."""
        longest = self._check_texts(texts)
        tokens = self.tokenizer.encode(texts, longest).to(memory.device)  # [B, T + 1]
        content_tokens = tokens[:, :-1]  # BOS + characters (+ EOS / PAD of shorter labels)
        b, steps = content_tokens.shape
        content = self._content(content_tokens)
        content_kv = [layer.content_kv(content) for layer in self.layers]
        memory_kv = [layer.memory_kv(memory) for layer in self.layers]
        # EOS and PAD are no context: attend to BOS and characters only.
        key_ok = (content_tokens != self.tokenizer.pad) & (content_tokens != self.tokenizer.eos)
        queries = self._queries(b, 0, steps)
        masks = ordering_masks(self.orderings(steps, memory.device), steps)
        logits = [self._run(queries, content_kv, memory_kv, m[None, None] & key_ok[:, None, None, :])
                  for m in masks]
        return torch.stack(logits)

    def targets(self, texts: list[str], steps: int, device) -> torch.Tensor:
        """Output classes [B, steps] (characters, then EOS = 0), IGNORE after EOS."""
        longest = self._check_texts(texts)
        if steps < longest + 1:
            raise ValueError(f"outputs have {steps} steps, labels need {longest + 1}")
        tokens = self.tokenizer.encode(texts, longest)[:, 1:]
        classes = self.tokenizer.token_to_class(tokens)
        classes[tokens == self.tokenizer.pad] = IGNORE
        out = torch.full((len(texts), steps), IGNORE, dtype=torch.long)
        out[:, : classes.shape[1]] = classes
        return out.to(device)

    def text_loss(self, outputs: dict, batch: dict) -> torch.Tensor:
        """Cross-entropy with label smoothing, averaged over orderings.

        Scores the teacher-forced ``logits`` of ``forward(images, texts)`` ([K, B, T, C]),
        or the free-running ``log_probs`` of ``forward(images)`` ([B, T, C]).
        """
        logits = (outputs["logits"] if "logits" in outputs else outputs["log_probs"]).float()
        if logits.dim() == 3:
            logits = logits.unsqueeze(0)
        k, b, steps, c = logits.shape
        target = self.targets(batch["texts"], steps, logits.device)
        loss = F.cross_entropy(logits.reshape(-1, c), target.repeat(k, 1).reshape(-1), ignore_index=IGNORE,
                               label_smoothing=self.config.label_smoothing)
        if "length_logits" in outputs:
            loss = loss + self.config.length_loss_weight * length_loss(outputs, batch["texts"])
        if "ctc_logits" in outputs:
            loss = loss + self.config.ctc_loss_weight * ctc_loss(outputs, batch, self.ctc_tokenizer.encode)
        return loss

    # ----------------------------------------------------------------- inference
    def generate(self, images: torch.Tensor, decoding: str | None = None, beam_width: int | None = None,
                 refine_iters: int | None = None, use_cache: bool = True,
                 memory: torch.Tensor | None = None, length_logits: torch.Tensor | None = None,
                 ctc_logits: torch.Tensor | None = None, one_row: torch.Tensor | None = None) -> torch.Tensor:
        """Inference log-probabilities [B, T, C]; arguments override the config (for benchmarks and tests).
        ``memory``: the encoder's tokens of ``images`` if already computed; ``length_logits`` and
        ``ctc_logits``: the length and CTC heads' outputs for them, if already computed;
        ``one_row``: [B] bool, the plates the CTC head may rescore (None: every plate)."""
        cfg = self.config
        decoding = cfg.decoding if decoding is None else decoding
        beam_width = cfg.beam_width if beam_width is None else beam_width
        refine_iters = cfg.refine_iters if refine_iters is None else refine_iters
        if memory is None:
            memory = self.encode(images)
        memory_kv = [layer.memory_kv(memory) for layer in self.layers]
        length_bonus = self._length_bonus(memory, length_logits)
        joint = decoding == "ar" and self.ctc_head is not None and cfg.ctc_weight > 0
        if joint and ctc_logits is None:
            ctc_logits = self.ctc_head(memory)
        if decoding == "nar":
            logp = self._decode_nar(memory_kv, images.shape[0])
        elif beam_width > 1:
            logp = self._decode_beam(memory_kv, images.shape[0], beam_width, length_bonus)
            if joint:
                logp = self._rescore_with_ctc(memory, logp, ctc_logits, one_row)
        elif use_cache or joint:
            weight = self._ctc_weights(images.shape[0], one_row, memory.device) if joint else None
            logp = self._decode_greedy(memory_kv, images.shape[0], length_bonus=length_bonus,
                                       ctc_logits=ctc_logits if joint else None, ctc_weight=weight)
        else:
            logp = self._decode_greedy_uncached(memory_kv, images.shape[0])
            if length_bonus is not None:
                logp = self._stop_by_length(logp, length_bonus)
        for _ in range(refine_iters):
            logp = self._refine(memory_kv, logp.argmax(-1))
        return logp

    def _ctc_weights(self, n: int, one_row: torch.Tensor | None, device) -> torch.Tensor:
        """[n]: the CTC head's weight in greedy joint decoding, ``ctc_weight`` on the plates
        ``one_row`` marks (None: every plate) and 0 on the others (a float product, which the
        exported graph can hold)."""
        weight = torch.full((n,), self.config.ctc_weight, device=device)
        return weight if one_row is None else weight * one_row.to(weight)

    def _one_row(self, out: dict) -> torch.Tensor | None:
        """[B] bool: the plates the rows head calls one-row (None without the head: every plate)."""
        return out["rows_logits"].argmax(-1) == 0 if "rows_logits" in out else None

    def _rescore_with_ctc(self, memory: torch.Tensor, logp: torch.Tensor, ctc_logits: torch.Tensor,
                          one_row: torch.Tensor | None) -> torch.Tensor:
        """Joint CTC-attention scoring of a beam-search reading: of the best beam and the CTC head's greedy reading,
        the one with the higher (1 - ctc_weight) x decoder log-prob (teacher-forced, EOS included) +
        ctc_weight x CTC log-likelihood is read. Where the CTC reading wins, each of its steps
        carries the decoder's teacher-forced log-probability of its character (the other classes
        NEG, as in beam-search output), so its confidence is the decoder's. Two-row plates (``one_row`` False)
        keep the decoder's reading: the CTC head reads one row."""
        w = self.config.ctc_weight
        ar_texts = [d.text for d in self.tokenizer.decode(logp.argmax(-1), logp.amax(-1).exp())]
        ctc_texts = [d.text for d in self.ctc_tokenizer.decode_greedy(ctc_logits.float().softmax(-1))]
        rows = one_row.tolist() if one_row is not None else [True] * len(ar_texts)
        todo = [i for i, (a, c, ok) in enumerate(zip(ar_texts, ctc_texts, rows))
                if ok and a != c and max(len(a), len(c)) <= self.config.max_label_length]
        if not todo:
            return logp
        index = torch.tensor(todo, device=memory.device)
        candidates = [ar_texts[i] for i in todo] + [ctc_texts[i] for i in todo]
        rows_tf, target, decoder = self._decoder_log_prob(memory[index].repeat(2, 1, 1), candidates)
        ctc = ctc_log_likelihood(ctc_logits[index].repeat(2, 1, 1), candidates, self.ctc_tokenizer.encode)
        score = ((1 - w) * decoder + w * ctc).view(2, len(todo))
        out = logp.clone()
        n = len(todo)
        for j, i in enumerate(todo):
            if score[1, j] > score[0, j]:
                steps = torch.arange(len(candidates[n + j]) + 1, device=out.device)  # the characters and EOS
                cls = target[n + j, steps]
                out[i] = self._eos_rows(1, self.max_steps, logp)[0]
                out[i, steps] = NEG
                out[i, steps, cls] = rows_tf[n + j, steps, cls]
        return out

    def _decoder_log_prob(self, memory: torch.Tensor, texts: list[str]):
        """Teacher-forced, left to right: (log-probabilities [B, T, C], output classes [B, T] with
        IGNORE after EOS, the summed log-probability of each text's characters and EOS [B])."""
        logp = self.teacher_forced(memory, texts)[0].float().log_softmax(-1)
        target = self.targets(texts, logp.shape[1], logp.device)
        picked = logp.gather(-1, target.clamp(min=0)[..., None])[..., 0]
        return logp, target, (picked * (target != IGNORE)).sum(1)

    def _length_bonus(self, memory: torch.Tensor, length_logits: torch.Tensor | None = None) -> torch.Tensor | None:
        """``length_weight`` x the length head's log-probability of each length 0..max_label_length,
        [B, T] (what a reading of that length gains in decoding); None without a length head."""
        if self.length_head is None or self.config.length_weight == 0:
            return None
        if length_logits is None:
            length_logits = self.length_head(memory)
        return self.config.length_weight * length_logits.float().log_softmax(-1)

    def _stop_by_length(self, logp: torch.Tensor, length_bonus: torch.Tensor) -> torch.Tensor:
        """The greedy reading ``logp`` [B, T, C] cut where the length head says the plate stops.

        The candidates are the greedy path's prefixes that end with EOS at a step up to the
        greedy EOS: prefix n scores the log-probabilities of its n characters + that of EOS at
        step n (all from the greedy pass) + ``length_bonus[n]``; the best one is read. Only tensor
        operations, so the ONNX export traces it. A shorter reading's EOS step keeps only EOS
        (other classes NEG, as in beam-search output); the steps after it read EOS.
        """
        b, steps, _ = logp.shape
        classes = logp.argmax(-1)
        picked = logp.gather(-1, classes[..., None])[..., 0]
        before = torch.cumsum(picked, 1) - picked  # log-prob of the greedy characters before step n
        eos_seen = torch.cumsum((classes == 0).long(), 1) - (classes == 0).long()
        allowed = eos_seen == 0  # steps up to and including the greedy EOS
        score = (before + logp[..., 0] + length_bonus[:, :steps]).masked_fill(~allowed, float("-inf"))
        stop = score.argmax(1)  # [B]: the chosen reading's length
        step = torch.arange(steps, device=logp.device)[None, :]
        eos_rows = self._eos_rows(b, steps, logp)
        cut = eos_rows.clone()
        cut[..., 0] = logp[..., 0]
        greedy_stop = (classes == 0) & allowed
        out = torch.where((step == stop[:, None])[..., None] & ~greedy_stop[..., None], cut, logp)
        return torch.where((step > stop[:, None])[..., None], eos_rows, out)

    def _eos_rows(self, b: int, steps: int, like: torch.Tensor) -> torch.Tensor:
        rows = like.new_full((b, steps, self.num_classes), NEG, dtype=torch.float32)
        rows[..., 0] = 0.0
        return rows

    def _step_embedding(self, tokens: torch.Tensor, i: int) -> torch.Tensor:
        return self._content(tokens[:, None], start=i)  # [B, 1, d]

    def _cached_step(self, tokens: torch.Tensor, i: int, memory_kv, cache: KVCache) -> torch.Tensor:
        """Log-probabilities [B, C] of output ``i`` given the previous ``tokens`` [B]; appends their
        content keys and values to ``cache``."""
        content = self._step_embedding(tokens, i)
        q = self._queries(tokens.shape[0], i, i + 1)
        for li, (layer, mkv) in enumerate(zip(self.layers, memory_kv)):
            q = layer(q, cache.append(li, *layer.content_kv(content)), mkv, None)
        cache.length += 1
        return self.head(self.norm(q[:, 0])).float().log_softmax(-1)

    def _decode_greedy(self, memory_kv, b: int, traced: bool = False,
                       length_bonus: torch.Tensor | None = None, ctc_logits: torch.Tensor | None = None,
                       ctc_weight: torch.Tensor | None = None) -> torch.Tensor:
        """Greedy decoding, stopping once every plate has read EOS; with ``length_bonus`` (a length
        head), the reading is then cut where the head says the plate stops (:meth:`_stop_by_length`).

        With ``ctc_logits`` (a CTC head) each step reads the class of the best joint score,
        (1 - ``ctc_weight``) x the decoder's log-probability + ``ctc_weight`` x the gain in CTC
        prefix score (:class:`~models.heads.CTCPrefixScorer`; EOS: the prefix as a whole reading),
        normalised over the classes; ``ctc_weight`` [B] is 0 for plates read by the decoder alone.
        Summed over a reading, the gains are its CTC log-likelihood.

        ``traced`` (the ONNX export, :class:`GreedyExport`): all ``max_steps`` steps, without that
        early exit, the one data-dependent branch (a trace would freeze the number of steps of the
        example batch), and the cache concatenated rather than written in place. Steps after a
        plate's EOS keep its EOS rows, so the result is the same.
        """
        d0 = memory_kv[0][0]
        heads, head_dim = d0.shape[1], d0.shape[3]
        cache = KVCache(len(self.layers), b, heads, self.max_steps, head_dim, d0,
                        inplace=False if traced else None)
        eos_rows = self._eos_rows(b, self.max_steps, d0)
        tokens = torch.full((b,), self.tokenizer.bos, dtype=torch.long, device=d0.device)
        done = torch.zeros(b, dtype=torch.bool, device=d0.device)
        scorer = CTCPrefixScorer(ctc_logits) if ctc_logits is not None else None
        rows = []
        for i in range(self.max_steps):
            logp = self._cached_step(tokens, i, memory_kv, cache)
            if scorer is not None:
                scores, r_nonblank, r_blank = scorer.extend(start=i)  # every plate not done has read i
                gain = scores.clamp(min=NEG) - scorer.score.clamp(min=NEG)[:, None]  # finite where CTC can't
                w = ctc_weight[:, None]
                logp = torch.where(w > 0, ((1 - w) * logp + w * gain).log_softmax(-1), logp)
            cls = logp.argmax(-1).masked_fill(done, 0)
            rows.append(torch.where(done[:, None], eos_rows[:, i], logp))
            if scorer is not None:
                scorer.advance(cls, scores, r_nonblank, r_blank)
            done = done | (cls == 0)
            if not traced and bool(done.all()):
                break
            tokens = self.tokenizer.class_to_token(cls)
        out = torch.stack(rows, 1)
        out = out if len(rows) == self.max_steps else torch.cat([out, eos_rows[:, len(rows):]], 1)
        return out if length_bonus is None else self._stop_by_length(out, length_bonus)

    def _decode_greedy_uncached(self, memory_kv, b: int) -> torch.Tensor:
        """Greedy decoding that recomputes the whole prefix at every step (reference for the cache)."""
        d0 = memory_kv[0][0]
        out = self._eos_rows(b, self.max_steps, d0)
        tokens = torch.full((b, 1), self.tokenizer.bos, dtype=torch.long, device=d0.device)
        done = torch.zeros(b, dtype=torch.bool, device=d0.device)
        causal = torch.ones(self.max_steps, self.max_steps, dtype=torch.bool, device=d0.device).tril()
        for i in range(self.max_steps):
            content = self._content(tokens)
            content_kv = [layer.content_kv(content) for layer in self.layers]
            logits = self._run(self._queries(b, 0, i + 1), content_kv, memory_kv, causal[: i + 1, : i + 1])
            logp = logits[:, -1].float().log_softmax(-1)
            cls = logp.argmax(-1).masked_fill(done, 0)
            out[:, i] = torch.where(done[:, None], out[:, i], logp)
            done = done | (cls == 0)
            if bool(done.all()):
                break
            tokens = torch.cat([tokens, self.tokenizer.class_to_token(cls)[:, None]], dim=1)
        return out

    def _decode_beam(self, memory_kv, b: int, width: int, length_bonus: torch.Tensor | None = None) -> torch.Tensor:
        """Batched beam search maximising the plate confidence (product of step probabilities, EOS included).

        With ``length_bonus`` (a length head) the search runs until every beam has ended, and the
        finished beam with the best decoder log-prob + ``length_bonus`` of its length is read."""
        d0 = memory_kv[0][0]
        device, steps, c = d0.device, self.max_steps, self.num_classes
        memory_kv = [(k.repeat_interleave(width, 0), v.repeat_interleave(width, 0)) for k, v in memory_kv]
        bw = b * width
        cache = KVCache(len(self.layers), bw, d0.shape[1], steps, d0.shape[3], d0)
        scores = torch.full((b, width), float("-inf"), device=device)
        scores[:, 0] = 0.0
        hist_cls = torch.zeros(b, width, steps, dtype=torch.long, device=device)
        hist_lp = torch.zeros(b, width, steps, device=device)
        finished = torch.zeros(b, width, dtype=torch.bool, device=device)
        eos_only = torch.full((c,), float("-inf"), device=device)
        eos_only[0] = 0.0
        tokens = torch.full((bw,), self.tokenizer.bos, dtype=torch.long, device=device)
        base = (torch.arange(b, device=device) * width)[:, None]
        for i in range(steps):
            logp = self._cached_step(tokens, i, memory_kv, cache).view(b, width, c)
            logp = torch.where(finished[..., None], eos_only, logp)  # a finished beam only carries on
            top, idx = (scores[..., None] + logp).view(b, width * c).topk(width, dim=-1)
            beam, cls = idx // c, idx % c
            chosen_lp = logp.gather(1, beam[..., None].expand(-1, -1, c)).gather(2, cls[..., None])[..., 0]
            hist_cls = hist_cls.gather(1, beam[..., None].expand(-1, -1, steps))
            hist_lp = hist_lp.gather(1, beam[..., None].expand(-1, -1, steps))
            hist_cls[:, :, i] = cls
            hist_lp[:, :, i] = chosen_lp
            finished = finished.gather(1, beam) | (cls == 0)
            scores = top
            if bool(finished[:, 0].all()) and (length_bonus is None or bool(finished.all())):
                break  # the best beam has ended: nothing can overtake it (on decoder log-prob alone)
            cache.reorder((base + beam).view(-1))
            tokens = self.tokenizer.class_to_token(cls).view(-1)
        best = torch.zeros(b, dtype=torch.long, device=device)  # topk is sorted: beam 0 is the best
        if length_bonus is not None:
            length = (torch.cumsum(hist_cls == 0, dim=2) == 0).sum(2).clamp(max=steps - 1)  # [b, width]
            rescored = (scores + length_bonus.gather(1, length)).masked_fill(~finished, float("-inf"))
            best = torch.where(finished.any(1), rescored.argmax(1), best)
        pick = best[:, None, None].expand(-1, 1, steps)
        best_cls, best_lp = hist_cls.gather(1, pick)[:, 0], hist_lp.gather(1, pick)[:, 0]
        ended = torch.cumsum(best_cls == 0, dim=1) - (best_cls == 0).long() > 0  # after the first EOS
        best_cls = best_cls.masked_fill(ended, 0)
        best_lp = best_lp.masked_fill(ended, 0.0)
        out = torch.full((b, steps, c), NEG, device=device)
        out.scatter_(2, best_cls[..., None], best_lp[..., None])
        return out

    def _decode_nar(self, memory_kv, b: int) -> torch.Tensor:
        """Every position at once, each seeing only BOS."""
        d0 = memory_kv[0][0]
        bos = torch.full((b, 1), self.tokenizer.bos, dtype=torch.long, device=d0.device)
        content = self._content(bos)
        content_kv = [layer.content_kv(content) for layer in self.layers]
        logits = self._run(self._queries(b, 0, self.max_steps), content_kv, memory_kv, None)
        return self._after_eos(logits.float().log_softmax(-1))

    def _refine(self, memory_kv, classes: torch.Tensor) -> torch.Tensor:
        """One cloze pass: each position re-read given all the others of the current reading."""
        b, steps = classes.shape
        bos = torch.full((b, 1), self.tokenizer.bos, dtype=torch.long, device=classes.device)
        tokens = torch.cat([bos, self.tokenizer.class_to_token(classes[:, :-1])], dim=1)
        key_ok = (tokens == self.tokenizer.eos).cumsum(1) == 0  # nothing from the first EOS on
        content = self._content(tokens)
        content_kv = [layer.content_kv(content) for layer in self.layers]
        mask = cloze_mask(steps, classes.device)[None, None] & key_ok[:, None, None, :]
        logits = self._run(self._queries(b, 0, steps), content_kv, memory_kv, mask)
        return self._after_eos(logits.float().log_softmax(-1))

    def _after_eos(self, logp: torch.Tensor) -> torch.Tensor:
        """Steps after the first predicted EOS read EOS with probability 1."""
        eos = logp.argmax(-1) == 0
        after = (torch.cumsum(eos, dim=1) - eos.long()) > 0
        return torch.where(after[..., None], self._eos_rows(*logp.shape[:2], logp), logp)

    @torch.no_grad()
    def text_log_prob(self, images: torch.Tensor, texts: list[str],
                      index: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced, left to right: the summed log-probabilities of the characters and EOS (with a
        length head, + ``length_weight`` x its log-probability of the text's length; with a CTC head,
        on a one-row plate, mixed with its CTC log-likelihood by ``ctc_weight``: as decoding scores a
        reading)."""
        fits = torch.tensor([len(t) <= self.config.max_label_length for t in texts], device=images.device)
        out = torch.full((len(texts),), float("-inf"), device=images.device)
        if not fits.any():
            return out
        keep = [t for t, ok in zip(texts, fits.tolist()) if ok]
        if index is None:
            memory = self.encode(images[fits])
        else:  # each image encoded once, however many texts it scores
            memory = self.encode(images)[index.to(images.device)[fits]]
        score = self._decoder_log_prob(memory, keep)[2]
        bonus = self._length_bonus(memory)
        if bonus is not None:
            score = score + bonus.gather(1, torch.tensor([[len(t)] for t in keep], device=bonus.device))[:, 0]
        if self.ctc_head is not None and self.config.ctc_weight > 0:  # as decoding scores a one-row reading
            w = self.config.ctc_weight
            ctc = ctc_log_likelihood(self.ctc_head(memory), keep, self.ctc_tokenizer.encode)
            one_row = self._one_row(self.class_head(memory)) if self.class_head is not None else None
            mixed = (1 - w) * score + w * ctc
            score = mixed if one_row is None else torch.where(one_row, mixed, score)
        out[fits] = score.to(out.dtype)
        return out

    def decode_text(self, outputs: dict) -> list[PlatePrediction]:
        best, classes = outputs["log_probs"].float().max(dim=-1)
        return [
            PlatePrediction(d.text, d.confidence, d.char_confidences)
            for d in self.tokenizer.decode(classes, best.exp())
        ]

    def check_label_length(self, max_label_length: int, source: str) -> None:
        if max_label_length > self.config.max_label_length:
            raise ValueError(
                f"{source} has labels of up to {max_label_length} characters, but model.max_label_length="
                f"{self.config.max_label_length} gives the decoder {self.max_steps} positions (characters + EOS); "
                f"set model.max_label_length to at least {max_label_length}"
            )


class GreedyExport(nn.Module):
    """What ``torch.onnx`` traces for an autoregressive model: ``forward(images)`` with greedy
    decoding of a fixed number of steps (``_decode_greedy(traced=True)``; with a length head, cut
    where it says the plate stops, as in PyTorch), then the refinement passes, as a tuple in
    ``output_names()`` order."""

    def __init__(self, model: AttnRecognizer):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        m = self.model
        memory = m.encode(images)
        out = m.class_head(memory) if m.class_head is not None else {}
        memory_kv = [layer.memory_kv(memory) for layer in m.layers]
        ctc_logits = weight = None
        if m.ctc_head is not None and m.config.ctc_weight > 0:  # joint scoring, as generate() reads
            ctc_logits = m.ctc_head(memory)
            weight = m._ctc_weights(images.shape[0], m._one_row(out), memory.device)
        logp = m._decode_greedy(memory_kv, images.shape[0], traced=True, length_bonus=m._length_bonus(memory),
                                ctc_logits=ctc_logits, ctc_weight=weight)
        for _ in range(m.config.refine_iters):
            logp = m._refine(memory_kv, logp.argmax(-1))
        return (logp,) + tuple(out[k] for k in m.class_outputs())
