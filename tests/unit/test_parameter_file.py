"""A parameters file that no one writes by hand is refused quickly, with a bounded message."""

from __future__ import annotations

from pathlib import Path

import pytest

from egress_lib import cli, load_parameters
from egress_lib.errors import ParameterError
from egress_lib.runner import EXIT_USAGE

REPO = Path(__file__).resolve().parents[2]


def _bomb(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghijk"[: levels - 1]:
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = name
    return "\n".join(lines) + f"\ncluster_name: *{prev}\n"


def _error(tmp_path: Path, content: str | bytes) -> ParameterError:
    path = tmp_path / "p.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ParameterError) as info:
        load_parameters(path)
    return info.value


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    err = _error(tmp_path, _bomb())
    assert [p.path for p in err.problems] == ["<yaml>"]
    assert "aliases" in str(err) and len(str(err)) < 400


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    text = (REPO / "parameters" / "sandbox.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "vswitches: [vsw-bp1o4rx9sl4yptgxte33g]", "vswitches: &gw [vsw-bp1o4rx9sl4yptgxte33g]"
    )
    path = tmp_path / "p.yaml"
    path.write_text(text + "x-note: *gw\n", encoding="utf-8")
    with pytest.raises(ParameterError) as info:  # the alias works; the unknown key is named
        load_parameters(path)
    assert [p.path for p in info.value.problems] == ["x-note"]


def test_a_long_value_comes_back_shortened(tmp_path: Path) -> None:
    err = _error(tmp_path, "cluster_name: " + "x" * 500_000 + "\n")
    first = str(err.problems[0])
    assert first.startswith("cluster_name: 'xxx") and "characters)" in first
    assert len(first) < 600


def test_a_file_over_the_size_limit(tmp_path: Path) -> None:
    err = _error(tmp_path, "cluster_name: " + "x" * (2 * 1024 * 1024) + "\n")
    assert "larger than 1024 KiB" in str(err)


def test_a_file_that_is_not_utf8_names_the_byte_and_line(tmp_path: Path) -> None:
    err = _error(tmp_path, "# ok\ncluster_name: caf\xe9\n".encode("latin-1"))
    assert [p.path for p in err.problems] == ["<file line 2>"]
    assert "0xe9" in str(err) and "UTF-8" in str(err)


def test_a_key_given_twice_names_both_places(tmp_path: Path) -> None:
    err = _error(tmp_path, "cluster_name: a\ngateway:\n  replicas: 2\n  replicas: 3\n")
    assert [p.path for p in err.problems] == ["<yaml line 4, column 3>"]
    assert "'replicas' is given twice (first at line 3, column 3)" in str(err)


def test_check_exits_2_on_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for content in (_bomb(), b"cluster_name: \xff\n", "a: 1\na: 2\n"):
        path = tmp_path / "p.yaml"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        assert cli.main(["check", str(path), "--offline"]) == EXIT_USAGE
        assert "Traceback" not in capsys.readouterr().err
