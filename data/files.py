"""Small file-system helpers shared by writers of files and folders (crop caches, splits, model folders, run folders)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``path`` through ``<path>.tmp`` and a rename: readers see the old file or the whole new one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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
