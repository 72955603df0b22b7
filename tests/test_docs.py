"""The README and docs/ say what the code does: their commands still run.

From every ```bash block of README.md and docs/*.md:

- every ``python X.py``, ``python -m pkg.mod``, ``accelerate launch X.py`` and ``torchrun X.py``
  command names a script or module that exists, and each ``--flag`` it passes appears in that
  script's ``--help`` (all help texts are collected in one subprocess, so torch is imported once);
  every ``bash X.sh`` names a file that exists; the config a ``train_accelerate.py`` command builds
  (``--arch``, ``--config``, ``section.key=value`` overrides) loads;
- the blocks marked with a ``<!-- test: run -->`` line just above them run, in a scratch folder
  that links the repository's top-level entries (so outputs land there), and must exit 0.
  Mark only commands of a few seconds (tiny sizes: ``--n 20``).

Also: the README stays a front door (at most 300 lines), links every page in docs/, and every
relative link in README.md and docs/ points at a file (and heading) that exists.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUN_MARK = "<!-- test: run -->"
README_MAX_LINES = 300
OPERATORS = {"&&", "||", ";", "|"}
LAUNCHERS = {"accelerate", "torchrun"}  # their own flags come before the script


def bash_blocks(path: Path) -> list[tuple[int, str, bool]]:
    """(line number, text, marked to run) of each ```bash block."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            start, body = i + 1, []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            marked = start >= 2 and lines[start - 2].strip() == RUN_MARK
            blocks.append((start, "\n".join(body), marked))
        i += 1
    return blocks


def split_commands(block: str) -> list[list[str]]:
    """Shell words of each command in a block: continuations joined, comments dropped, split at && ; |."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        words: list[str] = []
        for word in shlex.split(line, comments=True):
            if word in OPERATORS:
                commands.append(words)
                words = []
            else:
                words.append(word)
        commands.append(words)
    return [c for c in commands if c]


def command_target(words: list[str]) -> tuple[str, str, list[str]] | None:
    """("script" | "module" | "shell", name, arguments) of a documented command, or None for others (pip, pytest)."""
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):  # VAR=value prefixes
        words = words[1:]
    if not words:
        return None
    head, rest = words[0], words[1:]
    if head in ("python", "python3") and rest:
        if rest[0] == "-m" and len(rest) > 1:
            return "module", rest[1], rest[2:]
        if rest[0].endswith(".py"):
            return "script", rest[0], rest[1:]
        return None
    if head in LAUNCHERS:
        for i, word in enumerate(rest):
            if word.endswith(".py"):
                return "script", word, rest[i + 1 :]
        return None
    if head == "bash" and rest and rest[0].endswith(".sh"):
        return "shell", rest[0], rest[1:]
    return None


def flags(arguments: list[str]) -> list[str]:
    """The --flags among a command's arguments ('[--config FILE]' counts, '--a=b' is '--a')."""
    found = []
    for word in arguments:
        word = word.strip("[]")
        if word.startswith("--") and len(word) > 2:
            found.append(word.split("=", 1)[0])
    return found


def documented_commands() -> list[tuple[str, str, str, list[str], list[str]]]:
    """(where, kind, name, flags, arguments) of every script/module/shell command in the docs."""
    out = []
    for path in DOCS:
        for line, block, _ in bash_blocks(path):
            for words in split_commands(block):
                target = command_target(words)
                if target:
                    kind, name, arguments = target
                    out.append((f"{path.relative_to(REPO)}:{line}", kind, name, flags(arguments), arguments))
    return out


OVERRIDE = re.compile(r"(arch|model|data|train)(\.\w+)*=.*")


def training_config(arguments: list[str]) -> tuple[str | None, str | None, list[str]] | None:
    """(arch, config path, overrides) a documented training command builds its config from, or None
    where the docs leave it open (--resume takes the run's config; a placeholder such as FILE)."""
    arch = config = None
    overrides = []
    for i, word in enumerate(arguments):
        if word.startswith("[") or word.endswith("]") and not OVERRIDE.fullmatch(word) or word == "--resume":
            return None
        if word == "--arch":
            arch = arguments[i + 1]
        elif word == "--config":
            config = arguments[i + 1]
        elif OVERRIDE.fullmatch(word):
            overrides.append(word)
    if config is not None and not (REPO / config).is_file():
        return None
    return arch, config, overrides


def module_exists(name: str) -> bool:
    path = REPO / Path(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__main__.py").is_file()


# Runs in one subprocess from the repository root (torch imported once): loads each documented
# training command's config, then captures each script's or module's --help.
HELP_COLLECTOR = r"""
import contextlib, io, json, runpy, sys, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, ".")
job = json.loads(sys.argv[1])
out, configs = {}, {}
for key, arch, path, overrides in job["configs"]:
    try:
        from configs import load_config
        load_config(arch, path, overrides)
        configs[key] = None
    except Exception as e:
        configs[key] = f"{type(e).__name__}: {e}"
for kind, name in job["help"]:
    buf, err = io.StringIO(), io.StringIO()
    argv = sys.argv[:]
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
            if kind == "module":
                sys.argv = [name, "--help"]
                runpy.run_module(name, run_name="__main__", alter_sys=True)
            else:
                sys.argv = [name, "--help"]
                runpy.run_path(name, run_name="__main__")
        out[name] = {"help": buf.getvalue(), "error": "--help did not exit"}
    except SystemExit as e:
        out[name] = {"help": buf.getvalue(), "error": None if e.code in (0, None) else err.getvalue()[-2000:]}
    except BaseException as e:
        out[name] = {"help": buf.getvalue(), "error": f"{type(e).__name__}: {e}"}
    finally:
        sys.argv = argv
print("\n@@HELP@@" + json.dumps({"help": out, "configs": configs}))
"""


def quiet_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", PYTHONWARNINGS="ignore")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


COMMANDS = documented_commands()
TRAINING_CONFIGS = {f"{where} #{i}": cfg for i, (where, _, name, _, arguments) in enumerate(COMMANDS)
                    if name == "train_accelerate.py" and (cfg := training_config(arguments))}
RUN_BLOCKS = [(f"{p.relative_to(REPO)}:{line}", block) for p in DOCS for line, block, marked in bash_blocks(p) if marked]


def make_scratch(root: Path) -> Path:
    """A folder that looks like the repository root, so documented relative paths work and outputs stay out of it."""
    for entry in REPO.iterdir():
        if entry.name not in (".git", "runs", "datasets") and not entry.name.startswith(".pytest"):
            (root / entry.name).symlink_to(entry)
    return root


@pytest.fixture(scope="module", autouse=True)
def background(tmp_path_factory):
    """Start the --help collector and every marked block at once (each mostly waits on imports), before the first test."""
    env = quiet_env()
    targets = sorted({(kind, name) for _, kind, name, _, _ in COMMANDS if kind != "shell"
                      and (module_exists(name) if kind == "module" else (REPO / name).is_file())})
    job = {"help": targets, "configs": [[key, *cfg] for key, cfg in TRAINING_CONFIGS.items()]}
    procs = {"help": subprocess.Popen([sys.executable, "-c", HELP_COLLECTOR, json.dumps(job)], cwd=REPO, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)}
    for where, block in RUN_BLOCKS:  # each block in a scratch folder of its own: they run side by side
        cwd = make_scratch(tmp_path_factory.mktemp("docs_run"))
        procs[where] = subprocess.Popen(["bash", "-euo", "pipefail", "-c", block], cwd=cwd, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield procs
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.fixture(scope="module")
def help_texts(background) -> dict[str, dict]:
    """{"help": {name: {"help", "error"}}, "configs": {key: error or None}} from the collector."""
    out, err = background["help"].communicate(timeout=300)
    assert "@@HELP@@" in out, f"help collector failed:\n{err[-3000:]}"
    return json.loads(out.split("@@HELP@@", 1)[1])


def test_readme_is_a_front_door():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"


def test_readme_links_every_doc_page():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in DOCS[1:] if f"](docs/{p.name}" not in readme]
    assert not missing, f"docs pages not linked from README.md: {missing}"


def heading_anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings (outside code blocks)."""
    anchors, fence = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and re.match(r"#{1,6} ", line):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_relative_links_resolve():
    broken = []
    for path in DOCS:
        text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                broken.append(f"{path.relative_to(REPO)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in heading_anchors(dest):
                broken.append(f"{path.relative_to(REPO)}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


@pytest.mark.parametrize("where,kind,name,used,arguments", COMMANDS, ids=[f"{c[0]} {c[2]}" for c in COMMANDS])
def test_documented_command_exists_and_takes_its_flags(where, kind, name, used, arguments, help_texts):
    if kind == "shell":
        assert (REPO / name).is_file(), f"{where}: {name} does not exist"
        return
    exists = module_exists(name) if kind == "module" else (REPO / name).is_file()
    assert exists, f"{where}: {'python -m ' if kind == 'module' else ''}{name} does not exist"
    result = help_texts["help"][name]
    assert result["error"] is None, f"{where}: {name} --help failed: {result['error']}"
    unknown = [f for f in used if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", result["help"])]
    assert not unknown, f"{where}: {name} does not accept {unknown} (not in its --help)"



def test_some_blocks_are_marked_to_run():
    assert any(where.startswith("README.md") for where, _ in RUN_BLOCKS), f"no {RUN_MARK} block in README.md"


@pytest.mark.parametrize("where,block", RUN_BLOCKS, ids=[w for w, _ in RUN_BLOCKS])
def test_marked_block_runs(where, block, background):
    out, _ = background[where].communicate(timeout=240)
    code = background[where].returncode
    assert code == 0, f"{where} exited {code}:\n{block}\n--- output\n{out[-3000:]}"


@pytest.mark.parametrize("key", sorted(TRAINING_CONFIGS))
def test_documented_training_config_loads(key, help_texts):
    """The config a documented training command builds (its --arch, --config and section.key=value overrides) loads."""
    arch, path, overrides = TRAINING_CONFIGS[key]
    error = help_texts["configs"][key]
    assert error is None, f"{key}: arch={arch} config={path} overrides={overrides}: {error}"
