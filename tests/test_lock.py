"""requirements/lock.txt pins every requirement pyproject.toml declares, within its declared range, so that
`make setup` (pip install -c requirements/lock.txt) installs the same versions everywhere."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
# Not in the lock: another hardware's faiss, and llama.cpp, compiled on the host that asks for it.
UNLOCKED = {"gpu", "llamacpp"}


def _lock() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


def _declared() -> list[tuple[str, Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out = [("dependencies", Requirement(r)) for r in project["dependencies"]]
    for extra, reqs in project["optional-dependencies"].items():
        if extra not in UNLOCKED:
            out += [(extra, Requirement(r)) for r in reqs]
    return out


@pytest.mark.parametrize(("where", "req"), _declared(), ids=lambda x: str(x))
def test_every_declared_requirement_is_pinned_within_its_range(where: str, req: Requirement) -> None:
    pins = _lock()
    name = canonicalize_name(req.name)
    assert name in pins, f"{req.name} ({where}) is not in requirements/lock.txt: run `make lock`"
    assert req.specifier.contains(pins[name], prereleases=True), \
        f"{req.name}=={pins[name]} in the lock is outside {req.specifier} ({where}): run `make lock`"


def test_the_lock_has_no_local_paths_and_no_duplicates() -> None:
    lines = [ln for ln in (ROOT / "requirements" / "lock.txt").read_text().splitlines() if ln and ln[0] != "#"]
    assert all("==" in ln and "@" not in ln and "file:" not in ln for ln in lines)
    names = [canonicalize_name(ln.split("==")[0]) for ln in lines]
    assert len(names) == len(set(names)) and "guideline-qa" not in names
