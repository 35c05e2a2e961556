"""Reproduction folders: find them, read their pinned config, and say how one is composed, launched and evaluated.

A folder ``reproductions/NAME/`` holds ``config.yaml`` (the pinned run), ``expected.json`` (reference curve,
tolerances, provenance), ``run.sh`` and ``README.md``. ``read_folder`` reads one, once, into plain data (``Folder``:
the overrides, launch options and header a run of it needs, already resolved), which ``pipeline.reproduce`` hands
on without calling back; ``verify`` checks the run against ``expected.json``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tinyzero_trl.errors import UserError
from tinyzero_trl.run.files import read_yaml

REQUIRED_FILES = ("config.yaml", "expected.json", "run.sh", "README.md")


def reproductions_root() -> Path:
    """``$TINYZERO_REPRODUCTIONS``, else the folder shipped in the wheel, else the checkout's ``reproductions/``."""
    env = os.environ.get("TINYZERO_REPRODUCTIONS")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent
    candidates += [here.parent / "_reproductions", here.parents[2] / "reproductions"]
    for path in candidates:
        if path.is_dir():
            return path
    raise FileNotFoundError("no reproductions folder found; set TINYZERO_REPRODUCTIONS=DIR")


def runs_root() -> Path:
    """Where runs go by default: ``$TINYZERO_RUNS`` (``/runs`` in the images) or ``./runs``."""
    return Path(os.environ.get("TINYZERO_RUNS", "runs"))


@dataclass
class Reproduction:
    """One reproduction folder's pinned configuration."""

    name: str
    folder: Path
    claim: str
    recipe: str  # Hydra group=option, e.g. countdown=grpo-qwen-2.5-3b-base
    overrides: list[str] = field(default_factory=list)
    accelerate: str | None = None
    num_processes: int = 1
    hardware: str = ""
    cpu: bool = False  # a CPU reproduction (countdown-tiny); GPU ones refuse to start without CUDA
    # Start from a packaged tiny base model (rebuilt offline if stale): true or "countdown" (countdown-tiny's), "math",
    # "clevr".
    tiny_base: bool | str = False
    image: str = ""
    vllm_mode: str | None = None
    evaluate: dict | None = None  # arguments of evaluate.evaluate for base/final accuracy
    revisions: dict = field(default_factory=dict)

    @classmethod
    def load(cls, name: str) -> Reproduction:
        """Read ``reproductions/NAME/config.yaml``; unknown names list the known ones."""
        root = reproductions_root()
        folder = root / name
        if not (folder / "config.yaml").is_file():
            known = ", ".join(list_reproductions()) or "none"
            raise UserError(f"no reproduction named {name!r} in {root}; known: {known}")
        raw = read_yaml(folder / "config.yaml", error=UserError)
        fields = {f for f in cls.__dataclass_fields__} - {"folder", "name"}
        unknown = set(raw) - fields
        if unknown:
            raise UserError(f"{folder / 'config.yaml'}: unknown keys {sorted(unknown)}; valid: {sorted(fields)}")
        return cls(name=name, folder=folder, **raw)

    def hydra_overrides(self, output_dir: Path, extra: list[str]) -> list[str]:
        """Recipe, pinned overrides, revisions, the run directory, then the user's overrides (last wins)."""
        pinned = [f"{k}={v}" for k, v in self.revisions.items() if v]
        return [f"+{self.recipe}", *self.overrides, *pinned, f"training.output_dir={output_dir}", *extra]

    def launch_options(self, num_processes: int | None = None) -> dict:
        """The ``launch.plan.prepare`` options of this folder (the server reproductions get one vLLM GPU)."""
        processes = self.num_processes if num_processes is None else num_processes  # 0 is refused, not the default
        return {"accelerate": self.accelerate, "num_processes": processes, "cpu": True if self.cpu else None,
                "vllm_gpus": 1 if self.vllm_mode == "server" and not self.cpu else 0}

    def pinned(self, output_dir: Path) -> tuple[dict, set]:
        """The config a run of this reproduction must have been made with, and the keys free to differ.

        The tiny reproductions' base model path is wherever the package is installed, so it is not pinned.
        """
        from tinyzero_trl.config.compose import compose

        free = {("model", "name_or_path")} if self.tiny_base else set()
        return compose(self.hydra_overrides(output_dir, [])), free

    def header(self) -> list[str]:
        """The dry run's first lines: what is reproduced, on what, and how it is evaluated."""
        lines = [f"reproduction : {self.name} -- {self.claim}", f"recipe       : +{self.recipe}",
                 f"hardware     : {self.hardware or 'not stated'}", f"image        : {self.image or 'not pinned'}"]
        if self.evaluate:
            lines.append(f"evaluation   : base and final model, {self.evaluate}")
        return lines


@dataclass(frozen=True)
class Folder:
    """A reproduction folder read for one run: its pinned configuration, the run directory, the Hydra overrides
    (``Reproduction.hydra_overrides``), the ``launch.plan.prepare`` options and the dry run's header, all resolved."""

    repro: Reproduction
    output_dir: Path
    overrides: list[str]
    launch: dict
    header: list[str]


def read_folder(name: str, *, output_dir: str | os.PathLike | None = None, extra: list[str] | None = None,
                num_processes: int | None = None, build_base: bool = True) -> Folder:
    """Read ``reproductions/NAME`` for a run into ``output_dir`` (default ``runs_root() / NAME``) with the user's
    ``extra`` overrides. A folder on a packaged tiny base names its path first (built offline when stale, unless
    not ``build_base``: a dry run builds nothing)."""
    repro = Reproduction.load(name)
    out = Path(output_dir) if output_dir else runs_root() / name
    extra = list(extra or [])
    if repro.tiny_base:
        from tinyzero_trl.tiny.pretrain import tiny_base_path

        base = tiny_base_path("countdown" if repro.tiny_base is True else repro.tiny_base, build=build_base)
        extra = [f"model.name_or_path={base}", *extra]
    return Folder(repro=repro, output_dir=out, overrides=repro.hydra_overrides(out, extra),
                  launch=repro.launch_options(num_processes), header=repro.header())


def list_reproductions() -> list[str]:
    """Names of the reproduction folders."""
    try:
        root = reproductions_root()
    except FileNotFoundError:
        return []
    return sorted(p.name for p in root.iterdir() if (p / "config.yaml").is_file())
