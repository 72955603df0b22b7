"""The project's import graph: no circles, and the lower layers never reach back up.

Every ``.py`` file of the project (all but tests/, notebooks/ and virtual environments) is read
with ``ast``; every import counts, those inside functions and under ``TYPE_CHECKING`` too.
Importing ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` first, so it is also an
edge to those packages (except the importer's own parent packages, already running).

Check another tree: ``python tests/test_imports.py PATH``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {"tests", "notebooks", "__pycache__"}
# What each lower layer may import of the project (its own package included).
ALLOWED = {
    "common": {"common"},  # leaves: nothing of the project
    "data": {"data", "common"},  # data, plate formats, rendering: never models, configs, training, ...
}


def project_modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every project .py file under ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        dirs = rel.parts[:-1]
        if any(d in SKIP_DIRS or d.startswith(".") for d in dirs):
            continue
        if any((root.joinpath(*dirs[: i + 1]) / "pyvenv.cfg").exists() for i in range(len(dirs))):
            continue
        parts = list(dirs) + ([] if rel.stem == "__init__" else [rel.stem])
        if parts:
            out[".".join(parts)] = path
    return out


def _prefixes(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def module_imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that running ``name`` imports (directly)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    explicit: set[str] = set()
    implied: set[str] = set()  # parent packages run on the way
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                explicit.add(alias.name)
                implied.update(_prefixes(alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            implied.update(_prefixes(source))
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in modules:  # a submodule: the package runs on the way
                    explicit.add(sub)
                    implied.add(source)
                else:  # a name defined in the module
                    explicit.add(source)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            explicit.add(node.args[0].value)
            implied.update(_prefixes(node.args[0].value))
    own_parents = set(_prefixes(name))
    edges = {m for m in explicit if m in modules}
    edges |= {m for m in implied if m in modules and m not in own_parents}
    edges.discard(name)
    return edges


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = project_modules(root)
    return {name: module_imports(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[tuple[list[str], set[str]]]:
    """Per strongly connected component with a cycle: one cycle (a path back to its start), and
    every module of the component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def strongconnect(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(comp)

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))
    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    cycles = []
    for comp in components:
        start = min(comp)
        # Shortest path from start back to start inside the component (breadth first).
        prev: dict[str, str] = {}
        frontier, seen, end = [start], {start}, None
        while frontier and end is None:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v] & comp):
                    if w == start:
                        end = v
                        break
                    if w not in seen:
                        seen.add(w)
                        prev[w] = v
                        nxt.append(w)
                if end is not None:
                    break
            frontier = nxt
        path = [end]
        while path[-1] != start:
            path.append(prev[path[-1]])
        cycles.append((path[::-1] + [start], comp))
    return cycles


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    out = []
    for mod, targets in sorted(graph.items()):
        allowed = ALLOWED.get(mod.split(".")[0])
        if allowed is None:
            continue
        for t in sorted(targets):
            if t.split(".")[0] not in allowed:
                out.append(f"{mod} imports {t} ({mod.split('.')[0]}/ may import only {', '.join(sorted(allowed))})")
    return out


def check(root: Path) -> list[str]:
    """Every problem of the tree at ``root``, as lines to print; empty when the graph is clean."""
    graph = import_graph(root)
    problems = [f"import circle: {' -> '.join(c)} (modules in circles with them: {', '.join(sorted(comp))})"
                for c, comp in find_cycles(graph)]
    return problems + layer_violations(graph)


def test_the_graph_sees_the_project():
    graph = import_graph(ROOT)
    assert {"configs", "configs.schema", "models", "data.transforms", "data.synth.render"} <= set(graph)
    assert not any(m.startswith(("tests", "notebooks")) for m in graph)
    assert "models" in graph["configs"]  # configs builds the architecture's options
    assert "data.synth.effects" in graph["data.synth.render"]  # `from data.synth import effects`


def test_no_import_circles_and_no_climbing_back_up():
    problems = check(ROOT)
    assert not problems, "\n".join(problems)


def test_a_circle_and_a_climb_are_found(tmp_path):
    for pkg, text in {
        "configs/__init__.py": "from models import build\n",
        "models/__init__.py": "def build():\n    from configs.strict import check  # late\n",
        "configs/strict.py": "",
        "data/__init__.py": "",
        "data/x.py": "import os\n\ndef f():\n    from configs import strict\n",
    }.items():
        (tmp_path / pkg).parent.mkdir(exist_ok=True)
        (tmp_path / pkg).write_text(text)
    problems = check(tmp_path)
    assert any(p.startswith("import circle: configs -> models -> configs (") for p in problems), problems
    assert any(p.startswith("data.x imports configs") for p in problems), problems


if __name__ == "__main__":
    found = check(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT)
    print("\n".join(found) or "no import circles, no climbs back up")
    raise SystemExit(1 if found else 0)
