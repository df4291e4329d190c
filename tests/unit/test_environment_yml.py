"""conda users get the same dependencies as pip users, at the versions constraints.txt pins."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower()


def _key(name: str) -> str:
    return name.lower().replace("_", "-")


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            pins[_key(name)] = version
    return pins


def _wanted() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["dev"]]


def _pip_section() -> list[str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    section: list[str] = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return section


def test_environment_yml_lists_the_same_packages_as_pyproject() -> None:
    assert sorted(map(_name, _pip_section())) == sorted(map(_name, _wanted()))


def test_the_lock_pins_every_dependency_and_environment_yml_uses_its_versions() -> None:
    pins = _pins()
    for req in _wanted():
        if ";" in req:  # for other Pythons than the lock's (tomli < 3.11)
            continue
        assert _key(_name(req)) in pins, f"constraints.txt does not pin {req}: run make lock"
    for entry in _pip_section():
        if ";" in entry:
            continue
        name, _, version = entry.partition("==")
        pinned = pins[_key(name)]
        assert version == pinned, f"environment.yml has {entry}; the lock pins {pinned}"
