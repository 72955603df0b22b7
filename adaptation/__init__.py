"""Adapting a model to unlabelled crops by self-training (``adapt.py``; docs/adaptation.md).

- ``adaptation.filters``: the pseudo-label filters (pure functions of one :class:`Reading`)
- ``adaptation.rounds``: :func:`adapt`, the rounds (read, filter, fine-tune, read again)
"""

from adaptation.filters import REASONS, Reading, rejection
from adaptation.rounds import MIN_IMAGES, AdaptSettings, adapt

__all__ = ["MIN_IMAGES", "REASONS", "AdaptSettings", "Reading", "adapt", "rejection"]
