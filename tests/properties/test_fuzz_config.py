"""Fuzzing the configuration file, the edge every live start passes through.

Random bytes, the full example file with characters damaged, and the same file with values
swapped for values of any TOML type, keys dropped or unknown keys added: each either loads, and
then seeds an empty store without a refusal (the file's checks are the store's, found before
the start), or is a :class:`ConfigError` whose every line names the file and says what is wrong
— never another exception.
"""

from __future__ import annotations

import copy
import tempfile
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import event, example, given
from hypothesis import strategies as st

from brokers.clock import VirtualClock
from brokers.instruments import ContractTable
from brokers.paper import PaperBroker
from engine.app.config import Config, ConfigError, load_config, parse_config
from engine.app.seeding import seed_from_config
from engine.core.engine import Engine, EngineSettings
from engine.storage.store import Store
from tests.engine.app.test_config import FULL
from tests.properties.engine_model import quiet_logs
from tests.properties.profiles import property_settings, scaled

START = datetime(2026, 1, 6, 15, 0, tzinfo=UTC)
SOURCE = "engine.toml"
FULL_RAW: dict[str, Any] = tomllib.loads(FULL)


def _check_error(error: ConfigError) -> None:
    lines = str(error).splitlines()
    assert lines and error.errors
    for line in lines:
        assert line.startswith(f"{SOURCE}: ") and len(line) > len(SOURCE) + 2, line
        assert "Traceback" not in line


def _seeds(config: Config) -> None:
    """A configuration that loaded seeds an empty store as it says."""
    with tempfile.TemporaryDirectory(prefix="config-fuzz-") as folder, quiet_logs():
        clock = VirtualClock(START)
        contracts = ContractTable()
        store = Store(Path(folder) / "engine.sqlite")
        engine = Engine(
            store=store,
            clock=clock,
            brokers={"paper": PaperBroker(clock, contracts)},
            contracts=contracts,
            settings=EngineSettings(runtime="deterministic"),
        )
        try:
            seed_from_config(engine, config)
            topology = engine.topology
            assert list(topology.connections) == [c.id for c in config.connections]
            assert sorted(topology.accounts) == sorted(a.id for a in config.accounts)
            assert sorted(topology.groups) == sorted(g.id for g in config.groups)
        finally:
            engine.stop()
            store.close()


def _loads_or_says_why(raw: dict[str, Any]) -> None:
    try:
        config = parse_config(raw, SOURCE)
    except ConfigError as error:
        event("refused")
        _check_error(error)
        return
    event("loaded")
    _seeds(config)


# --- the file as text -----------------------------------------------------------------------------


@st.composite
def damaged_text(draw: st.DrawFn) -> str:
    text = FULL
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 8))
        insert = draw(
            st.text(alphabet=st.sampled_from('[]{}="#.,-0123456789 \nabcé\t\\'), max_size=6)
        )
        text = text[:at] + insert + text[at + cut :]
    return text


@given(text=st.one_of(st.text(max_size=300), damaged_text()))
@example(text="")
@example(text="\x00")
@example(text=FULL)
@property_settings(max_examples=scaled(150))
def test_any_file_loads_or_is_a_config_error(text: str) -> None:
    with tempfile.TemporaryDirectory(prefix="config-fuzz-") as folder:
        path = Path(folder) / SOURCE
        path.write_text(text, encoding="utf-8")
        try:
            config = load_config(path)
        except ConfigError as error:
            event("refused")
            assert str(error).startswith(str(path))
            return
        event("loaded")
        _seeds(config)


# --- the file's structure -------------------------------------------------------------------------

SCALARS = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["", "0", "-1", "1e400", "NaN", "ES", "MES", "LEAD", "F1", "paper", "main"]),
    st.datetimes(timezones=st.just(UTC)),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key or index in the document, depth first."""
    found: list[tuple[Any, ...]] = []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, value in items:
        found.append((*prefix, key))
        found.extend(_paths(value, (*prefix, key)))
    return found


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(FULL_RAW)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        parent = _parent(doc, path)
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(VALUES)
        elif action == "drop":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(VALUES)
        else:
            parent.append(draw(VALUES))
    return doc


@given(raw=mutated())
@property_settings(max_examples=scaled(200))
def test_a_file_with_any_value_changed_loads_or_names_the_key(raw: dict[str, Any]) -> None:
    _loads_or_says_why(raw)


def test_the_unchanged_example_loads_and_seeds() -> None:
    """The mutation's starting point is valid, so a refusal above is the mutation's doing."""
    _seeds(parse_config(copy.deepcopy(FULL_RAW), SOURCE))
