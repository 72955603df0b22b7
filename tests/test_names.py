"""One word for the number of text rows on a plate: ``rows``, never ``lines``.

Every project ``.py`` file (all but tests/, notebooks/ and virtual environments) is read with
``ast``. ``lines`` may still name a list of text lines (``lines = text.splitlines()``), so only
the forms that name the row count fail: an attribute ``x.lines``, a parameter or keyword
argument ``lines``, a compound name such as ``by_lines`` or ``parse_lines``, and the strings
``"lines"`` / ``"by_lines"`` (a column, a dict key), except where old files are read.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {"tests", "notebooks", "__pycache__"}
# Where the old names are read on purpose: the old column name and the old metrics key.
ALLOWED_STRINGS = {"data/datasets.py": {"lines"}, "metrics.py": {"by_lines"}}
COMPOUND = re.compile(r"^(?:\w+_)?lines(?:_\w+)?$")  # lowercase: DEALER_LINES (printed text) is fine


def project_files(root: Path) -> list[Path]:
    out = []
    for path in sorted(root.rglob("*.py")):
        dirs = path.relative_to(root).parts[:-1]
        if any(d in SKIP_DIRS or d.startswith(".") for d in dirs):
            continue
        if any((root.joinpath(*dirs[: i + 1]) / "pyvenv.cfg").exists() for i in range(len(dirs))):
            continue
        out.append(path)
    return out


def row_count_named_lines(path: Path, rel: str) -> list[str]:
    """``file:line: what`` for each use of ``lines`` as the row count in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        what = None
        if isinstance(node, ast.Attribute) and COMPOUND.match(node.attr):
            what = f"attribute .{node.attr}"
        elif isinstance(node, (ast.arg, ast.keyword)) and node.arg and COMPOUND.match(node.arg):
            what = f"argument {node.arg}"
        elif isinstance(node, (ast.Name, ast.FunctionDef, ast.ClassDef)):
            name = node.id if isinstance(node, ast.Name) else node.name
            if name != "lines" and COMPOUND.match(name):  # a plain `lines` may hold text lines
                what = f"name {name}"
        elif (isinstance(node, ast.Constant) and node.value in ("lines", "by_lines")
              and node.value not in ALLOWED_STRINGS.get(rel, ())):
            what = f"string {node.value!r}"
        if what:
            found.append(f"{rel}:{node.lineno}: {what}")
    return found


def test_the_row_count_is_called_rows():
    found = [hit for path in project_files(ROOT)
             for hit in row_count_named_lines(path, path.relative_to(ROOT).as_posix())]
    assert not found, "call the number of text rows `rows`, not `lines`:\n" + "\n".join(found)


def test_the_check_finds_the_old_names(tmp_path):
    src = tmp_path / "x.py"
    src.write_text("def f(lines):\n    n_lines = p.lines\n    return b['by_lines'], g(lines=2)\n"
                   "lines = text.splitlines()\n")
    assert sorted(h.split(": ", 1)[1] for h in row_count_named_lines(src, "x.py")) == [
        "argument lines", "argument lines", "attribute .lines", "name n_lines", "string 'by_lines'"]
