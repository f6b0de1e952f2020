"""Hostile input: fuzzed configs and catalogs, catalog text that attacks the store, and places a run cannot write.

Whatever a config or catalog holds, ``tribunal validate`` and ``tribunal run`` answer with one clean line and exit
code 2, never a traceback, and leave no run directory behind. Text with quotes, SQL fragments, emoji,
right-to-left and CJK scripts is data and comes back from the store byte for byte. A run that cannot write its
directory, or whose disk fills up, says so in one line.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphs.cli import main
from graphs.store import TranscriptStore
from tests.conftest import STARTER, scripted_config
from tests.reliability.conftest import query

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same examples on every machine: CI never flakes on a newly found case
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# junk that exercises parsers and terminals: control characters, markup, bidi overrides, astral planes
JUNK = st.lists(
    st.one_of(
        st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8),
        st.sampled_from(["\n", "\r", "\t", "\x00", "\x1b[31m", "[/red]", "[bold]", "\u202e", "{", "}", "${X}", ": "]),
    ),
    max_size=4,
).map("".join)
KEYS = JUNK  # unknown field names, line breaks included: the error escapes them
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), JUNK, st.just("")
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(JUNK, inner, max_size=3)),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


def _mutate(data: Any, draw: Any) -> Any:
    """Change a random field to a random value, delete it, or add an unknown field beside it."""
    data = copy.deepcopy(data)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        if not paths:
            return draw(VALUES)
        path = draw(st.sampled_from(paths))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["set", "set", "delete", "add"]))
        if action == "set":
            parent[path[-1]] = draw(VALUES)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(KEYS)] = draw(VALUES)
        else:
            parent.append(draw(VALUES))
    return data


def _document(data: Any, draw: Any) -> str:
    """``data`` as YAML, sometimes with junk spliced into the text or the text cut short."""
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    edit = draw(st.sampled_from(["none", "none", "splice", "truncate"]))
    at = draw(st.integers(0, len(text)))
    if edit == "splice":
        text = text[:at] + draw(JUNK) + text[at:]
    elif edit == "truncate":
        text = text[:at]
    return text


def _assert_clean(result: Result, *, ok_codes: tuple[int, ...] = (0, 2)) -> None:
    output = result.output + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in output
    assert result.exit_code in ok_codes, output
    if result.exit_code != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: ")


def _check_cli(folder: Path, config_path: Path) -> None:
    """``validate`` and ``run`` agree, fail cleanly with code 2, and a failed run leaves no directory."""
    validated = CliRunner().invoke(main, ["validate", str(config_path)])
    _assert_clean(validated)
    out = folder / "run-dir"
    ran = CliRunner().invoke(main, ["run", str(config_path), "--out", str(out), "--limit", "2", "--no-progress"])
    _assert_clean(ran)
    if validated.exit_code == 2:
        assert ran.exit_code == 2
    if ran.exit_code == 2:
        assert not out.exists()


def _small_config() -> dict[str, Any]:
    config = scripted_config()
    config["grid"].update(languages=["en"], repeats=1)
    return config


@pytest.mark.slow
@FUZZ
@given(st.data())
def test_fuzzed_configs_fail_cleanly(data):
    config = _mutate(_small_config(), data.draw)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(_document(config, data.draw), encoding="utf-8")
        _check_cli(Path(tmp), path)


@pytest.mark.slow
@FUZZ
@given(st.data(), st.sampled_from(["personas", "targets", "templates"]))
def test_fuzzed_catalogs_fail_cleanly(data, which):
    catalog = yaml.safe_load((STARTER / f"{which}.yaml").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / f"{which}.yaml").write_text(_document(_mutate(catalog, data.draw), data.draw), encoding="utf-8")
        config = scripted_config()
        config["grid"].update({which: f"{which}.yaml", f"{which[:-1]}_ids": None, "languages": ["en"], "repeats": 1})
        config["grid"] = {k: v for k, v in config["grid"].items() if v is not None}
        path = folder / "config.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        _check_cli(folder, path)


@pytest.mark.parametrize(
    "document",
    [
        "name: x\nmodels: [{name: a, backend: scripted}]\ngrid: {personas: '\n\x00'}\n",
        "name: x\nmodels:\n  - {name: a, backend: scripted, options: {rules: [{match: '[/red]', reply: x}]}}\n",
        "&a [*a]",
        "name: !!python/object:os.system echo\n",
        "{" * 200,
        "name: x\n" + "\u202e" * 10 + ": 1\n",
    ],
    ids=["control-chars", "rich-markup", "yaml-alias-loop", "python-tag", "deep-nesting", "bidi-override-key"],
)
def test_known_nasty_documents_fail_cleanly(tmp_path, document):
    path = tmp_path / "config.yaml"
    path.write_text(document, encoding="utf-8")
    _check_cli(tmp_path, path)


@pytest.mark.parametrize("kind", ["device", "fifo", "folder"])
def test_catalogs_that_are_not_regular_files_fail_cleanly(tmp_path, kind):
    import os

    if kind == "device":
        source = "/dev/zero"
    elif kind == "fifo":
        source = str(tmp_path / "personas.fifo")
        os.mkfifo(source)
    else:
        source = str(tmp_path)
    config = _small_config()
    config["grid"]["personas"] = source
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    _check_cli(tmp_path, path)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2 and "grid.personas" in result.stderr


def test_billion_laughs_fails_cleanly(tmp_path):
    config = _small_config()
    laughs = 'lol: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for level in range(1, 9):
        laughs += f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 10)}]\n"
    text = yaml.safe_dump(config, sort_keys=False).replace(
        "    default:", "    laughs:\n" + "".join(f"      {line}\n" for line in laughs.splitlines()) + "    default:", 1
    )
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    assert path.stat().st_size < 4000
    _check_cli(tmp_path, path)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2 and "alias" in result.stderr


def test_backend_option_of_the_wrong_type_fails_cleanly(tmp_path):
    config = _small_config()
    config["models"][0]["options"]["rules"][0]["match"] = None
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    _check_cli(tmp_path, path)


@pytest.mark.parametrize("key", ["bad\nkey", "bad\u2028key"], ids=["newline", "line-separator"])
def test_unknown_field_with_a_line_break_fails_in_one_line(tmp_path, key):
    config = {**_small_config(), key: 1}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    _check_cli(tmp_path, path)


# ----------------------------------------------------------------------------------------- text round trip
HOSTILE = {
    "quotes": "a person who says \"hello\" and 'goodbye' and `whatever` \\ \\n",
    "sql": "'); DROP TABLE cells;-- and \" OR 1=1 --",
    "emoji": "a 🧑‍🚀 astronaut 👩🏽‍⚕️ who loves 🏳️‍🌈 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "arabic": "شخص طيب يحب القراءة",
    "hebrew": "אדם טוב שאוהב לקרוא",
    "cjk": "一个喜欢读书的好人，日本語のテキスト、한국어 텍스트",
    "controls": "tab\there, bidi \u202eoverride\u202c, zero\u200bwidth, nul-free",
}


def test_hostile_catalog_text_round_trips_through_the_store(tmp_path, write_config):
    personas = {
        "version": "1",
        "personas": [
            {"id": f"p_{name}", "kind": "basic", "category": "basic", "text": {"en": text, "zh": text}}
            for name, text in HOSTILE.items()
        ],
    }
    targets = {"version": "1", "targets": [{"id": "t", "category": "c", "name": {"en": HOSTILE["sql"], "zh": "移民"}}]}
    templates = {
        "version": "1",
        "templates": [
            {"id": "x", "style": "generic", "text": {"en": HOSTILE["arabic"] + " {target} 🙂", "zh": "{target}"}}
        ],
    }
    for name, data in (("personas", personas), ("targets", targets), ("templates", templates)):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config = scripted_config()
    config["models"][0]["options"] = {"rules": [], "default": "{last} | " + HOSTILE["emoji"]}
    config["grid"] = {
        "personas": str(tmp_path / "personas.yaml"),
        "targets": str(tmp_path / "targets.yaml"),
        "templates": str(tmp_path / "templates.yaml"),
        "languages": ["en", "zh"],
        "repeats": 1,
    }
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", str(write_config(config)), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output + result.stderr

    assert {t for (t,) in query(out, "SELECT name FROM sqlite_master WHERE type = 'table'")} >= {"cells"}
    rows = query(
        out,
        "SELECT c.persona_id, c.language, c.messages, g.text, g.messages "
        "FROM cells c JOIN generations g USING (cell_key)",
    )
    assert len(rows) == (len(HOSTILE) + 1) * 2
    for persona_id, language, cell_messages, text, generation_messages in rows:
        messages = json.loads(cell_messages)
        assert json.loads(generation_messages) == messages
        user = messages[-1]["content"]
        expected_user = HOSTILE["arabic"] + " " + HOSTILE["sql"] + " 🙂" if language == "en" else "移民"
        assert user == expected_user
        assert text == f"{user} | {HOSTILE['emoji']}"
        if persona_id != "none":
            assert HOSTILE[persona_id.removeprefix("p_")] in messages[0]["content"]
    snapshot = yaml.safe_load((out / "config.yaml").read_text(encoding="utf-8"))
    assert [p["text"]["en"] for p in snapshot["personas"]] == list(HOSTILE.values())


# ------------------------------------------------------------------------------------- unwritable places
@pytest.mark.parametrize("out", ["/dev/null/run", "/proc/tribunal-run/run"], ids=["under-a-file", "under-procfs"])
def test_unwritable_output_directory_gives_one_clear_line(write_config, out):
    result = CliRunner().invoke(main, ["run", str(write_config(_small_config())), "--out", out, "--no-progress"])
    _assert_clean(result, ok_codes=(1,))
    line = result.stderr.strip()
    assert out in line and "cannot create the run directory" in line


class _FullDisk:
    """A connection whose writes fail as SQLite's do when the disk is full (after the run has started)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.full = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    def _check(self, sql: str) -> None:
        if self.full and sql.lstrip().upper().startswith(("INSERT", "UPDATE")):
            raise sqlite3.OperationalError("database or disk is full")

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._check(sql)
        return self._db.execute(sql, *args)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        self._check(sql)
        if sql.startswith("INSERT OR REPLACE INTO generations"):
            self.full = True  # the disk fills up while the first chunk is written
            self._check(sql)
        return self._db.executemany(sql, rows)


def test_full_disk_gives_one_clear_line(tmp_path, write_config, monkeypatch):
    original = TranscriptStore.__init__

    def init(self, path, *, readonly=False):
        original(self, path, readonly=readonly)
        self._db = _FullDisk(self._db)

    monkeypatch.setattr(TranscriptStore, "__init__", init)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", str(write_config(_small_config())), "--out", str(out), "--no-progress"])
    _assert_clean(result, ok_codes=(1,))
    assert "disk is full" in result.stderr
