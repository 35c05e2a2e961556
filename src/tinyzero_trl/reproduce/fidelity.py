"""``tinyzero-trl fidelity NAME``: a GPU reproduction's trainer settings, evaluation protocol and data draw, side
by side with what its source ran, every difference either fixed or explained.

Ours is computed, never written by hand: the folder's pinned run planned as ``reproduce`` plans it
(``launch.plan.prepare``: the recipe composed and checked into trl's ``GRPOConfig`` for the folder's process
count), its evaluation protocol as ``evaluation.protocol`` runs it, its data settings as the loaders read them.
The source's side is the folder's ``source.yaml``: each value in our terms (the setting of ours that would do what
the source did), with the line it was read from. A training field the source did not set takes the default of
the library version the source pinned (``reproductions/_sources/LIBRARY.yaml``).

Each row is ``same`` (ours matches and needs no setting), ``set to match`` (ours matches because the recipe or the
folder sets it: the default would differ), or a ``deviation`` that ``expected.json`` lists under ``deviations``
as ``{"field", "what", "reason"}``. A differing row without an entry is ``UNEXPLAINED``, an entry whose row
matches is stale, and a compared field without a source value is missing: each is a problem, and a table with a
problem fails (``fidelity --check``, the tests). ``fidelity_fields`` says which fields are compared.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyzero_trl.errors import UserError
from tinyzero_trl.reproduce.fidelity_fields import ABSENT_MEANS, INACTIVE, not_training_group
from tinyzero_trl.reproduce.folders import Reproduction, reproductions_root
from tinyzero_trl.run.files import read_yaml
from tinyzero_trl.verification.expected import load_expected

SOURCE_FILE = "source.yaml"
LIBRARIES = "_sources"  # reproductions/_sources/LIBRARY.yaml: a library version's defaults, in trl 1.16 terms
SAME, SET, DEVIATION, UNEXPLAINED, MISSING = "same", "set to match", "deviation", "UNEXPLAINED", "NO SOURCE VALUE"
REPORTED = "reported only"  # a protocol row of a source whose reference numbers come from training, not a harness
TABLES = ("run", "training", "evaluate", "data")  # a deviation's field names a row of these tables
# The protocol and data-draw rows every folder states (the evaluation harness's prompt tokens, stops, sampling,
# samples, length and scorer; the rows each split is drawn from, their order and the prompt as trained).
PROTOCOL_KEYS = ("data.template", "data.system_prompt", "data.instruction", "special_tokens", "stop",
                 "stop_token_ids", "strip", "temperature", "top_p", "top_k", "repetition_penalty", "num_samples",
                 "max_new_tokens", "seed", "data.test_split", "data.num_test", "limit", "data.max_prompt_tokens",
                 "scorer", "scorer_version")
DATA_KEYS = ("name", "num_train", "num_test", "test_split", "shuffle_seed", "max_prompt_tokens", "order",
             "template", "system_prompt", "instruction")
RUN_KEYS = ("model", "rewards", "accelerate", "num_processes", "stop_at_step")


class FidelityError(UserError):
    """A source file that cannot be read as a fidelity table (a malformed entry, an unknown library)."""


@dataclass
class Row:
    """One compared setting: ``key`` is ``table.name``; ``source`` is the source's value in our terms (``ANY``: any
    value does what the source did); ``default`` what ours would be unset (``NO_DEFAULT`` for none)."""

    key: str
    ours: Any
    source: Any
    default: Any
    cite: str = ""
    note: str = ""
    status: str = ""
    reason: str = ""


ANY, NO_DEFAULT = "<any>", "<none>"


@dataclass
class Table:
    """A folder's fidelity: the four tables, the rows that are not compared, and what is wrong with it."""

    name: str
    source: str
    harness: str
    rows: dict[str, list[Row]]
    inactive: list[tuple[str, Any, str]] = field(default_factory=list)
    not_training: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    other: list[dict] = field(default_factory=list)  # expected.json deviations outside the tables
    problems: list[str] = field(default_factory=list)


def norm(value):
    """``value`` as plain data: enums as their values, tuples as lists, mappings with string keys."""
    if isinstance(value, enum.Enum):
        return norm(value.value)
    if isinstance(value, (list, tuple)):
        return [norm(v) for v in value]
    if isinstance(value, dict):
        return {str(k): norm(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def same(a, b) -> bool:
    """Equal as plain data, numbers to 1e-12 relative (``1e-6`` written as ``0.000001`` is the same)."""
    a, b = norm(a), norm(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def _entries(where: str, raw) -> dict[str, dict]:
    """``{name: {value|any, cite, note}}`` checked: every entry says what the source ran and where it was read."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise FidelityError(f"{where}: expected a mapping of name -> {{value, cite, note}}")
    for name, entry in raw.items():
        if not isinstance(entry, dict) or ("value" not in entry) == (not entry.get("any")):
            raise FidelityError(f"{where}.{name}: give either `value` (the source's, in our terms) or `any: true`")
        if not str(entry.get("cite") or "").strip():
            raise FidelityError(f"{where}.{name}: no `cite` (repo@commit:path:line where the value was read)")
    return raw


def load_source(folder: Path) -> dict:
    """``source.yaml`` of ``folder``, its library's training defaults merged under the folder's own training values;
    with ``same_as: OTHER`` it starts from OTHER's source and overrides what it names."""
    path = folder / SOURCE_FILE
    if not path.is_file():
        raise UserError(f"{folder.name} has no {SOURCE_FILE}: no source to compare with (a run of our own, or not "
                        "written yet)")
    raw = read_yaml(path, error=FidelityError)
    base = load_source(folder.parent / raw["same_as"]) if raw.get("same_as") else None
    training = {}
    if raw.get("library"):
        lib_path = folder.parent / LIBRARIES / f"{raw['library']}.yaml"
        if not lib_path.is_file():
            raise FidelityError(f"{path}: library {raw['library']!r} has no {lib_path}")
        lib = read_yaml(lib_path, error=FidelityError)
        for name in lib.get("absent") or []:
            if name not in ABSENT_MEANS:
                raise FidelityError(f"{lib_path}: absent field {name!r} has no meaning in fidelity_fields.ABSENT_MEANS")
            training[name] = {"value": ABSENT_MEANS[name], "cite": lib["absent_cite"],
                              "note": f"not in {lib['name']}: trl's setting that does without it"}
        training.update(_entries(f"{lib_path}:training", lib.get("training")))
    training.update(_entries(f"{path}:training", raw.get("training")))
    own = {"source": str(raw.get("source") or ""), "harness": str(raw.get("harness") or ""), "training": training,
           **{k: _entries(f"{path}:{k}", raw.get(k)) for k in ("run", "evaluate", "data")}}
    if "evaluate" in raw and raw["evaluate"] is None:  # no held-out evaluation: the numbers are training metrics
        own["evaluate"] = None
    if base is None:
        return own
    # `same_as: FOLDER`: that folder's source, with this file's entries (and texts) over it
    return {k: ({**base[k], **own[k]} if isinstance(base[k], dict) and own[k] is not None else own[k] or base[k])
            for k in base}


def _row(key: str, ours, default, entry: dict | None) -> Row:
    if entry is None:
        return Row(key, norm(ours), None, norm(default), status=MISSING)
    source = ANY if entry.get("any") else entry["value"]
    return Row(key, norm(ours), norm(source), norm(default), str(entry["cite"]), str(entry.get("note") or ""))


def _training_rows(config, resolved_training: dict, source: dict, table: Table) -> list[Row]:
    """Every compared ``GRPOConfig`` field; the others go to ``table.inactive`` / ``table.not_training``."""
    rows = []
    for f in dataclasses.fields(config):
        if not f.init:
            continue
        value = getattr(config, f.name)
        if (group := not_training_group(f.name)) is not None:
            shown = norm(value) if f.name in resolved_training and not group.startswith("launch") else NO_DEFAULT
            table.not_training.setdefault(group, []).append((f.name, shown))
            continue
        if f.name in INACTIVE and INACTIVE[f.name][0](config):
            table.inactive.append((f.name, norm(value), INACTIVE[f.name][1]))
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else NO_DEFAULT)
        rows.append(_row(f"training.{f.name}", value, default, source.get(f.name)))
    known = {f.name for f in dataclasses.fields(config)}
    for name, entry in source.items():  # the source's settings that trl 1.16 has no field for
        if name not in known:
            rows.append(_row(f"training.{name}", NO_DEFAULT, NO_DEFAULT, entry))
    return rows


def ours_protocol(repro: Reproduction, resolved: dict) -> dict[str, Any]:
    """Every setting our evaluation of ``repro`` runs with, keyed as ``PROTOCOL_KEYS`` (see ``Protocol.effective``)."""
    from tinyzero_trl.evaluation.protocol import Protocol

    effective = Protocol(repro.name, repro.evaluate or {}, resolved).effective()
    data = effective.pop("data")
    return {**effective, **{f"data.{k}": v for k, v in data.items()}}


def ours_data(resolved: dict, config) -> dict[str, Any]:
    """The training data settings as the loaders read them, and the sampler's order (``DATA_KEYS``)."""
    order = (f"trl RepeatSampler: torch.randperm seeded with seed={config.seed}" if config.shuffle_dataset
             else "trl RepeatSampler: stored order")
    return {**resolved["data"], "order": order}


def _defaults(kind: str, repro: Reproduction, resolved: dict) -> dict:
    """What each row would be with nothing set: ``DataConfig``'s defaults, and for the protocol what an
    ``evaluate:`` block naming only the task gives this run."""
    from tinyzero_trl.config.schema import DataConfig
    from tinyzero_trl.evaluation.protocol import Protocol

    data = {k: v.default for k, v in DataConfig.model_fields.items()}
    if kind == "data":
        return data
    bare = Protocol(repro.name, {"task": (repro.evaluate or {}).get("task", resolved["data"]["task"])}, resolved)
    return {**{k: v for k, v in bare.effective().items() if k != "data"}, **{f"data.{k}": v for k, v in data.items()}}


def _judge(table: Table, deviations: list[dict]) -> None:
    """Set every row's status from ``expected.json``'s deviations; record what is unexplained, stale or missing."""
    listed = {}
    for i, dev in enumerate(deviations):
        if not isinstance(dev, dict) or not all(str(dev.get(k) or "").strip() for k in ("field", "what", "reason")):
            table.problems.append(f"expected.json deviations[{i}]: needs a field, what differs and the reason: {dev!r}")
            continue
        if dev["field"].split(".", 1)[0] in TABLES:
            listed[dev["field"]] = dev
        else:
            table.other.append(dev)
    keys = set()
    for row in (r for rows in table.rows.values() for r in rows):
        keys.add(row.key)
        entry = listed.get(row.key)
        if row.status == REPORTED:
            if entry:
                table.problems.append(f"{row.key}: expected.json lists it as a deviation, but the source has no "
                                      "such evaluation to differ from")
            continue
        if row.status == MISSING:
            table.problems.append(f"{row.key}: no source value: say in {SOURCE_FILE} what the source ran")
        elif row.source == ANY or same(row.ours, row.source):
            row.status = SAME if row.source == ANY or row.default == NO_DEFAULT or same(row.default, row.source) else SET
            if entry:
                table.problems.append(f"{row.key}: expected.json lists it as a deviation, but ours matches the source")
        else:
            row.status, row.reason = (DEVIATION, entry["reason"]) if entry else (UNEXPLAINED, "")
            if not entry:
                table.problems.append(f"{row.key}: ours {row.ours!r}, the source {row.source!r}: fix it or list it "
                                      "under deviations in expected.json")
    for key in sorted(set(listed) - keys):
        table.problems.append(f"expected.json deviation {key!r} names no row of the table")


def build(name: str) -> Table:
    """The fidelity table of reproduction ``name`` (see the module docstring)."""
    from tinyzero_trl.launch.plan import prepare

    repro = Reproduction.load(name)
    source = load_source(repro.folder)
    expected = load_expected(repro.folder / "expected.json")  # a missing or broken one: one line naming it
    prepared = prepare(repro.hydra_overrides(Path("runs") / name, []), **repro.launch_options())
    resolved, config = prepared.resolved, prepared.config.training
    table = Table(name, source["source"], source["harness"], rows={})
    objective = {name: weight for name, weight in resolved["rewards"].items() if weight}  # weight 0: logged only
    run = {"model": resolved["model"]["name_or_path"], "rewards": objective, "accelerate": repro.accelerate,
           "num_processes": repro.num_processes, "stop_at_step": resolved.get("stop_at_step")}
    table.rows["run"] = [_row(f"run.{k}", run[k], NO_DEFAULT, source["run"].get(k)) for k in RUN_KEYS]
    table.rows["training"] = _training_rows(config, resolved.get("training") or {}, source["training"], table)
    for kind, keys, ours in (("evaluate", PROTOCOL_KEYS, ours_protocol(repro, resolved)),
                             ("data", DATA_KEYS, ours_data(resolved, config))):
        given, defaults = source[kind], _defaults(kind, repro, resolved)
        if given is None:  # the source evaluated nothing held out: ours is shown, reported only
            table.rows[kind] = [Row(f"{kind}.{k}", norm(ours.get(k)), NO_DEFAULT, norm(defaults.get(k, NO_DEFAULT)),
                                    status=REPORTED) for k in keys]
            continue
        wanted = list(keys) + [k for k in given if k not in keys]
        table.rows[kind] = [_row(f"{kind}.{k}", ours.get(k), defaults.get(k, NO_DEFAULT), given.get(k))
                            for k in wanted]
    _judge(table, expected.get("deviations") or [])
    return table


def source_folders() -> list[str]:
    """The reproductions that have a ``source.yaml`` (the GPU ones)."""
    root = reproductions_root()
    return sorted(p.parent.name for p in root.glob(f"*/{SOURCE_FILE}"))
