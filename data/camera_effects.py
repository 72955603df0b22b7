"""The names of the camera effects and their config check (``data.camera_effects``).

Names only, no image code: the config schema validates a config with them without importing
the augmentation (albumentations, torch), which ``data.transforms`` and ``data.camera`` build.
"""

from __future__ import annotations

from typing import Any

# The capture effects of other cameras (data/camera.py).
ROBUST_EFFECTS = ("false_colour", "tiny", "compression", "interlace", "halo", "occlusion", "exposure", "geometry")
# Camera effects beyond the base augmentation, each switched by its probability in
# data.camera_effects (training pipeline only).
CAMERA_EFFECTS = ("night", "low_res", "defocus", "soft", "motion", "rain", "faded", *ROBUST_EFFECTS, "invert", "bend",
                  "ghost", "rand_conv")
LIGHT_LOOKS = ("night", "faded", "false_colour")  # exclusive: a plate gets one of them at most


def check_camera_effects(mapping: Any, key: str = "data.camera_effects") -> dict[str, float]:
    """Validated {effect: probability}; errors name ``key.<effect>``."""
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise ValueError(f"{key}: expected a mapping of effect names to probabilities, got {mapping!r}")
    out = {}
    for k, v in mapping.items():
        if k not in CAMERA_EFFECTS:
            raise ValueError(f"unknown effect {key}.{k}; effects: {', '.join(CAMERA_EFFECTS)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            raise ValueError(f"{key}.{k}: expected a probability in [0, 1], got {v!r}")
        out[k] = float(v)
    return out
