"""Plate-level heads shared by the architectures: country and number of text rows, the
number of characters (:class:`LengthHead`, the attention model's ``model.length_loss_weight``)
and a CTC reader of the image tokens (:class:`ColumnCTCHead`, its ``model.ctc_loss_weight``).

The country/rows and length heads read pooled image features (mean and max over every
position of the feature map or token set), so they see the plate's look -- band, colours,
layout, symbols -- and not only its characters.

Class indices: countries follow ``data.text.COUNTRIES`` (the generator's 27),
then ``unknown`` (a plate known not to be one of them); rows are 1 and 2.
Samples without a country label (``data.text.NO_COUNTRY``: an empty cell, a
plain ``filename,text`` fine-tuning set) and samples labelled with a code the
head has no class for (``EU``: an EU plate of unstated country, ``ID``) are
left out of the country loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from data.text import UNKNOWN_COUNTRY
# Reading the heads' outputs needs no torch (the ONNX path): it lives in models.interface.
from models.interface import COUNTRY_CLASSES, ROW_CLASSES

IGNORE = -100
_COUNTRY_INDEX = {c: i for i, c in enumerate(COUNTRY_CLASSES)}


def country_targets(countries: list[str], device=None) -> torch.Tensor:
    """Class index per sample; IGNORE where there is no label (``NO_COUNTRY``) or it names no
    class (e.g. ``EU``): those samples add nothing to the country loss."""
    return torch.tensor([_COUNTRY_INDEX.get(c, IGNORE) for c in countries], dtype=torch.long, device=device)


def row_targets(rows: torch.Tensor | list[int], device=None) -> torch.Tensor:
    rows = torch.as_tensor(rows, dtype=torch.long, device=device)
    return torch.where((rows >= 1) & (rows <= len(ROW_CLASSES)), rows - 1, torch.full_like(rows, IGNORE))


def has_country_labels(countries) -> bool:
    """Whether labels like these can train a country head (any of the 27 or ``unknown``)."""
    return any(c in _COUNTRY_INDEX and c != UNKNOWN_COUNTRY for c in countries)


def pool_features(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] feature map or [B, N, C] tokens -> [B, 2C] (mean, max)."""
    if x.dim() == 4:
        x = x.flatten(2).transpose(1, 2)
    return torch.cat([x.mean(1), x.amax(1)], dim=-1)


class PlateClassHead(nn.Module):
    """Pooled features -> ``country_logits`` [B, 28] and, with ``rows``, ``rows_logits`` [B, 2].

    ``context_layers`` > 0 puts transformer layers over the features before pooling, so the
    pooled vector can describe where things are (a band on the left, the character groups)
    and not only which local patterns occur; ``heads`` must divide ``in_channels`` (None: the
    most of 8, 4, 2, 1 that does).
    """

    def __init__(self, in_channels: int, hidden: int = 128, rows: bool = True, dropout: float = 0.1,
                 context_layers: int = 0, heads: int | None = None):
        super().__init__()
        if heads is None:
            heads = next(h for h in (8, 4, 2, 1) if in_channels % h == 0)
        self.context = nn.Sequential(*(
            nn.TransformerEncoderLayer(in_channels, heads, 4 * in_channels, dropout, activation="gelu",
                                       batch_first=True, norm_first=True)
            for _ in range(context_layers)
        ), nn.LayerNorm(in_channels)) if context_layers else None
        self.body = nn.Sequential(
            nn.Linear(2 * in_channels, hidden), nn.GELU(), nn.Dropout(dropout),
        )
        self.country = nn.Linear(hidden, len(COUNTRY_CLASSES))
        self.rows = nn.Linear(hidden, len(ROW_CLASSES)) if rows else None

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        x = features.float() if features.dtype == torch.float16 else features
        if self.context is not None:
            x = self.context(x.flatten(2).transpose(1, 2) if x.dim() == 4 else x)
        h = self.body(pool_features(x))
        out = {"country_logits": self.country(h)}
        if self.rows is not None:
            out["rows_logits"] = self.rows(h)
        return out


class LengthHead(nn.Module):
    """Image tokens [B, N, d] -> ``length_logits`` [B, max_length + 1]: how many characters the
    plate has (0..max_length).

    A few learned queries attend over every token (the tokens carry their 2D positions, so a
    query can find where the text begins and ends, on one row or two), beside the mean and
    max of the tokens; a small MLP reads them.
    """

    def __init__(self, d: int, max_length: int, queries: int = 4, heads: int = 8, hidden: int = 256,
                 dropout: float = 0.1):
        super().__init__()
        self.heads = heads
        self.queries = nn.Parameter(torch.randn(queries, d) * 0.02)
        self.kv = nn.Linear(d, 2 * d)
        self.body = nn.Sequential(
            nn.Linear((queries + 2) * d, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, max_length + 1),
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = tokens.float() if tokens.dtype == torch.float16 else tokens
        b, n, d = x.shape
        k, v = self.kv(x).view(b, n, 2, self.heads, -1).permute(2, 0, 3, 1, 4)  # [B, h, N, d / h]
        q = self.queries.to(k.dtype).view(1, -1, self.heads, d // self.heads).transpose(1, 2)
        pooled = F.scaled_dot_product_attention(q.expand(b, -1, -1, -1), k, v)  # [B, h, Q, d / h]
        pooled = pooled.transpose(1, 2).reshape(b, -1)
        return self.body(torch.cat([pooled, pool_features(x)], dim=-1))


def length_targets(texts: list[str], device=None) -> torch.Tensor:
    """The number of characters of each label (a masked ``*`` counts as one)."""
    return torch.tensor([len(t) for t in texts], dtype=torch.long, device=device)


def length_loss(outputs: dict, texts: list[str]) -> torch.Tensor:
    """Cross-entropy of ``length_logits`` against the labels' lengths."""
    logits = outputs["length_logits"].float()
    return F.cross_entropy(logits, length_targets(texts, logits.device))


class ColumnCTCHead(nn.Module):
    """Image tokens [B, H*W, d] of an H x W grid (row-major) -> ``ctc_logits`` [B, T, blank + charset]:
    a CTC reader of one row of text beside the attention decoder.

    Each column of tokens (its H rows side by side) becomes one step, ``steps_per_column`` steps
    per column (interpolated: room for a blank between repeated characters), read by a
    bidirectional GRU and a linear classifier. Columns mix the rows, so it reads one-row plates
    only: it is trained on them and consulted for them.
    """

    def __init__(self, d: int, grid: tuple[int, int], num_classes: int, hidden: int = 128,
                 steps_per_column: int = 2, dropout: float = 0.1):
        super().__init__()
        self.grid = grid
        self.steps = grid[1] * steps_per_column
        self.columns = nn.Sequential(nn.Linear(grid[0] * d, 2 * hidden), nn.GELU(), nn.Dropout(dropout))
        self.rnn = nn.GRU(2 * hidden, hidden, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        b, _, d = tokens.shape
        h, w = self.grid
        x = self.columns(tokens.float().view(b, h, w, d).transpose(1, 2).reshape(b, w, h * d))
        if self.steps != w:
            x = F.interpolate(x.transpose(1, 2), size=self.steps, mode="linear", align_corners=False).transpose(1, 2)
        x, _ = self.rnn(x)
        return self.fc(x)


def _ctc(log_probs: torch.Tensor, texts: list[str], encode, **kwargs) -> torch.Tensor:
    """``F.ctc_loss`` of per-step log-probabilities [B, T, blank + charset] (blank 0) against ``texts``."""
    log_probs = log_probs.transpose(0, 1)  # [T, B, C]
    targets, lengths = encode(texts)
    steps = torch.full((log_probs.shape[1],), log_probs.shape[0], dtype=torch.long)
    return F.ctc_loss(log_probs, targets.to(log_probs.device), steps, lengths, blank=0, **kwargs)


def ctc_log_likelihood(ctc_logits: torch.Tensor, texts: list[str], encode) -> torch.Tensor:
    """log p(text | image) under CTC, summed over alignments, per sample ([B]; -inf where the
    steps are too few for the text). ``encode``: a CTC tokenizer's ``encode``."""
    return -_ctc(ctc_logits.float().log_softmax(-1), texts, encode, reduction="none")


def ctc_text_loss(ctc_logits: torch.Tensor, texts: list[str], encode, smoothing: float = 0.0) -> torch.Tensor:
    """The training loss: the mean over samples of the CTC loss per character; a label the steps
    cannot hold teaches nothing (``zero_infinity``).

    ``smoothing`` (label smoothing for CTC): ``(1 - smoothing)`` of it plus ``smoothing`` times each
    step's cross-entropy with the uniform distribution over the classes (mean over steps and
    samples), which caps how sure a step can grow: a bound on the logits as label smoothing gives
    the attention decoder, without choosing an alignment."""
    log_probs = ctc_logits.float().log_softmax(-1)
    loss = _ctc(log_probs, texts, encode, zero_infinity=True)
    if smoothing:
        uniform = -log_probs.mean(-1).mean()
        loss = (1.0 - smoothing) * loss + smoothing * uniform
    return loss


class CTCPrefixScorer:
    """CTC prefix scores for decoding one character at a time (Watanabe et al., 2017): for a
    prefix g read so far, ``extend()`` gives log p(g + c, ...) for every character c -- the
    probability that the CTC output begins with g + c -- and log p(g) as a whole reading (its
    EOS score), all from forward variables over the CTC steps. Batched; classes are the
    decoder's (0 = EOS, c = charset index + 1), which are also the CTC head's (0 = blank).
    """

    def __init__(self, ctc_logits: torch.Tensor):
        self.x = ctc_logits.float().log_softmax(-1)  # [B, T, K]
        b, t, _ = self.x.shape
        neg = torch.full((b, t), float("-inf"), device=self.x.device)
        self.r_nonblank = neg  # [B, T]: g read by step t, ending in its last character
        self.r_blank = torch.cumsum(self.x[..., 0], 1)  # ... ending in a blank (g empty: blanks only)
        self.last = torch.full((b,), -1, dtype=torch.long, device=self.x.device)  # g's last class (-1: empty)
        self.score = torch.zeros(b, device=self.x.device)  # log p(g, ...)

    def extend(self, start: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(scores [B, K]: column 0 log p(g) ended, column c log p(g + c, ...); the forward variables
        of every g + c, nonblank and blank, [B, K, T]).

        ``start``: a length every g of the batch has at least (greedy decoding's step). g + c cannot
        end before CTC step ``start``, so the recursion begins there: the same result, fewer steps."""
        x, (b, steps, k) = self.x, self.x.shape
        chars = x.transpose(1, 2)  # [B, K, T]
        same = torch.arange(k, device=x.device)[None, :] == self.last[:, None]  # c repeats g's last
        # Paths into g + c at step t come from g ending at t-1 in a blank, or in a nonblank if c differs.
        into = torch.logaddexp(self.r_blank[:, None, :], torch.where(same[..., None], float("-inf"),
                                                                     self.r_nonblank[:, None, :]))
        start = min(start, steps - 1)  # past the last step every forward variable is -inf anyway
        neg = torch.full_like(chars[..., 0], float("-inf"))
        if start == 0:
            first = torch.where((self.last < 0)[:, None], chars[..., 0], neg)
        else:  # g ends at start - 1 at the earliest: nothing of g + c before step start
            first = into[..., start - 1] + chars[..., start]
        rn, rb, score = [neg] * start + [first], [neg] * (start + 1), first
        for t in range(start + 1, steps):
            rn.append(torch.logaddexp(rn[-1], into[..., t - 1]) + chars[..., t])
            rb.append(torch.logaddexp(rb[-1], rn[-2]) + x[:, None, t, 0])
            score = torch.logaddexp(score, into[..., t - 1] + chars[..., t])
        ended = torch.logaddexp(self.r_nonblank[:, -1], self.r_blank[:, -1])
        score = torch.cat([ended[:, None], score[:, 1:]], 1)
        return score, torch.stack(rn, -1), torch.stack(rb, -1)

    def advance(self, classes: torch.Tensor, scores: torch.Tensor, r_nonblank: torch.Tensor,
                r_blank: torch.Tensor) -> None:
        """Read ``classes`` [B] next (EOS leaves a finished prefix as it is), from :meth:`extend`'s output."""
        go = classes > 0
        pick = classes[:, None, None].expand(-1, 1, r_nonblank.shape[-1])
        self.r_nonblank = torch.where(go[:, None], r_nonblank.gather(1, pick)[:, 0], self.r_nonblank)
        self.r_blank = torch.where(go[:, None], r_blank.gather(1, pick)[:, 0], self.r_blank)
        self.score = torch.where(go, scores.gather(1, classes[:, None])[:, 0], self.score)
        self.last = torch.where(go, classes, self.last)


def ctc_loss(outputs: dict, batch: dict, encode) -> torch.Tensor:
    """CTC loss of ``ctc_logits`` on the batch's one-row plates (every plate without ``rows``
    labels): the mean over those plates of the loss per character."""
    logits, texts, rows = outputs["ctc_logits"], batch["texts"], batch.get("rows")
    keep = list(range(len(texts))) if rows is None else [i for i, r in enumerate(torch.as_tensor(rows).tolist()) if r != 2]
    if not keep:
        return logits.sum() * 0.0  # keeps every parameter in the graph (DDP)
    return ctc_text_loss(logits[keep], [texts[i] for i in keep], encode)


class RowRouter(nn.Module):
    """A small CNN that tells one-row from two-row plates before the recogniser reads them.

    It keeps the vertical resolution (a row of text is a horizontal band) and
    pools over the width only: 3 stride-2 convolutions, ~25k parameters.
    """

    def __init__(self, height: int, channels: int = 32):
        super().__init__()
        c = channels
        self.convs = nn.Sequential(
            nn.Conv2d(3, c // 2, 3, stride=2, padding=1), nn.BatchNorm2d(c // 2), nn.ReLU(inplace=True),
            nn.Conv2d(c // 2, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
        )
        bands = -(-height // 8)  # ceil: the feature height after three stride-2 convolutions
        self.fc = nn.Linear(c * bands, len(ROW_CLASSES))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        f = self.convs(images).mean(dim=3)  # [B, C, bands]: pooled across the width
        return self.fc(f.flatten(1))


def rows_side_by_side(images: torch.Tensor, height: int | None = None) -> torch.Tensor:
    """A two-row plate [B, 3, H, W] as one line [B, 3, height, W]: the top half and the bottom
    half, each resized to height x W/2 (default height: H), placed left and right (what a CTC
    reader can read in order)."""
    h, w = images.shape[-2:]
    half = h // 2
    height = height or h
    size = (height, w // 2)
    top = F.interpolate(images[..., :half, :], size=size, mode="bilinear", align_corners=False)
    bottom = F.interpolate(images[..., half:, :], size=size, mode="bilinear", align_corners=False)
    out = torch.cat([top, bottom], dim=-1)
    if out.shape[-1] != w:  # odd width: stretch the last column
        out = F.interpolate(out, size=(height, w), mode="bilinear", align_corners=False)
    return out


def classification_loss(outputs: dict, batch: dict) -> torch.Tensor | None:
    """Sum of the country and rows cross-entropies, for the heads in ``outputs`` whose labels
    are in ``batch`` (``countries``, ``rows``); None if none."""
    losses = []
    if "country_logits" in outputs and batch.get("countries") is not None:
        logits = outputs["country_logits"].float()
        target = country_targets(batch["countries"], logits.device)
        if (target != IGNORE).any():
            losses.append(F.cross_entropy(logits, target, ignore_index=IGNORE))
        else:
            losses.append(logits.sum() * 0.0)  # keeps every parameter in the graph (DDP)
    if "rows_logits" in outputs and batch.get("rows") is not None:
        logits = outputs["rows_logits"].float()
        target = row_targets(batch["rows"], logits.device)
        losses.append(F.cross_entropy(logits, target, ignore_index=IGNORE))
    if not losses:
        return None
    return torch.stack(losses).sum()
