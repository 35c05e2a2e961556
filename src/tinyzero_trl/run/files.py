"""Reading and writing a run directory's JSON and YAML files: atomic writes, and errors that name the file."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from tinyzero_trl.errors import RunDirError, yaml_problem


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (temp file + rename) so a crash never leaves half a file."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> dict:
    """A JSON object from ``path`` (``{}`` when there is no file); ``RunDirError`` naming the file otherwise."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise RunDirError(f"{path}: not valid JSON ({err}); restore it or move the run directory aside") from err
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def read_yaml(path: str | os.PathLike, *, error: type[Exception] = RunDirError, fix: str = "") -> dict:
    """A YAML mapping from ``path`` (``{}`` for an empty file or one holding no mapping); ``error`` naming the file
    and what is wrong (line and column of a parse error), then ``fix``, when it cannot be read."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise error(f"{path}: cannot read it ({err}){fix}") from err
    except yaml.YAMLError as err:
        raise error(f"{path}: not valid YAML ({yaml_problem(err)}){fix}") from err
    return data if isinstance(data, dict) else {}


def write_yaml(path: Path, data: dict) -> None:
    """Write a mapping as YAML, keys in their order, atomically."""
    import yaml

    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    os.replace(tmp, path)


def check_writable(run_dir: Path, key: str = "training.output_dir", hint: str = "--output-dir runs/NAME") -> None:
    """Create ``run_dir`` and write a file in it now, so an unwritable place fails before any work; the error
    names ``key`` and suggests ``hint``."""
    probe = run_dir / f".write-test-{socket.gethostname()}-{os.getpid()}"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise RunDirError(f"{key}={run_dir}: cannot write there ({err.strerror or err}); choose a directory you "
                          f"can write, e.g. {hint}") from err
