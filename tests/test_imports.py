"""The package's layers are a contract, checked by import-linter (``lint-imports``, contracts in pyproject.toml).

Each test runs the real tool: on the tree as it is (kept), and on a copy with one deliberate upward import or
import cycle added (broken, naming the import), so the contract is seen to catch what it exists for.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import ROOT

LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command as c; "
                              "sys.exit(c(['--config', sys.argv[1], '--no-cache']))"]


def lint(src: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` over the package found in ``src`` (the copy shadows the installed one)."""
    return subprocess.run([*LINT, str(ROOT / "pyproject.toml")], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"})


@pytest.fixture
def copy(tmp_path) -> Path:
    """A copy of src/ (Python files only) to break on purpose."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src", src, ignore=lambda d, names: [n for n in names if not (
        n.endswith(".py") or (Path(d) / n).is_dir()) or n == "__pycache__"])
    return src


def test_the_layers_hold():
    proc = lint(ROOT / "src")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "2 kept, 0 broken" in proc.stdout


def test_an_upward_import_breaks_the_layers(copy):
    """run/ is near the bottom: importing the command line from it is what the layers forbid."""
    files = copy / "tinyzero_trl" / "run" / "files.py"
    files.write_text(files.read_text() + "\n\ndef _up():\n    from tinyzero_trl.cli import main\n\n    return main\n")
    proc = lint(copy)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "layers: each package imports only the packages below it BROKEN" in proc.stdout
    assert "tinyzero_trl.run.files -> tinyzero_trl.cli" in proc.stdout


def test_two_independent_packages_may_not_import_each_other(copy):
    """data and rewards sit side by side: neither may use the other."""
    module = copy / "tinyzero_trl" / "rewards" / "vision.py"
    module.write_text(module.read_text() + "\n\ndef _side():\n    from tinyzero_trl.data import tasks\n\n"
                      "    return tasks\n")
    proc = lint(copy)
    assert proc.returncode == 1 and "tinyzero_trl.rewards.vision -> tinyzero_trl.data.tasks" in proc.stdout


def test_an_import_cycle_inside_a_package_is_found(copy):
    """run.claim imports run.status; status importing claim back closes a circle."""
    status = copy / "tinyzero_trl" / "run" / "status.py"
    status.write_text(status.read_text() + "\n\ndef _circle():\n    from tinyzero_trl.run import claim\n\n"
                      "    return claim\n")
    proc = lint(copy)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "no import cycles between the modules of a package BROKEN" in proc.stdout
