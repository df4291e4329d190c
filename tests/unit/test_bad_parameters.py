"""`egress-runbook check` refuses every file of tests/bad_parameters/, and calls no API doing so.

Each corpus file is a valid sandbox file with one mistake; its first lines say which problems
the message must name (tests/bad_parameters/README.md). The check runs against a live sandbox
(block 47, one for the module) whose audit log records every request its APIs get: a refused
file must leave that log as it was, while a valid file that names cluster objects adds to it
(the control that shows the log would see a call).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from egress_lib import cli, load_parameters
from egress_lib.errors import ParameterError
from egress_lib.runner import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from egress_sandbox.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "bad_parameters"
FILES = sorted(CORPUS.glob("*.yaml"))
SANDBOX_PARAMS = REPO / "parameters" / "sandbox.yaml"
BLOCK = 47
# A refused file's whole message: the problems, the remedy, the file's name; never its bulk.
MESSAGE_LIMIT = 3000


@dataclass(frozen=True)
class Expect:
    """One problem the message must report: its key path and fragments of its line."""

    path: str
    value: str
    expected: str


# Files that cannot carry an "# expect:" header.
HEADERLESS = {
    "empty.yaml": [Expect("<root>", "no YAML document", "a YAML mapping of the parameters")],
    "not-utf8-utf16.yaml": [
        Expect("<file line 1>", "the file is UTF-16", "UTF-8 text (save the file as UTF-8)")
    ],
}
# What must never come back in a message (the corpus's one credential value).
NEVER_SHOWN = {"key-credential.yaml": "hunter2-not-a-real-secret"}


def expectations(path: Path) -> list[Expect]:
    """The file's "# expect: path | value | expected" lines (or its HEADERLESS entry)."""
    if path.name in HEADERLESS:
        return HEADERLESS[path.name]
    out = []
    for line in path.read_bytes().split(b"\n"):
        if not line.startswith(b"#"):
            break
        if line.startswith(b"# expect: "):
            key, value, expected = line[len(b"# expect: ") :].decode("ascii").split(" | ")
            out.append(Expect(key, value, expected))
    assert out, f"{path.name} has no '# expect:' line"
    return out


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    from sandbox_env import sandbox_home

    with sandbox_home(tmp_path_factory.mktemp("bad-parameters"), BLOCK) as sandbox:
        yield sandbox


def _check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    # Not --offline: were the file accepted, check would go on to read the cluster.
    code = cli.main(["check", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def _problems(path: Path) -> dict[str, str]:
    with pytest.raises(ParameterError) as info:
        load_parameters(path)
    return {p.path: str(p) for p in info.value.problems}


def _assert_refused(code: int, out: str, err: str) -> None:
    assert code == EXIT_USAGE, out + err
    assert out == ""
    assert "Traceback" not in err
    assert "Nothing was changed." in err
    assert len(err) < MESSAGE_LIMIT, err[:MESSAGE_LIMIT]


def test_the_corpus_holds_every_kind_of_mistake_the_issue_lists() -> None:
    names = {p.stem for p in FILES}
    assert len(names) >= 40
    kinds = {
        "wrong types": "type-",
        "misspelt keys": "key-misspelt-",
        "unknown keys": "key-unknown",
        "vsw- IDs": "id-vswitch-",
        "ngw- IDs": "id-nat-gateway",
        "eip- IDs": "id-eip-",
        "cluster IDs": "id-cluster-",
        "region IDs": "id-region-",
        "upper-case hosts": "host-upper-case",
        "hosts with underscores": "host-underscore",
        "hosts with ports": "host-port",
        "IP addresses as hosts": "host-ip-address",
        "wildcards": "host-wildcard",
        "paths": "path-",
        "path types": "path-type-",
        "ports": "port-",
        "CIDRs": "cidr-",
        "duplicate names": "duplicate-destination-name",
        "duplicate hosts": "duplicate-destination-host",
        "three vSwitches": "vswitches-three",
        "replicas 31": "replicas-31",
        "instance spec": "spec-unknown",
        "conflicting snat_ip": "id-snat-ip-private",
        "YAML syntax": "yaml-unclosed-",
        "alias bombs": "yaml-alias-bomb",
        "duplicate YAML keys": "yaml-duplicate-key",
        "empty file": "empty",
        "not UTF-8": "not-utf8-",
    }
    missing = [
        kind for kind, prefix in kinds.items() if not any(n.startswith(prefix) for n in names)
    ]
    assert missing == []


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_check_refuses_the_mistake_and_calls_no_api(
    path: Path, box: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    before = len(box.audit.records())
    code, out, err = _check(path, capsys)
    _assert_refused(code, out, err)
    problems = _problems(path)
    expects = expectations(path)
    # Exactly the problems the mistake causes: the rest of the file is valid.
    assert set(problems) == {x.path for x in expects}
    for x in expects:
        line = problems[x.path]
        assert line in err  # printed whole: key path, what is wrong, what is expected
        what, _, expected = line.partition("; expected ")
        assert x.value in what and x.expected in expected, line
    if path.name in NEVER_SHOWN:
        assert NEVER_SHOWN[path.name] not in err
    assert len(box.audit.records()) == before, "check called an API for a refused file"


def test_a_valid_file_naming_cluster_objects_is_looked_up(
    box: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """The control: check does call the cluster for a valid file, and the audit log sees it."""
    before = len(box.audit.records())
    code, out, err = _check(REPO / "parameters" / "sandbox-policies.yaml", capsys)
    assert code == EXIT_OK, err
    assert "✓ destinations[0].policies.mirror.service" in out
    calls = box.audit.records()[before:]
    assert {(r.api, r.action) for r in calls} == {("k8s", "get")}


def test_the_shipped_files_pass_check(box: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("sandbox.yaml", "example-ack.yaml"):
        code, out, err = _check(REPO / "parameters" / name, capsys)
        assert code == EXIT_OK, err
        assert f"{name}: valid (" in out


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_of_several_megabytes_is_refused_unread(
    tmp_path: Path, box: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    base = SANDBOX_PARAMS.read_text(encoding="utf-8")
    path = _write(
        tmp_path, base.replace("cluster_name: sandbox", "cluster_name: " + "x" * 5_000_000)
    )
    before = len(box.audit.records())
    code, out, err = _check(path, capsys)
    _assert_refused(code, out, err)
    size = path.stat().st_size
    assert f"<file>: the file is larger than 1024 KiB ({size:,} bytes); refused unread" in err
    assert "xxxxxxxxxx" not in err
    assert len(box.audit.records()) == before


def test_a_value_of_most_of_a_megabyte_is_quoted_shortened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = SANDBOX_PARAMS.read_text(encoding="utf-8")
    path = _write(tmp_path, base.replace("host: www.aliyun.com", "host: " + "a" * 900_000))
    code, out, err = _check(path, capsys)
    _assert_refused(code, out, err)
    assert "destinations[0].host: 'aaaa" in err and "characters)…aaaa" in err


def test_every_mistake_in_a_file_is_reported_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = SANDBOX_PARAMS.read_text(encoding="utf-8")
    for old, new in (
        ("host: www.aliyun.com", "host: '*.aliyun.com'"),
        ("replicas: 3", "replicas: 31"),
        ("vswitches: [", "vswitch: ["),
    ):
        base = base.replace(old, new)
    code, out, err = _check(_write(tmp_path, base), capsys)
    _assert_refused(code, out, err)
    assert "4 invalid parameters" in err
    for key in ("destinations[0].host", "gateway.replicas", "gateway.vswitch", "gateway.vswitches"):
        assert f"  - {key}: " in err


def test_a_wildcard_host_stops_the_run_before_step_01(
    tmp_path: Path, box: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to pass check and fail at step 04, after 01 to 03 had changed the cloud."""
    before = len(box.audit.records())
    path = CORPUS / "host-wildcard.yaml"
    code = cli.main(["run", str(path), "--approve", "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "destinations[0].host: '*.aliyun.com' is a wildcard" in err
    assert len(box.audit.records()) == before


# The files most likely to break a parser, run through the installed entry point (the
# in-process test above runs every file; this proves the console script behaves the same).
HOSTILE = (
    "yaml-alias-bomb.yaml",
    "yaml-deep-nesting.yaml",
    "not-utf8-latin1.yaml",
    "host-wildcard.yaml",
)


@pytest.mark.slow
def test_the_installed_cli_refuses_hostile_files(tmp_path: Path, box: Sandbox) -> None:
    exe = Path(sys.executable).with_name("egress-runbook")
    assert exe.exists(), f"{exe}: the package's console script is not installed"
    big = tmp_path / "big.yaml"
    big.write_text("cluster_name: " + "y" * 3_000_000 + "\n", encoding="utf-8")
    paths = [CORPUS / name for name in HOSTILE] + [big]
    before = len(box.audit.records())
    # EGRESS_SANDBOX_HOME (set by the fixture) points them at the running sandbox.
    procs = [
        subprocess.Popen(
            [str(exe), "check", str(p)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
            cwd=tmp_path,
        )
        for p in paths
    ]
    for path, proc in zip(paths, procs, strict=True):
        out, err = proc.communicate(timeout=60)
        _assert_refused(proc.returncode, out, err)
        assert f"in {path}:" in err
    assert len(box.audit.records()) == before
