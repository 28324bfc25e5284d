"""requirements-test.lock agrees with pyproject.toml, so the lock cannot drift silently.

scripts/test installs the lock with `pip install --require-hashes` and then the
project with `--no-deps`: a requirement of pyproject.toml the lock does not
satisfy would go untested (or fail only on a fresh machine). scripts/lock
regenerates the lock.
"""

from __future__ import annotations

import sys
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from helpers.paths import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = REPO
LOCK = ROOT / "requirements-test.lock"


def _locked(lock_text: str) -> tuple[dict[str, Version], list[str]]:
    """The lock's pins by normalised name, and a problem line for each entry that is not `name==version` with a hash."""
    pins: dict[str, Version] = {}
    problems: list[str] = []
    unhashed = ""  # the entry read last, until a --hash line follows it
    no_hash = ": no --hash (pip install --require-hashes refuses it)"
    for line in lock_text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():
            if line.strip().startswith("--hash=sha256:"):
                unhashed = ""
            continue
        if unhashed:
            problems.append(unhashed + no_hash)
        entry = unhashed = line.rstrip(" \\")
        req = Requirement(entry)
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==":
            problems.append(f"{entry}: not pinned to one version (==)")
            continue
        pins[canonicalize_name(req.name)] = Version(specs[0].version)
    if unhashed:
        problems.append(unhashed + no_hash)
    return pins, problems


def _requirements(pyproject: dict[str, Any]) -> list[Requirement]:
    """What scripts/test must install: the runtime dependencies, the test extra and the build backend."""
    project = pyproject["project"]
    raw = [
        *project["dependencies"],
        *project["optional-dependencies"]["test"],
        *pyproject["build-system"]["requires"],
    ]
    return [Requirement(text) for text in raw]


def _disagreements(pyproject: dict[str, Any], lock_text: str) -> list[str]:
    """A line for each requirement of pyproject.toml (for this Python) the lock's pins do not satisfy."""
    pins, problems = _locked(lock_text)
    for req in _requirements(pyproject):
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{req}: not in {LOCK.name}")
        elif not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{req}: {LOCK.name} pins {name}=={pins[name]}")
    return problems


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_lock_satisfies_every_requirement_of_pyproject():
    problems = _disagreements(_pyproject(), LOCK.read_text(encoding="utf-8"))
    assert problems == [], "run scripts/lock: " + "; ".join(problems)


def test_every_locked_entry_is_pinned_with_a_hash():
    # `pip install --require-hashes` refuses an unhashed entry; this names it before a fresh machine does.
    pins, problems = _locked(LOCK.read_text(encoding="utf-8"))
    assert problems == []
    assert {"click", "kubernetes", "model-signing", "pytest", "hatchling", "editables"} <= set(pins)


def test_a_drifted_pyproject_is_named():
    # The same check on pyproject.toml changed without re-locking: a raised lower bound,
    # a new dependency, and a pin the lock does not hold all come back, each named.
    pyproject = _pyproject()
    pins, _ = _locked(LOCK.read_text(encoding="utf-8"))
    click = pins["click"]
    pyproject["project"]["dependencies"] = [
        *(d for d in pyproject["project"]["dependencies"] if not d.startswith("click")),
        f"click>{click}",
        "not-a-locked-package>=1",
    ]
    pyproject["project"]["optional-dependencies"]["test"] = [
        *(d for d in pyproject["project"]["optional-dependencies"]["test"] if not d.startswith("pytest")),
        "pytest==1.0",
    ]
    problems = _disagreements(pyproject, LOCK.read_text(encoding="utf-8"))
    assert sorted(problems) == sorted(
        [
            f"click>{click}: requirements-test.lock pins click=={click}",
            "not-a-locked-package>=1: not in requirements-test.lock",
            f"pytest==1.0: requirements-test.lock pins pytest=={pins['pytest']}",
        ]
    )


def test_an_unpinned_or_unhashed_lock_entry_is_named():
    pins, problems = _locked("# header\nclick>=8 \\\n    --hash=sha256:00\npyyaml==6.0.4\n    # via gitops-lab\n")
    assert problems == [
        "click>=8: not pinned to one version (==)",
        "pyyaml==6.0.4: no --hash (pip install --require-hashes refuses it)",
    ]
    assert pins == {"pyyaml": Version("6.0.4")}
