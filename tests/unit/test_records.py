"""Run records (run.json), the run history and summary.md."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from egress_lib import records
from egress_lib.errors import EgressError
from egress_lib.records import (
    KILLED_MESSAGE,
    RunRecord,
    find_run,
    list_runs,
    mark_killed,
    new_run,
    scrub,
)
from egress_lib.run_reports import format_run, format_runs, write_summary

PARAMS: dict[str, object] = {"cluster_name": "demo", "region": "cn-hangzhou", "approve": False}
REAL_GIT_REVISION = records.git_revision
T0 = dt.datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=dt.timezone.utc)


class Clock:
    """A settable stand-in for records._now."""

    def __init__(self, t: dt.datetime = T0) -> None:
        self.t = t

    def __call__(self) -> dt.datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(records, "_now", c)
    return c


@pytest.fixture(autouse=True)
def no_git(monkeypatch: pytest.MonkeyPatch) -> None:
    # new_run asks git about this checkout; tests that need git call git_revision directly.
    monkeypatch.setattr(records, "git_revision", lambda repo=None: ("abc1234", True))


def start(root: Path, cluster: str = "demo", command: str = "run") -> RunRecord:
    return new_run(root, cluster, command=command, parameters=PARAMS, parameters_file="p.yaml")


def ids(*values: str) -> Iterator[str]:
    yield from values


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid no longer exists
    return proc.pid


# --- new_run ---


def test_two_runs_in_the_same_second_get_their_own_folders(tmp_path: Path, clock: Clock) -> None:
    a, b = start(tmp_path), start(tmp_path)
    assert a.run_id != b.run_id and a.out_dir != b.out_dir
    for r in (a, b):
        assert re.fullmatch(r"20240501T120000Z-[0-9a-f]{6}", r.run_id)
        assert Path(r.out_dir) == tmp_path / "demo" / r.run_id
        assert (Path(r.out_dir) / "run.json").is_file()


def test_a_colliding_short_id_is_drawn_again(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn = ids("aaaaaa", "aaaaaa", "bbbbbb")
    monkeypatch.setattr(records, "_short_id", lambda: next(drawn))
    assert start(tmp_path).run_id == "20240501T120000Z-aaaaaa"
    assert start(tmp_path).run_id == "20240501T120000Z-bbbbbb"


def test_short_ids_are_six_lowercase_hex() -> None:
    assert re.fullmatch(r"[0-9a-f]{6}", records._short_id())


def test_new_run_fills_the_record_and_writes_it(tmp_path: Path, clock: Clock) -> None:
    r = start(tmp_path, command="plan")
    canonical = json.dumps(PARAMS, sort_keys=True, separators=(",", ":"))
    assert r.parameters_sha256 == hashlib.sha256(canonical.encode()).hexdigest()
    assert r.parameters == PARAMS and r.parameters_file == "p.yaml"
    assert (r.cluster_name, r.command, r.status, r.ended) == ("demo", "plan", "running", None)
    assert r.started == "2024-05-01T12:00:00.250+00:00"
    assert (r.git_rev, r.dirty) == ("abc1234", True)
    assert r.pid == os.getpid() and r.host == socket.gethostname() and r.user
    assert r.version == "0.1.0" or r.version == "unknown" or r.version[0].isdigit()
    assert RunRecord.load(r.out_dir) == r


def test_new_run_refuses_unknown_commands_and_unsafe_cluster_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown command"):
        start(tmp_path, command="apply")
    for bad in ("", "..", "a/b"):
        with pytest.raises(ValueError, match="cannot name a folder"):
            start(tmp_path, cluster=bad)


def test_package_version_is_unknown_when_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert records.package_version() == "unknown"


# --- git ---


def test_git_revision_outside_a_checkout_is_none(tmp_path: Path) -> None:
    assert REAL_GIT_REVISION(tmp_path) == (None, False)


def test_git_revision_without_git_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_git(*args: object, **kwargs: object) -> object:
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert REAL_GIT_REVISION() == (None, False)


def test_git_revision_gives_up_after_its_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []

    def slow(*args: object, **kwargs: object) -> object:
        seen.append(kwargs.get("timeout"))
        raise subprocess.TimeoutExpired("git", 2)

    monkeypatch.setattr(subprocess, "run", slow)
    assert REAL_GIT_REVISION() == (None, False)
    assert seen == [2.0]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_revision_of_a_checkout(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_SYSTEM": os.devnull,
    }

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(tmp_path), *args], env=env, check=True, capture_output=True
        )
        return done.stdout.decode().strip()

    git("init", "-q")
    (tmp_path / "f").write_text("1\n")
    git("add", "f")
    git("commit", "-q", "-m", "one")
    head = git("rev-parse", "--short", "HEAD")
    assert REAL_GIT_REVISION(tmp_path) == (head, False)
    (tmp_path / "f").write_text("2\n")
    assert REAL_GIT_REVISION(tmp_path) == (head, True)
    # A folder inside the checkout is not the top of it: its package would be "installed".
    (tmp_path / "sub").mkdir()
    assert REAL_GIT_REVISION(tmp_path / "sub") == (None, False)


# --- steps, finish, round trip ---


def full_run(root: Path, clock: Clock) -> RunRecord:
    r = start(root)
    clock.advance(3)
    r.add_step("00-preflight", "ok", seconds=3.0, output=f"{r.out_dir}/00-preflight.ipynb")
    r.add_step("02-create-gateway", "running")
    clock.advance(40)
    r.update_step(
        "02-create-gateway",
        status="ok",
        plan=[
            {"action": "create", "kind": "Service", "name": "gw", "namespace": "egress"},
            {"action": "unchanged", "kind": "IngressClass", "name": "mse", "namespace": None},
        ],
        applied=[
            {
                "action": "create",
                "kind": "Service",
                "name": "gw",
                "namespace": "egress",
                "detail": "LoadBalancer",
                "id": "lb-123",
            }
        ],
        request_ids=[{"product": "slb", "action": "CreateLoadBalancer", "request_id": "RQ-1"}],
    )
    clock.advance(2)
    r.add_step(
        "03-configure-snat",
        "failed",
        seconds=2.0,
        error="CloudApiError: vpc:CreateSnatEntry failed, Forbidden",
        plan=[{"action": "create", "kind": "SnatEntry", "name": "snat-1", "detail": "x"}],
    )
    r.finish("failed")
    return r


def test_round_trip(tmp_path: Path, clock: Clock) -> None:
    r = full_run(tmp_path, clock)
    loaded = RunRecord.load(r.path)
    assert loaded == r
    assert loaded.to_dict() == r.to_dict()
    assert RunRecord.from_dict(r.to_dict()) == r
    assert json.loads(r.path.read_text())["steps"][1]["applied"][0]["id"] == "lb-123"


def test_step_times_and_finish(tmp_path: Path, clock: Clock) -> None:
    r = full_run(tmp_path, clock)
    gw = r.step("02-create-gateway")
    assert gw is not None
    assert gw.seconds == 40.0 and gw.started == "2024-05-01T12:00:03.250+00:00"
    assert gw.ended == "2024-05-01T12:00:43.250+00:00"
    first = r.steps[0]
    assert first.started == "2024-05-01T12:00:00.250+00:00" and first.seconds == 3.0
    assert r.status == "failed" and r.failed_step == "03-configure-snat"  # inferred
    assert r.ended == "2024-05-01T12:00:45.250+00:00" and r.seconds == 45.0


def test_finish_interrupts_running_steps(tmp_path: Path, clock: Clock) -> None:
    r = start(tmp_path)
    r.add_step("01-install-controller", "running")
    clock.advance(5)
    r.finish("interrupted", failed_step="01-install-controller", message="Ctrl-C")
    loaded = RunRecord.load(r.out_dir)
    assert loaded.steps[0].status == "interrupted" and loaded.steps[0].seconds == 5.0
    assert (loaded.status, loaded.failed_step, loaded.message) == (
        "interrupted",
        "01-install-controller",
        "Ctrl-C",
    )


def test_statuses_are_checked(tmp_path: Path, clock: Clock) -> None:
    r = start(tmp_path)
    with pytest.raises(ValueError, match="unknown step status"):
        r.add_step("x", "done")
    with pytest.raises(ValueError, match="final status"):
        r.finish("running")
    with pytest.raises(ValueError, match="unknown run status"):
        r.finish("great")
    with pytest.raises(ValueError, match="no step"):
        r.update_step("missing", status="ok")


def test_write_is_atomic_and_indented(tmp_path: Path, clock: Clock) -> None:
    r = start(tmp_path)
    r.write()
    assert r.path.read_text().startswith('{\n  "run_id": ')
    assert sorted(p.name for p in Path(r.out_dir).iterdir()) == ["run.json"]  # no temp files


def test_load_reports_missing_and_broken_records(tmp_path: Path) -> None:
    with pytest.raises(EgressError, match="no run record"):
        RunRecord.load(tmp_path)
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(EgressError, match="cannot read"):
        RunRecord.load(tmp_path)


# --- killed runs ---


def test_mark_killed_marks_dead_runs_of_this_host_only(tmp_path: Path, clock: Clock) -> None:
    dead = start(tmp_path)
    dead.add_step("00-preflight", "running")
    dead.pid = dead_pid()
    dead.write()
    mtime = dead.path.stat().st_mtime
    alive = start(tmp_path)  # this process
    elsewhere = start(tmp_path, cluster="other")
    elsewhere.pid, elsewhere.host = dead.pid, "another-host"
    elsewhere.write()
    done = start(tmp_path)
    done.pid = dead.pid
    done.finish("ok")

    changed = mark_killed(tmp_path)
    assert [r.run_id for r in changed] == [dead.run_id]
    killed = RunRecord.load(dead.out_dir)
    assert killed.status == "killed" and killed.message == KILLED_MESSAGE
    ended = dt.datetime.fromisoformat(killed.ended or "")
    assert abs(ended.timestamp() - mtime) < 0.01
    assert killed.steps[0].status == "interrupted"
    assert RunRecord.load(alive.out_dir).status == "running"
    assert RunRecord.load(elsewhere.out_dir).status == "running"
    assert RunRecord.load(done.out_dir).status == "ok"
    assert mark_killed(tmp_path) == []


def test_mark_killed_for_one_cluster(tmp_path: Path, clock: Clock) -> None:
    pid = dead_pid()
    a, b = start(tmp_path, "a"), start(tmp_path, "b")
    for r in (a, b):
        r.pid = pid
        r.write()
    assert [r.cluster_name for r in mark_killed(tmp_path, "b")] == ["b"]
    assert RunRecord.load(a.out_dir).status == "running"


# --- history ---


def history(root: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> list[RunRecord]:
    drawn = ids("aaaaaa", "abcdef", "ffffff", "fedcba")
    monkeypatch.setattr(records, "_short_id", lambda: next(drawn))
    one = start(root)  # 20240501T120000Z-aaaaaa
    clock.advance(65)
    one.finish("ok")
    two = start(root, "other", "plan")  # 20240501T120105Z-abcdef
    two.add_step(
        "02-create-gateway",
        "planned",
        plan=[{"action": "create", "kind": "Service", "name": "gw"}] * 2,
    )
    two.finish("plan-only")
    clock.advance(3600)
    three = full_run(root, clock)  # 20240501T130105Z-ffffff
    clock.advance(1)
    four = start(root)  # 20240501T130151Z-fedcba, still running
    return [one, two, three, four]


def test_list_runs_newest_first(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two, three, four = history(tmp_path, clock, monkeypatch)
    (tmp_path / "demo" / "broken").mkdir()
    (tmp_path / "demo" / "broken" / "run.json").write_text("[]")
    assert [r.run_id for r in list_runs(tmp_path)] == [
        four.run_id,
        three.run_id,
        two.run_id,
        one.run_id,
    ]
    assert [r.run_id for r in list_runs(tmp_path, "other")] == [two.run_id]
    assert list_runs(tmp_path / "nothing-here") == []


def test_find_run(tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    one, two, three, _ = history(tmp_path, clock, monkeypatch)
    assert find_run(tmp_path, one.run_id) == one
    assert find_run(tmp_path, "20240501T1201").run_id == two.run_id  # unique prefix
    assert find_run(tmp_path, "ffffff").run_id == three.run_id  # the short id
    assert find_run(tmp_path, three.out_dir).run_id == three.run_id  # a folder
    assert find_run(tmp_path, str(three.path)).run_id == three.run_id
    assert find_run(tmp_path, f"other/{two.run_id}").run_id == two.run_id  # under root


def test_find_run_ambiguous_lists_candidates(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, three, four = history(tmp_path, clock, monkeypatch)
    with pytest.raises(EgressError, match="matches 2 runs") as info:
        find_run(tmp_path, "20240501T13")
    text = str(info.value)
    assert f"demo/{three.run_id}" in text and f"demo/{four.run_id}" in text
    with pytest.raises(EgressError, match="matches 2 runs"):
        find_run(tmp_path, "a")  # the end of ...-aaaaaa and ...-fedcba


def test_find_run_unknown(tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EgressError, match="no runs there yet"):
        find_run(tmp_path, "nope")
    one, *_ = history(tmp_path, clock, monkeypatch)
    with pytest.raises(EgressError, match=r"no run under .* matches 'nope'") as info:
        find_run(tmp_path, "nope")
    assert one.run_id in str(info.value)
    with pytest.raises(EgressError, match="name a run"):
        find_run(tmp_path, " ")


def test_format_runs(tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    history(tmp_path, clock, monkeypatch)
    lines = format_runs(list_runs(tmp_path)).splitlines()
    assert re.split(r"  +", lines[0]) == [
        "RUN",
        "CLUSTER",
        "COMMAND",
        "STATUS",
        "STARTED",
        "DURATION",
        "FAILED STEP / NOTE",
    ]
    # Left-aligned columns: every column starts where its heading does.
    starts = [lines[0].index(h) for h in ("CLUSTER", "COMMAND", "STATUS", "STARTED")]
    for line in lines[1:]:
        for s in starts:
            assert line[s - 2 : s] == "  " and line[s] != " "
    rows = [re.split(r"  +", line) for line in lines[1:]]
    assert rows[0][1:6] == ["demo", "run", "running", "2024-05-01T13:01:51Z", "-"]
    assert rows[1][3:7] == [
        "failed",
        "2024-05-01T13:01:05Z",
        "45s",
        "03-configure-snat: CloudApiError: vpc:CreateSnatEntry failed, Forbidden",
    ]
    assert rows[2][1:] == [
        "other",
        "plan",
        "plan-only",
        "2024-05-01T12:01:05Z",
        "0s",
        "2 change(s) not applied",
    ]
    assert rows[3][3:] == ["ok", "2024-05-01T12:00:00Z", "1m05s"]
    assert all(line == line.rstrip() for line in lines)
    assert format_runs([]) == "No runs found."


def test_format_run(tmp_path: Path, clock: Clock) -> None:
    text = format_run(full_run(tmp_path, clock))
    header = {
        "Run": "20240501T120000Z-",
        "Status": "failed at 03-configure-snat",
        "By": f"{records.os_user()}@{socket.gethostname()} (pid {os.getpid()})",
        "Started": "2024-05-01T12:00:00Z",
        "Duration": "45s",
        "Parameters": "p.yaml",
        "Parameters sha256": records.canonical_sha256(PARAMS),
        "Version": f"{records.package_version()} (git abc1234, dirty)",
    }
    for label, value in header.items():
        assert re.search(rf"^{label}: +{re.escape(value)}", text, re.MULTILINE), label
    for expected in (
        "  00-preflight  ok  3.0s",
        "  02-create-gateway  ok  40.0s",
        "      - create Service egress/gw",
        "      - unchanged IngressClass mse",
        "      - create Service egress/gw: LoadBalancer  id=lb-123",
        "      - slb:CreateLoadBalancer RQ-1",
        "    error: CloudApiError: vpc:CreateSnatEntry failed, Forbidden",
    ):
        assert expected in text, expected
    assert "Message:" not in text


# --- summary.md ---


def test_summary_of_a_failed_run(tmp_path: Path, clock: Clock) -> None:
    r = full_run(tmp_path, clock)
    verify = [
        {"destination": "api", "http_status": 200, "ok": True},
        {"destination": "db", "http_status": None, "ok": False, "note": "a|b"},
    ]
    (Path(r.out_dir) / "verify.json").write_text(json.dumps(verify))
    path = write_summary(r)
    assert path == Path(r.out_dir) / "summary.md"
    text = path.read_text()
    assert text.startswith("# demo: run failed\n")
    assert f"- Who: {r.user}@{r.host}" in text
    assert "- When: 2024-05-01T12:00:00Z, took 45s" in text
    assert "| Step | Status | Seconds | Changes |" in text
    assert "| 02-create-gateway | ok | 40.0 | 1 applied |" in text
    assert "| 03-configure-snat | failed | 2.0 | 1 planned |" in text
    assert "| 00-preflight | ok | 3.0 | - |" in text
    assert "## Changes applied\n\n- 02-create-gateway: create Service egress/gw" in text
    assert "id=lb-123" in text
    assert "## Verify" in text
    assert "| destination | http_status | ok | note |" in text
    assert "| api | 200 | yes |  |" in text and "| db |  | no | a\\|b |" in text
    assert "## Failed at 03-configure-snat" in text
    assert "```\nCloudApiError: vpc:CreateSnatEntry failed, Forbidden\n```" in text


def test_summary_of_a_plan(tmp_path: Path, clock: Clock) -> None:
    r = start(tmp_path, command="plan")
    r.add_step(
        "02-create-gateway",
        "planned",
        plan=[
            {"action": "create", "kind": "Service", "name": "gw"},
            {"action": "update", "kind": "IngressClass", "name": "mse"},
            {"action": "unchanged", "kind": "Namespace", "name": "egress"},
        ],
    )
    r.finish("plan-only")
    text = write_summary(r).read_text()
    assert text.startswith("# demo: plan plan-only\n")
    assert "| 02-create-gateway | planned | 0.0 | 2 planned |" in text
    assert "Plan only: 2 changes not applied." in text
    assert "Changes applied" not in text and "Verify" not in text and "Failed" not in text


def test_summary_of_a_killed_run(tmp_path: Path, clock: Clock) -> None:
    r = start(tmp_path)
    r.pid = dead_pid()
    r.write()
    (killed,) = mark_killed(tmp_path)
    text = write_summary(killed).read_text()
    assert "## Killed" in text and KILLED_MESSAGE in text


# --- secrets ---


def test_scrub_masks_credential_keys_recursively() -> None:
    data = {
        "access_key_id": "LTAI5tXYZ",
        "AccessKeySecret": "s3cr3t",
        "nested": [{"SecurityToken": "CAIS"}, {"bearer": "eyJ", "name": "keep"}],
        "Password": "hunter2",
        "credentials": {"anything": 1},
        "db-passwd": "x",
        "empty_token": "",
        "kind": "Secret",
        "detail": "GET /?AccessKeyId=LTAI5tXYZ&Action=DescribeVpcs",
        "count": 3,
    }
    out = scrub(data)
    assert out == {
        "access_key_id": "***",
        "AccessKeySecret": "***",
        "nested": [{"SecurityToken": "***"}, {"bearer": "***", "name": "keep"}],
        "Password": "***",
        "credentials": "***",
        "db-passwd": "***",
        "empty_token": "",
        "kind": "Secret",
        "detail": "GET /?AccessKeyId=***&Action=DescribeVpcs",
        "count": 3,
    }
    assert data["access_key_id"] == "LTAI5tXYZ"  # a copy; the input is untouched


def test_run_json_never_holds_credentials(tmp_path: Path, clock: Clock) -> None:
    r = new_run(
        tmp_path,
        "demo",
        command="run",
        parameters={"region": "cn-hangzhou", "access_key_secret": "s3cr3t"},
        parameters_file=None,
    )
    r.add_step(
        "03-configure-snat",
        "failed",
        error="ConnectionError: /?AccessKeyId=LTAI5tXYZ&SecurityToken=CAIS&Action=X",
        applied=[{"action": "create", "kind": "SnatEntry", "name": "s", "token": "tok"}],
    )
    r.finish("failed")
    write_summary(r)
    for name in ("run.json", "summary.md"):
        text = (Path(r.out_dir) / name).read_text()
        for secret in ("s3cr3t", "LTAI5tXYZ", "CAIS", '"tok"'):
            assert secret not in text, (name, secret)
    assert RunRecord.load(r.out_dir).parameters["access_key_secret"] == "***"


def test_a_step_planned_early_starts_when_it_runs(tmp_path: Path, clock: Clock) -> None:
    r = start(tmp_path, command="run")
    r.add_step("04-create-services", "planned")
    clock.advance(10)
    r.update_step("04-create-services", status="running")
    clock.advance(2)
    rec = r.update_step("04-create-services", status="ok")
    assert rec.started == "2024-05-01T12:00:10.250+00:00" and rec.seconds == 2.0
