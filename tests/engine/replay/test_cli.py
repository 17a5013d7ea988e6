"""``python -m engine replay`` on an invalid scenario file (SCENARIOS.md): every error the file
has, each with its file and place, before the summary line, in which the file counts as failed;
nothing of it runs and the exit status is 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.engine.engine_process import ROOT

SETUP = """\
name = "several mistakes"

[[connection]]
id = "lead"

[[connection]]
id = "f"
colour = "red"

[[account]]
id = "LEAD"
connection = "lead"

[[account]]
id = "F1"
connection = "f"
balance = -5

[[group]]
id = "g1"
leader = "LEAD"
followers = [{ account = "F1" }]
"""

STEPS = """
[[step]]
trade = { account = "LEAD", symbol = "ESZ6", side = "buy", qty = -1 }

[[step]]
price = { symbol = "ESZ6", last = 5000 }

[[step]]
expect = { account = "F1", postion = 1, flat = "yes" }

[[step]]
sync = "NOPE"
"""

GOOD = """\
name = "a good one"

[[connection]]
id = "c"

[[account]]
id = "A"
connection = "c"

[[step]]
expect = { account = "A", flat = true }
"""


def replay(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", "replay", *map(str, paths)],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_error_of_an_invalid_file_before_the_summary(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(SETUP + STEPS)
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    done = replay(bad, good)
    assert done.returncode == 2, done.stdout
    lines = done.stdout.splitlines()
    errors = [line for line in lines if line.startswith("ERROR ")]
    assert errors == [
        f"ERROR {bad}: [[connection]] 2 (f): colour: unknown key 'colour' "
        "(expected one of: id, broker, state)",
        f"ERROR {bad}: [[account]] 2 (F1): balance: must not be negative, not -5",
        f"ERROR {bad}: step 1: trade.qty: must be a positive integer, not -1",
        f"ERROR {bad}: step 3: expect.postion: unknown key 'postion' in an account "
        "expectation (it has: " + errors[3].split("(it has: ", 1)[1],
        f'ERROR {bad}: step 3: expect.flat: must be true or false, not "yes"',
        f'ERROR {bad}: step 4: sync: "NOPE" is not a declared account',
    ]
    assert "position, symbol, flat" in errors[3]
    assert "PASS a good one" in lines
    assert lines[-1] == "1 passed, 1 failed"  # the invalid file counts as failed
    assert lines.index(errors[-1]) < lines.index("1 passed, 1 failed")
    assert not any("several mistakes" in line for line in lines)  # nothing of it ran
    assert "Traceback" not in done.stdout + done.stderr


def test_a_known_key_of_another_subject_reads_as_a_sentence(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace("flat = true", 'state = "connected"'))
    done = replay(bad)
    assert done.returncode == 2
    (error,) = [line for line in done.stdout.splitlines() if line.startswith("ERROR ")]
    assert error.startswith(
        f"ERROR {bad}: step 1: expect.state: 'state' is not a key an account expectation has "
        "(it has: position, "
    )
    assert done.stdout.splitlines()[-1] == "0 passed, 1 failed"
