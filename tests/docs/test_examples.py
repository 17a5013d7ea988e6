"""Every command and file the README and the docs show runs as shown.

Each document's examples are taken from its code blocks, in order, and run as a reader would
type them, against a fresh engine (the demo: paper broker, SQLite store) started for that
document in a directory laid out as the docs assume (``.venv`` and ``scenarios/`` of this
checkout, the engine's data in ``data/``):

- ``.venv/bin/python -m engine …`` and ``python -m engine …`` lines run through a shell in that
  directory, their questions answered "y" on a terminal (the commands that ask need one); a
  command that follows (``--follow``, ``curl -N``) runs for a few seconds and must have written
  something by then; every other command must end with status 0;
- ``curl`` lines run against the engine (its address for ``127.0.0.1:8765``), ``TOKEN=$(…)``
  sets the variable the next lines use, ``cp`` and ``mv`` run in the directory;
- ``python -m engine run …`` is checked by the engine's own argument parser (the engine is
  already running), ``make …`` by ``make -n`` in the checkout (the target and its variables);
- absolute paths the operations guide uses for a server (``/srv/mimik``, ``/backups``) are
  inside the test's directory; ``systemctl`` and cron lines are the service manager's.

Each TOML block is a configuration file the engine's loader takes, or a scenario file that
``engine replay`` passes (a block of steps alone is checked as TOML: it is part of a scenario
the text around it describes).
"""

from __future__ import annotations

import os
import pty
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.__main__ import build_parser
from engine.app.config import ConfigError, parse_config
from tests.engine.engine_process import ROOT, EngineProcess, start_engine, stop_engine

DOCS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
COMMANDS = (".venv/bin/python -m engine", "python -m engine", "curl ", "make ", "cp ", "mv ")
SERVICE = ("systemctl ",)  # the service manager's, not the engine's
SERVER_PATHS = ("/srv/mimik", "/backups")
FOLLOWING = re.compile(r"--follow\b|curl -sN\b")
FOLLOW_SECONDS = 3.0
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Example:
    doc: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: {self.text}"


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    lang: str
    text: str


def blocks(doc: str) -> Iterator[Block]:
    """The document's fenced blocks and its indented (four spaces) code blocks."""
    lines = (ROOT / doc).read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if fence:
            end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
            yield Block(doc, index + 2, fence.group(1), "\n".join(lines[index + 1 : end]))
            index = end + 1
            continue
        starts_block = index == 0 or not lines[index - 1].strip()
        if lines[index].startswith("    ") and lines[index].strip() and starts_block:
            end = index
            while end < len(lines) and (lines[end].startswith("    ") or not lines[end].strip()):
                end += 1
            text = "\n".join(line[4:] for line in lines[index:end]).rstrip()
            yield Block(doc, index + 1, "", text)
            index = end
            continue
        index += 1


def examples(doc: str) -> list[Example]:
    """The shell lines of the document's code blocks, comments cut off, in order."""
    found = []
    for block in blocks(doc):
        if block.lang not in ("", "sh", "bash", "shell", "console"):
            continue
        for offset, raw in enumerate(block.text.splitlines()):
            text = _without_comment(raw.strip().removeprefix("$ "))
            if text.startswith(COMMANDS + SERVICE) or re.match(r"^[A-Z_]+=\$\(", text):
                found.append(Example(doc, block.line + offset, text))
    return found


def _without_comment(text: str) -> str:
    """``cmd --x 1   # what it does`` → ``cmd --x 1`` (a ``#`` inside a word is kept)."""
    return re.split(r"\s+#\s", text, maxsplit=1)[0].rstrip()


def toml_blocks(doc: str) -> list[Block]:
    return [b for b in blocks(doc) if b.lang == "toml"]


# --- the engine the examples of one document run against -------------------------------------


@dataclass
class Place:
    """The directory a reader runs the examples in, and what the shell lines have set."""

    root: Path
    engine: EngineProcess
    env: dict[str, str]

    def localize(self, text: str) -> str:
        text = text.replace("http://127.0.0.1:8765", self.engine.url)
        for path in SERVER_PATHS:
            text = text.replace(path, f"{self.root}{path}")
        return text


@pytest.fixture
def place(tmp_path: Path) -> Iterator[Place]:
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios")
    (tmp_path / "srv" / "mimik" / "data").mkdir(parents=True)  # a server's service directory
    # The demo leader trades once a minute, not every half second: a command that shows orders
    # and then sends them as shown (sync) must not see the leader trade in between.
    engine = start_engine(tmp_path / "data", "--demo-interval", "60")
    env = {
        **os.environ,
        "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    try:
        yield Place(tmp_path, engine, env)
    finally:
        stop_engine(engine)


def run_example(place: Place, example: Example) -> None:
    text = example.text
    if text.startswith(SERVICE):
        return
    if text.startswith("make "):
        _check_make(example)
        return
    words = shlex.split(text)
    if words[1:4] == ["-m", "engine", "run"]:
        _check_run(example, words[3:])
        return
    assignment = re.match(r"^([A-Z_]+)=(.*)$", text)
    if assignment:
        value = _shell(place, f"printf %s {assignment.group(2)}", example)
        place.env[assignment.group(1)] = value
        return
    _shell(place, place.localize(text), example)


def _check_make(example: Example) -> None:
    done = subprocess.run(
        ["make", "-n", *shlex.split(example.text)[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"{example}\n{done.stderr}"


def _check_run(example: Example, argv: list[str]) -> None:
    try:
        build_parser().parse_args(argv)
    except SystemExit as stop:
        pytest.fail(f"{example}: the engine's parser refused it (exit {stop.code})")


def _shell(place: Place, command: str, example: Example) -> str:
    """Run ``command`` through bash in the reader's directory, its stdin a terminal that answers
    "y"; the output, or the test fails naming the example."""
    controller, terminal = pty.openpty()
    os.write(controller, b"y\n")
    following = bool(FOLLOWING.search(command))
    try:
        proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=place.root,
            env=place.env,
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            out, err = proc.communicate(timeout=FOLLOW_SECONDS if following else 180)
        except subprocess.TimeoutExpired:
            if not following:
                proc.kill()
                proc.communicate()
                pytest.fail(f"{example}: did not end")
            proc.terminate()
            out, err = proc.communicate(timeout=30)
            assert out.strip(), f"{example}: nothing came in {FOLLOW_SECONDS} s\n{err}"
            return out
    finally:
        os.close(controller)
        os.close(terminal)
    assert proc.returncode == 0, f"{example}: exit {proc.returncode}\n{out}\n{err}"
    return out


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", [d for d in DOCS if examples(d)])
def test_every_command_shown_runs_as_shown(place: Place, doc: str) -> None:
    for example in examples(doc):
        run_example(place, example)


@pytest.mark.parametrize("doc", [d for d in DOCS if toml_blocks(d)])
def test_every_file_shown_is_taken(tmp_path: Path, doc: str) -> None:
    for block in toml_blocks(doc):
        where = f"{block.doc}:{block.line}"
        try:
            raw = tomllib.loads(block.text)
        except tomllib.TOMLDecodeError as error:
            pytest.fail(f"{where}: not valid TOML: {error}")
        if "step" in raw and "name" not in raw:
            continue  # steps of a scenario the text describes
        if "step" in raw:
            scenario = tmp_path / f"example-{block.line}.toml"
            scenario.write_text(block.text, encoding="utf-8")
            done = subprocess.run(
                [sys.executable, "-m", "engine", "replay", str(scenario)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, f"{where}: the scenario fails\n{done.stdout}"
            continue
        try:
            parse_config(raw, where, base_dir=tmp_path)
        except ConfigError as error:
            pytest.fail(f"{where}: the engine refuses it: {error}")


def test_the_examples_are_found() -> None:
    """The extraction itself: the README's commands and the operations guide's files are seen
    (a change of the docs' layout must not leave this test checking nothing)."""
    readme = [e.text for e in examples("README.md")]
    assert any(t.startswith(".venv/bin/python -m engine status") for t in readme)
    assert any(t.startswith("make run") for t in readme)
    assert len(toml_blocks("docs/operations.md")) >= 3
    assert _without_comment("make run     # the demo") == "make run"
    assert _without_comment("open http://x/#token=abc") == "open http://x/#token=abc"
