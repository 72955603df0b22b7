"""The plate bank: each rendered plate serves several training samples (``data.synth_bank_uses``).

Rendering a realism plate costs several times the augmentation that follows it. With a bank,
each stream (loader worker) holds ``size`` rendered plates; a sample is a plate drawn at random
from the bank, and the training transform (geometry, camera, light, sensor, codec: all drawn
anew per sample) makes it a new image. A plate leaves the bank after ``uses`` draws and a fresh
render takes its slot, so the bank renews itself continuously: at ``uses=4`` the stream renders
a quarter as many plates, and no plate is seen more than ``uses`` times in any run.

Off by default (``uses: 1``): whether a sample from the bank teaches as much as a fresh plate
must be measured against the plain stream (same steps, two seeds) before it becomes the default
(docs/experiments.md, "The plate bank").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BankSpec:
    """``size`` plates per stream, each drawn ``uses`` times; ``uses`` 1 means no bank."""

    size: int = 512
    uses: int = 1

    def __post_init__(self) -> None:
        for name in ("size", "uses"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"synth_bank_{name}: expected an integer >= 1, got {v!r}")

    @property
    def on(self) -> bool:
        return self.uses > 1


class PlateBank:
    """Draws from a bank of ``spec.size`` plates made by ``render``; see the module doc.

    Slots fill on first draw (no start-up stall); each draw picks a slot uniformly with ``rng``.
    """

    def __init__(self, render: Callable[[], object], spec: BankSpec, rng: np.random.Generator):
        self.render = render
        self.spec = spec
        self.rng = rng
        self.plates: list[object | None] = [None] * spec.size
        self.left = [0] * spec.size  # draws left for the plate in each slot
        self.rendered = 0  # plates rendered so far (for tests and the benchmark)
        self._slots: list[int] = []

    def __call__(self):
        if not self._slots:
            self._slots = self.rng.integers(0, self.spec.size, size=1024).tolist()
        i = self._slots.pop()
        if self.left[i] == 0:
            self.plates[i] = self.render()
            self.left[i] = self.spec.uses
            self.rendered += 1
        self.left[i] -= 1
        return self.plates[i]
