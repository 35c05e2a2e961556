"""Loading tabular task data from the hub or from local files, with errors that say what to do.

Every task loader (countdown, math, multimodal) goes through here so that a missing file, an unknown format
or a missing column reads the same everywhere. A local source is one file (one split, the test rows held out
of it) or a folder with one file per split, ``train.jsonl`` and ``test.jsonl`` (or .json/.parquet/.csv), as a
hub dataset has named splits.
"""

from __future__ import annotations

import os
from pathlib import Path

import datasets

from tinyzero_trl.errors import DataError

LOCAL_FORMATS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}


def load_local(path: str | os.PathLike, required_columns: list[str]) -> datasets.Dataset:
    """Load a json/jsonl/parquet/csv file as a Dataset and check it has ``required_columns``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"data file {path} does not exist: set data.path to a .jsonl, .json, .parquet or .csv file")
    fmt = LOCAL_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"data file {path}: unknown extension {path.suffix!r}; use one of {sorted(LOCAL_FORMATS)}")
    if fmt == "json":
        _check_json(path)
    try:
        ds = datasets.load_dataset(fmt, data_files=str(path), split="train")
    except Exception as err:  # datasets raises many types for malformed files; all mean the same to a user
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"data file {path} could not be parsed as {fmt}: {first_line}") from err
    check_columns(ds, required_columns, where=str(path))
    return ds


def _check_json(path: Path) -> None:
    """Name the first line that is not JSON, or say the file is empty: datasets would say only "StopIteration"
    or "An error occurred while generating the dataset"."""
    import json

    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise DataError(f"data file {path} is empty: it needs one JSON object per line")
    if path.suffix.lower() == ".json":
        try:
            json.loads(text)
            return
        except ValueError:
            pass  # not one document: datasets also reads .json as JSON lines
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as err:
            raise DataError(f"data file {path} line {lineno}: not valid JSON ({err.msg} at column {err.colno})") from err
        if not isinstance(row, dict):
            raise DataError(f"data file {path} line {lineno}: expected a JSON object, found {type(row).__name__}")


def check_columns(ds: datasets.Dataset, required: list[str], *, where: str) -> None:
    """Raise DataError naming ``where`` if ``ds`` lacks any of ``required``."""
    missing = [c for c in required if c not in ds.column_names]
    if missing:
        raise DataError(
            f"{where}: missing column(s) {missing}; found {ds.column_names}. "
            f"Each row needs {required}."
        )
    if len(ds) == 0:
        raise DataError(f"{where}: has no rows")


def load_hub(name: str, *, split: str, revision: str | None = None, config: str | None = None) -> datasets.Dataset:
    """Load a dataset split from the Hugging Face Hub (or its local cache), explaining offline failures."""
    try:
        return datasets.load_dataset(name, config, split=split, revision=revision)
    except Exception as err:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        hint = (
            "the hub is unreachable or offline mode is on and the dataset is not cached"
            if offline or "connect" in str(err).lower() or "offline" in str(err).lower()
            else str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        )
        raise DataError(
            f"could not load dataset {name!r} (split {split!r}) from the hub: {hint}. "
            "Download it where the hub is reachable (HF_HOME cache), or use data.source=local data.path=FILE"
        ) from err


def _split_file(folder: Path, split: str) -> Path | None:
    found = [folder / f"{split}{ext}" for ext in LOCAL_FORMATS if (folder / f"{split}{ext}").is_file()]
    if len(found) > 1:
        raise DataError(f"data folder {folder}: split {split!r} is in {len(found)} files ({[f.name for f in found]}); "
                        "keep one")
    return found[0] if found else None


def local_split_files(path: str | os.PathLike, test_split: str | None = None) -> tuple[Path | None, Path | None]:
    """The files of a local source's ``(train, test)`` splits; ``test`` is None for a single file.

    A file is the train split (its test rows are held out of it), so ``test_split`` needs a folder. A folder's
    test split is ``<test_split or "test">.<ext>`` and must exist; its train split ``train.<ext>`` may be
    missing (a folder only to evaluate on: ``check_data`` refuses it for training).
    """
    path = Path(path).expanduser()
    if path.is_file():
        if test_split is not None:
            raise DataError(f"data.test_split={test_split!r} with data.source=local needs data.path to be a folder "
                            f"with one file per split (train.jsonl, {test_split}.jsonl); {path} is a file")
        return path, None
    if not path.is_dir():
        raise DataError(f"data path {path} does not exist: set data.path to a .jsonl, .json, .parquet or .csv file, "
                        "or a folder of split files (train.jsonl, test.jsonl)")
    name = test_split or "test"
    test = _split_file(path, name)
    if test is None:
        found = sorted(p.name for p in path.iterdir() if p.suffix.lower() in LOCAL_FORMATS)
        raise DataError(f"data folder {path}: no test split {name}.jsonl (or .json/.parquet/.csv); found {found}. "
                        "A folder holds one file per split; set data.test_split to the test file's name")
    return _split_file(path, "train"), test


def first_rows(ds: datasets.Dataset, n: int | None) -> datasets.Dataset:
    """The first ``n`` rows (all when ``n`` is None or larger), as oat's ``select(range(min(n, len)))``."""
    return ds if n is None or n >= len(ds) else ds.select(range(n))
