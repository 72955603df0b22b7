"""Small file-system helpers shared by writers of files and folders (crop caches, splits, model folders, run folders)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

# Inside the folder that holds the old ``final`` during a swap: the name of the complete new folder
# being moved in, so that a kill between the two renames can be finished (:func:`recover_swap`).
INCOMING = "incoming"


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``path`` through ``<path>.tmp`` and a rename: readers see the old file or the whole new one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def swap_into_place(tmp: Path, final: Path) -> None:
    """Replace folder ``final`` with the complete folder ``tmp``.

    The old folder is moved aside (into ``.<final>.old-*``) before the new one is renamed in,
    and removed only after: an interruption never leaves ``final`` half written, and
    :func:`recover_swap` puts a folder back at ``final`` after a kill between the renames.
    """
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        (old / INCOMING).write_text(tmp.name)
        os.replace(final, old / final.name)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def swap_leftovers(final: Path) -> list[Path]:
    """The old folders (``.<final>.old-*``) that interrupted swaps into ``final`` left behind."""
    return sorted(final.parent.glob(f".{final.name}.old-*"))


def recover_swap(final: Path) -> str | None:
    """After a kill: finish or undo a :func:`swap_into_place` into ``final`` and remove what it
    left. Killed between its two renames (``final`` missing), the complete new folder is moved in
    (its name is recorded beside the old one), else the old one goes back. Says what it restored."""
    restored = None
    for holder in swap_leftovers(final):
        if not final.exists():
            incoming = holder / INCOMING
            name = incoming.read_text().strip() if incoming.is_file() else ""
            new = final.parent / name if name and "/" not in name else None
            if new is not None and new.is_dir():
                os.replace(new, final)
                restored = f"{final}: the new folder ({new.name}) of an interrupted swap moved in"
            elif (holder / final.name).is_dir():
                os.replace(holder / final.name, final)
                restored = f"{final}: the previous folder put back after an interrupted swap"
        shutil.rmtree(holder, ignore_errors=True)
    return restored
