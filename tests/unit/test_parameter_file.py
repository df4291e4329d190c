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


def test_a_utf16_file_is_named_as_such(tmp_path: Path) -> None:
    err = _error(tmp_path, "cluster_name: a\n".encode("utf-16"))
    assert str(err.problems[0]) == (
        "<file line 1>: the file is UTF-16 (it starts with a UTF-16 byte order mark); "
        "expected UTF-8 text (save the file as UTF-8)"
    )


def test_a_control_character_names_its_line_and_column(tmp_path: Path) -> None:
    err = _error(tmp_path, "cluster_name: a\nnamespace: de\x00fault\n")
    assert [p.path for p in err.problems] == ["<yaml line 2, column 14>"]
    assert "character U+0000 is not allowed in YAML" in str(err)


def test_a_syntax_error_says_where_the_unclosed_construct_began(tmp_path: Path) -> None:
    err = _error(tmp_path, 'cluster_name: "abc\nnamespace: default\n')
    assert [p.path for p in err.problems] == ["<yaml line 3, column 1>"]
    assert "while scanning a quoted scalar (at line 1, column 15)" in str(err)


def test_a_python_tag_is_refused_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    err = _error(tmp_path, f"cluster_name: !!python/object/apply:os.system ['touch {marker}']\n")
    assert "YAML tag refused" in str(err) and not marker.exists()


@pytest.mark.parametrize("content", ["", "# only a comment\n", "\n\n"])
def test_an_empty_file_is_one_problem(tmp_path: Path, content: str) -> None:
    err = _error(tmp_path, content)
    assert [p.path for p in err.problems] == ["<root>"]
    assert "the file holds no YAML document (it is empty or only comments)" in str(err)


def test_a_document_that_is_not_a_mapping(tmp_path: Path) -> None:
    err = _error(tmp_path, "- cluster_name: a\n")
    assert str(err.problems[0]).startswith("<root>: the document is a list, not a mapping;")


def test_the_size_refusal_names_the_size(tmp_path: Path) -> None:
    err = _error(tmp_path, "# " + "x" * (3 * 1024 * 1024) + "\n")
    size = (tmp_path / "p.yaml").stat().st_size
    assert f"({size:,} bytes); refused unread" in str(err)


def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    err = _error(tmp_path, "cluster_name: " + "[" * 5000 + "]" * 5000 + "\n")
    assert str(err.problems[0]) == (
        "<yaml line 1, column 64>: the document nests more than 50 levels deep: refused; "
        "expected at most 50 levels of nested lists and mappings"
    )


def test_a_chain_of_aliases_is_refused_by_its_expanded_depth(tmp_path: Path) -> None:
    chain = "".join(f"l{i}: &l{i} [*l{i - 1}]\n" for i in range(1, 3000))
    err = _error(tmp_path, "l0: &l0 x\n" + chain + "cluster_name: *l2999\n")
    assert [p.path for p in err.problems] == ["<yaml>"] and "50 levels" in str(err)
