"""The one JSON reader (causal.jsonfile): strict JSON, errors naming the file, line and column."""

from __future__ import annotations

import pytest

from causal.errors import DataError
from causal.jsonfile import loads, read_json


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ('{"a": 1,\n "b": NaN}', "line 2, column 7", "NaN is not a JSON number"),
        ('{"a": -Infinity}', "line 1, column 7", "-Infinity is not a JSON number"),
        ('{"a": 1,\n  "a": 2}', "line 2, column 3", "key 'a' appears twice"),
        ('{"a": 1,,}', "line 1, column 9", "Expecting property name"),
    ],
)
def test_not_json_is_refused_with_line_and_column(text, where, what):
    with pytest.raises(DataError) as err:
        loads(text, "x.json")
    msg = str(err.value)
    assert msg.startswith("x.json: not valid JSON (") and where in msg and what in msg


def test_read_json_names_the_file_and_what_it_should_be(tmp_path):
    good = tmp_path / "good.json"
    good.write_text('\ufeff{"a": [1, 2.5, null]}', encoding="utf-8")  # a BOM is accepted
    assert read_json(good, "design file") == {"a": [1, 2.5, None]}
    with pytest.raises(DataError, match="missing.json: design file not found"):
        read_json(tmp_path / "missing.json", "design file")
    with pytest.raises(DataError, match="is a folder, not a design file"):
        read_json(tmp_path, "design file")
    bad = tmp_path / "latin.json"
    bad.write_bytes(b'{"a": "\xe9"}')
    with pytest.raises(DataError, match="latin.json: design file is not UTF-8 text"):
        read_json(bad, "design file")


def test_registry_command_reads_designs_with_it(tmp_path):
    from click.testing import CliRunner

    from allocation.cli.main import cli

    design = tmp_path / "design.json"
    design.write_text('{"treated": ["NA01"],\n "treated": ["NA02"], "duration_days": 14}')
    res = CliRunner().invoke(
        cli,
        [
            "registry",
            "add",
            "t",
            "--design",
            str(design),
            "--start",
            "2025-01-01",
            "--db",
            str(tmp_path / "r.db"),
        ],
    )
    # The command's error (exit 2 and one line through liftlab's handler) names the file and place.
    assert isinstance(res.exception, DataError)
    assert "design.json: not valid JSON (line 2, column 2: key 'treated' appears twice" in str(
        res.exception
    )
