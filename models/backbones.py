"""timm CNN backbones cut at a chosen stage, with their output shape found by a dummy pass."""

from __future__ import annotations

import re
from collections.abc import Mapping

import timm
import torch
from torch import nn

from models.ppocr import NAME as PPOCR_NAME  # a general OCR engine's recogniser, not a timm model
from models.ppocr import PPOCRFeatures


def check_backbone_name(name: str, key: str = "model.backbone") -> None:
    if name == PPOCR_NAME and key == "model.backbone":
        return
    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:8]
        hint = f" (similar: {', '.join(close)})" if close else ""
        raise ValueError(f"{key}: timm has no model named {name!r}{hint}")


class TimmFeatures(nn.Module):
    """The layers of a timm CNN up to feature stage ``stage`` (timm's feature index).

    ``stage`` counts timm's feature outputs: for ResNets 0 is the stem (stride 2),
    1..4 are layer1..layer4 (strides 4, 8, 16, 32). Later layers are not built.
    """

    def __init__(self, name: str, stage: int, pretrained: bool = False):
        super().__init__()
        check_backbone_name(name)
        probe = timm.create_model(name, pretrained=False, features_only=True)
        infos = probe.feature_info.get_dicts()
        if not 0 <= stage < len(infos):
            raise ValueError(
                f"model.backbone_stage={stage} is out of range for {name}: "
                f"it has stages 0..{len(infos) - 1} with strides {[i['reduction'] for i in infos]}"
            )
        del probe
        self.body = timm.create_model(
            name, pretrained=pretrained, features_only=True, out_indices=(stage,)
        )
        # timm's MobileNet and EfficientNet feature models keep, and run, every block after the
        # cut (its ResNets' FeatureListNet stops there): drop them.
        cut = re.fullmatch(r"blocks\.(\d+)", self.body.feature_info.module_name()[0])
        if cut and isinstance(getattr(self.body, "blocks", None), nn.Sequential):
            self.body.blocks = self.body.blocks[: int(cut.group(1)) + 1]
        self.channels: int = self.body.feature_info.channels()[0]
        self.stride: int = self.body.feature_info.reduction()[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)[0]

    @torch.no_grad()
    def output_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """(channels, feature height, feature width) for an input of height x width."""
        was_training = self.training
        self.eval()
        try:
            out = self(torch.zeros(1, 3, height, width))
        except RuntimeError as e:
            raise ValueError(
                f"data.image_height x data.image_width = {height}x{width} is too small for "
                f"this backbone cut: {e}"
            ) from e
        finally:
            self.train(was_training)
        if out.shape[-1] < 1 or out.shape[-2] < 1:
            raise ValueError(f"input {height}x{width} gives an empty feature map {tuple(out.shape)}")
        return int(out.shape[1]), int(out.shape[2]), int(out.shape[3])


def create_backbone(name: str, stage: int, pretrained: bool = False) -> nn.Module:
    """The CRNN's feature extractor: a timm CNN cut at ``stage``, or PP-OCRv4's recogniser
    (``ppocrv4_rec``, models/ppocr.py; ``stage`` unused)."""
    if name == PPOCR_NAME:
        return PPOCRFeatures(pretrained)
    return TimmFeatures(name, stage, pretrained)


# A parameter of residual block ``block`` of a ResNet stage: "<...>.layer2.3.conv1.weight".
_BLOCK_KEY = re.compile(r"^(?P<stage>.*\.layer\d+)\.(?P<block>\d+)\.(?P<rest>.+)$")
_NORM_WEIGHT = re.compile(r"^bn(?P<n>\d+)\.weight$")


def grown_blocks(own: Mapping[str, torch.Tensor], source: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights for the residual blocks that ``own`` (a deeper ResNet, e.g. resnet34) has beyond
    ``source`` (a shallower one of the same widths, e.g. resnet18) at the end of a stage.

    Each new block keeps its fresh initialisation with its last norm's scale (and shift) set to
    zero, so it starts as the identity and the grown model computes what ``source`` computed; the
    blocks learn from there. A new block with its own shortcut projection (another width) is not
    an identity and is left out, so loading the weights fails with the missing keys named.
    """
    have = {(m["stage"], int(m["block"])) for k in source if (m := _BLOCK_KEY.match(k))}
    last_block = {}
    for stage, block in have:
        last_block[stage] = max(block, last_block.get(stage, -1))
    new: dict[tuple[str, int], dict[str, torch.Tensor]] = {}
    for k, v in own.items():
        m = _BLOCK_KEY.match(k)
        if m and m["stage"] in last_block and int(m["block"]) > last_block[m["stage"]]:
            new.setdefault((m["stage"], int(m["block"])), {})[m["rest"]] = v.detach().clone()
    out: dict[str, torch.Tensor] = {}
    for (stage, block), params in new.items():
        norms = [int(n["n"]) for r in params if (n := _NORM_WEIGHT.match(r))]
        if not norms or any(r.startswith("downsample.") for r in params):
            continue
        last = f"bn{max(norms)}"
        params[f"{last}.weight"].zero_()
        if f"{last}.bias" in params:
            params[f"{last}.bias"].zero_()
        out.update({f"{stage}.{block}.{r}": v for r, v in params.items()})
    return out
