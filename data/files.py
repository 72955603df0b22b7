"""Small file-system helpers shared by writers of folders (crop caches, model folders, checkpoints)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def swap_into_place(tmp: Path, final: Path) -> None:
    """Replace folder ``final`` with the complete folder ``tmp``.

    The old folder is moved aside before the new one is renamed in, and removed
    only after: an interruption never leaves ``final`` half written.
    """
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.replace(final, old / final.name)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
