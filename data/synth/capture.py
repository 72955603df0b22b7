"""Old home of :func:`data.synth.degrade.degrade`, kept for one release."""

from data.synth.degrade import degrade as capture_effects  # noqa: F401
