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


def _local_format(path: Path) -> str:
    """The ``datasets`` builder for a local data file; DataError if it is missing or of an unknown kind."""
    if not path.is_file():
        raise DataError(f"data file {path} does not exist: set data.path to a .jsonl, .json, .parquet or .csv file")
    fmt = LOCAL_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"data file {path}: unknown extension {path.suffix!r}; use one of {sorted(LOCAL_FORMATS)}")
    return fmt


def load_local(path: str | os.PathLike, required_columns: list[str]) -> datasets.Dataset:
    """Load a json/jsonl/parquet/csv file as a Dataset and check it has ``required_columns``."""
    path = Path(path).expanduser()
    fmt = _local_format(path)
    if fmt == "json":
        _check_json(path)
    try:
        ds = datasets.load_dataset(fmt, data_files=str(path), split="train")
    except Exception as err:  # datasets raises many types for malformed files; all mean the same to a user
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"data file {path} could not be parsed as {fmt}: {first_line}") from err
    check_columns(ds, required_columns, where=str(path))
    return ds


def peek_local(path: str | os.PathLike) -> tuple[list[str], int]:
    """A local data file's column names and row count, read without building a dataset: what a check before
    training may know in a second (a JSON file is parsed line by line; parquet and csv give their header)."""
    path = Path(path).expanduser()
    fmt = _local_format(path)
    try:
        if fmt == "json":
            return _check_json(path)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            meta = pq.read_metadata(path)
            return list(meta.schema.names), meta.num_rows
        import csv

        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            return header, sum(1 for _ in reader)
    except DataError:
        raise
    except Exception as err:  # pyarrow / csv errors: a file that is not what its extension says
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"data file {path} could not be parsed as {fmt}: {first_line}") from err


def _check_json(path: Path) -> tuple[list[str], int]:
    """Name the first line that is not JSON, or say the file is empty (datasets would say only "StopIteration" or
    "An error occurred while generating the dataset"); return the first row's keys and the number of rows."""
    import json

    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise DataError(f"data file {path} is empty: it needs one JSON object per line")
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None  # not one document: datasets also reads .json as JSON lines
        if isinstance(doc, list):
            return (list(doc[0]) if doc and isinstance(doc[0], dict) else []), len(doc)
        if isinstance(doc, dict):  # columns of lists
            first = next(iter(doc.values()), [])
            return list(doc), len(first) if isinstance(first, list) else 1
    columns: list[str] | None = None
    rows = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as err:
            raise DataError(f"data file {path} line {lineno}: not valid JSON ({err.msg} at column {err.colno})") from err
        if not isinstance(row, dict):
            raise DataError(f"data file {path} line {lineno}: expected a JSON object, found {type(row).__name__}")
        columns = list(row) if columns is None else columns
        rows += 1
    return columns or [], rows


def check_columns(ds: datasets.Dataset, required: list[str], *, where: str) -> None:
    """Raise DataError naming ``where`` if ``ds`` lacks any of ``required``, or has no rows."""
    require_columns(ds.column_names, len(ds), required, where=where)


def require_columns(columns: list[str], rows: int, required: list[str], *, where: str) -> None:
    """``check_columns`` on a column list and a row count (what ``peek_local`` reads)."""
    missing = [c for c in required if c not in columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {missing}; found {columns}. Each row needs {required}.")
    if rows == 0:
        raise DataError(f"{where}: has no rows")


# A folder of OWNER/NAME dataset repositories that stand in for the hub (a rehearsal's mirrors, tiny.hub_mirrors).
MIRROR_ENV = "TINYZERO_HUB_MIRROR"


def hub_mirror(name: str) -> Path | None:
    """The local repository folder standing in for hub dataset ``name`` (``$TINYZERO_HUB_MIRROR/NAME``), or None
    when no mirror is set; a DataError when one is set and lacks ``name`` (the hub must not be used silently)."""
    root = os.environ.get(MIRROR_ENV)
    if not root:
        return None
    folder = Path(root).expanduser() / name
    if not folder.is_dir():
        raise DataError(f"{MIRROR_ENV}={root} has no mirror of dataset {name!r} ({folder} is missing); unset "
                        f"{MIRROR_ENV} to load it from the hub")
    return folder


def load_hub(name: str, *, split: str, revision: str | None = None, config: str | None = None) -> datasets.Dataset:
    """Load a dataset split from the Hugging Face Hub (or its local cache), explaining offline failures.

    With ``$TINYZERO_HUB_MIRROR`` set, the same ``datasets.load_dataset`` reads the mirror's repository folder
    instead of the hub repository: its card, files and splits are the hub layout, so everything after this
    call is what a run on the hub data does. A mirror holds one version, so a pinned ``revision`` is refused.
    """
    mirror = hub_mirror(name)
    if mirror is not None and revision is not None:
        raise DataError(f"dataset {name!r} revision {revision!r}: the mirror in {MIRROR_ENV} has one version only; "
                        "set data.revision=null to use it")
    try:
        return datasets.load_dataset(str(mirror or name), config, split=split, revision=revision)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if mirror is not None:
            raise DataError(f"could not load dataset {name!r} (split {split!r}) from its mirror {mirror}: {first}") from err
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        hint = (
            "the hub is unreachable or offline mode is on and the dataset is not cached"
            if offline or "connect" in str(err).lower() or "offline" in str(err).lower()
            else first
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


def check_local(data, check_file) -> None:
    """What a check before training knows of a local source (``data.source=local``): each split file read by
    ``peek_local`` and judged by ``check_file(columns, rows, where)``, and that there is a train split."""
    if data.source != "local":
        return
    if not data.path:
        raise DataError("data.source=local needs data.path=FILE (or a folder with train.jsonl and test.jsonl)")
    train_file, test_file = local_split_files(data.path, data.test_split)
    for file in (train_file, test_file):
        if file is not None:
            columns, rows = peek_local(file)
            check_file(columns, rows, str(file))
    if train_file is None:
        raise DataError(f"data.path={data.path}: no training rows (a folder needs train.jsonl, or .json/.parquet/"
                        ".csv, to train on; one holding only a test split is for evaluation)")


def first_rows(ds: datasets.Dataset, n: int | None) -> datasets.Dataset:
    """The first ``n`` rows (all when ``n`` is None or larger), as oat's ``select(range(min(n, len)))``."""
    return ds if n is None or n >= len(ds) else ds.select(range(n))


def shuffled(ds: datasets.Dataset, seed: int | None) -> datasets.Dataset:
    """``ds`` in the order ``ds.shuffle(seed=seed)`` gives (unchanged for None): the draw of a source that
    shuffles before it takes rows, as Mini-R1's ``shuffle(seed=42).select(range(50000))``. datasets 3.1 and 5.2
    both permute with ``np.random.default_rng(seed).permutation(len(ds))``."""
    return ds if seed is None else ds.shuffle(seed=seed)


def drop_long_prompts(ds: datasets.Dataset, tokenizer, max_tokens: int | None, *, where: str) -> datasets.Dataset:
    """The rows of ``ds`` whose ``prompt`` text is at most ``max_tokens`` tokens, counted as oat counts them
    (``len(tokenizer(prompt)["input_ids"])``, the tokenizer's own special tokens included); all rows for None."""
    if max_tokens is None:
        return ds
    if tokenizer is None:
        raise DataError(f"data.max_prompt_tokens={max_tokens} counts tokens: {where} needs a tokenizer to load with")
    if any(not isinstance(p, str) for p in ds["prompt"][:1]):
        raise DataError(f"data.max_prompt_tokens: the prompts of {where} are not text; only text prompts are counted")
    keep = [i for i, prompt in enumerate(ds["prompt"]) if len(tokenizer(prompt)["input_ids"]) <= max_tokens]
    return ds if len(keep) == len(ds) else ds.select(keep)


def refuse_draw_options(data, task: str) -> None:
    """A task whose loader does not draw with ``data.shuffle_seed`` / ``data.max_prompt_tokens`` refuses them,
    rather than training on rows the config says it would not."""
    given = [k for k in ("shuffle_seed", "max_prompt_tokens") if getattr(data, k, None) is not None]
    if given:
        raise DataError(f"data.{given[0]} is not used by the {task} task (only countdown draws its rows with it); "
                        "unset it")
