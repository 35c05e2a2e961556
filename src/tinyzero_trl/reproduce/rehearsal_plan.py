"""What a rehearsal replaces in a GPU reproduction, and why: everything else is the folder's own config.

A rehearsal runs ``reproductions/NAME/config.yaml`` as it is (its recipe and overrides, its data source and
split rules, its rewards, its generation mode, its ``evaluate:`` protocol) with only what a CPU cannot hold
replaced, and lists each replacement (``Replacement``) so it is printed at the start and kept in the run's
``summary.json`` and ``rehearsal.json``:

- the model: a random tiny model of the same architecture class with the real chat template and special
  tokens (``tiny.rehearsal``), fp32;
- processes: at most ``MAX_PROCESSES``, with the folder's accelerate config; per-device batch, generations per
  prompt, gradient accumulation, steps per generation and num_iterations stay the recipe's;
- lengths and steps: ``COMPLETION_TOKENS`` new tokens, ``2 x logging_steps`` steps (stop_at_step and max_steps
  cut in the same ratio, so the same share of the lr schedule is run), evaluation cut to ``EVAL_ITEMS`` items of
  ``EVAL_TOKENS`` tokens with the protocol's samples, temperature, top-p, stop strings and scorer;
- data: a local mirror of each hub dataset in its real layout (``tiny.hub_mirrors``), loaded by the same
  ``load_hub`` through ``$TINYZERO_HUB_MIRROR``; split sizes cut to the mirror's rows;
- generation: vLLM where the recipe uses it and vLLM is installed (colocated, or a server that generates but is
  not sent the trainer's weights: trl 1.16 syncs them over NCCL only), else HF generate, said so.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tinyzero_trl.errors import UserError

LOGGED_STEPS = 2  # a rehearsal logs this many steps: enough for every metric, minutes not hours
from tinyzero_trl.train.unsynced import UNSYNCED_ENV

MAX_PROCESSES = 2
COMPLETION_TOKENS = 32
EVAL_TOKENS = 32
EVAL_ITEMS = 8
TASK_DATASETS = {"countdown": ["Jiayi-Pan/Countdown-Tasks-3to4"],
                 "math": ["DigitalLearningGmbH/MATH-lighteval", "HuggingFaceH4/MATH-500"],  # data.math's defaults
                 "multimodal": ["leonardPKU/clevr_cogen_a_train"]}


@dataclass
class Replacement:
    """One thing a rehearsal does not do as the GPU run does: what, the real setting, the rehearsal's, why."""

    what: str
    real: str
    rehearsal: str
    why: str

    def line(self) -> str:
        return f"{self.what}: {self.real} -> {self.rehearsal} ({self.why})"


@dataclass
class RehearsalPlan:
    """A folder's rehearsal: the overrides added after the folder's own, its launch, evaluation and environment."""

    name: str
    model: str  # the hub model the tiny one stands in for
    model_dir: str
    datasets: list[str]
    overrides: list[str]
    num_processes: int
    evaluate: dict | None
    env: dict
    vllm: bool  # vLLM installed here: used where the recipe uses it
    vllm_server: bool
    real_last_step: int | None  # where the real run stops (stop_at_step or max_steps); None: its epochs decide
    last_step: int
    superclevr: bool = False
    replacements: list[Replacement] = field(default_factory=list)

    def health_not_judged(self) -> dict[str, str]:
        """The health rules (``run.health``) this rehearsal cannot judge, each with why: a random-weight model has
        no signal to lose, and the rehearsal logs only 2 steps."""
        from tinyzero_trl.run.health import unjudgeable_on_random_weights

        return dict(unjudgeable_on_random_weights(LOGGED_STEPS))

    def record(self) -> dict:
        """What ``rehearsal.json`` and ``summary.json`` keep of the plan."""
        return {**asdict(self), "replacements": [r.line() for r in self.replacements],
                "health_not_judged": self.health_not_judged()}


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def _rows(dataset: str, split: str) -> int:
    from tinyzero_trl.tiny.hub_mirrors import LAYOUTS

    return len(LAYOUTS[dataset].rows(split))


def _steps(real: dict, ov: list[str], reps: list[Replacement]) -> tuple[int | None, int]:
    """Cut the run to 2 logged steps, keeping the share of the schedule a stop_at_step takes."""
    training = real["training"]
    last = LOGGED_STEPS * max(1, int(training.get("logging_steps") or 1))
    stop, max_steps = real.get("stop_at_step"), training.get("max_steps") or -1
    if stop:
        ov.append(f"stop_at_step={last}")
        if max_steps > 0:
            scaled = math.ceil(max_steps * last / stop)
            ov.append(f"training.max_steps={scaled}")
            reps.append(Replacement("steps", f"stop_at_step {stop} of max_steps {max_steps}",
                                    f"stop_at_step {last} of max_steps {scaled}", "minutes, not hours; the same share "
                                    "of the lr schedule is run"))
        else:
            reps.append(Replacement("steps", f"stop_at_step {stop}, the schedule spanning "
                                    f"{training.get('num_train_epochs', 1)} epoch(s) of the training split",
                                    f"stop_at_step {last}, the schedule spanning the mirror's epochs",
                                    "minutes, not hours"))
        return stop, last
    ov.append(f"training.max_steps={last}")
    reps.append(Replacement("steps", f"max_steps {max_steps}" if max_steps > 0 else "the training epochs",
                            f"max_steps {last} ({last // max(1, int(training.get('logging_steps') or 1))} logged)",
                            "minutes, not hours"))
    return (max_steps if max_steps > 0 else None), last


def _data(real: dict, ov: list[str], reps: list[Replacement]) -> list[str]:
    """The hub datasets to mirror, and split sizes cut to the mirror's rows."""
    from tinyzero_trl.tiny.hub_mirrors import LAYOUTS

    data = real["data"]
    if data.get("source") != "hub":
        return []
    names = list(TASK_DATASETS.get(data["task"], []))
    if data.get("name"):
        names[:1] = [data["name"]]
    missing = [n for n in names if n not in LAYOUTS]
    if missing:
        raise UserError(f"rehearsal: no local mirror layout for hub dataset(s) {missing} (tiny.hub_mirrors.LAYOUTS); "
                        f"mirrored: {', '.join(sorted(LAYOUTS))}")
    reps.append(Replacement("data", ", ".join(names), "local mirrors in the hub layout (" + "; ".join(
        f"{n}: {LAYOUTS[n].assumed}" if LAYOUTS[n].assumed else f"{n}: layout as read" for n in names) + ")",
                            "no hub here; the same load_hub reads them (TINYZERO_HUB_MIRROR)"))
    if data.get("revision"):
        ov.append("data.revision=null")
        reps.append(Replacement("data.revision", data["revision"], "the mirror's one version", "a mirror has no history"))
    splits = set(LAYOUTS[names[0]].files.values())
    if data.get("test_split") is None and "test" not in splits and data["task"] != "math":
        rows = _rows(names[0], "train")
        cut = {"num_train": rows - rows // 3, "num_test": rows // 3}
        shown = {k: data.get(k) for k in cut}
        ov += [f"data.{k}={v}" for k, v in cut.items()]
        reps.append(Replacement("data split sizes", f"num_train {shown['num_train']}, num_test {shown['num_test']}",
                                f"num_train {cut['num_train']}, num_test {cut['num_test']}",
                                f"the mirror has {rows} rows; the split rule is the folder's"))
    elif data.get("num_test"):
        reps.append(Replacement("held-out rows", f"the first {data['num_test']} of split {data.get('test_split')}",
                                f"all {_rows(names[0], 'test')} rows of the mirror's", "a mirror of a few dozen rows"))
    return names


def _generation(real: dict, vllm: bool, ov: list[str], env: dict, reps: list[Replacement]) -> bool:
    training = real["training"]
    if not training.get("use_vllm"):
        return False
    mode = training.get("vllm_mode") or "colocate"
    if not vllm:
        ov.append("training.use_vllm=false")
        reps.append(Replacement("generation", f"vLLM ({mode})", "HF generate", "vLLM is not installed in this "
                                "environment; README 'vLLM on CPU' rehearses with it"))
        return False
    if mode == "server":
        env[UNSYNCED_ENV] = "1"
        reps.append(Replacement("weights sent to the vLLM server", "an NCCL broadcast after every optimizer step",
                                "none: the server generates every step from the base weights", "trl 1.16 syncs server "
                                "weights over NCCL only, which needs CUDA; the server starts and generates as on a GPU"))
        return True
    reps.append(Replacement("vLLM colocated", f"vllm_gpu_memory_utilization {training.get('vllm_gpu_memory_utilization')}"
                            " of a GPU", "vLLM's CPU build, KV cache VLLM_CPU_KVCACHE_SPACE (1 GiB)", "no GPU"))
    return False


def _evaluation(repro, vllm: bool, images: bool, assets: Path, env: dict, reps: list[Replacement]) -> tuple[dict, bool]:
    ev = dict(repro.evaluate)
    tokens = ev.get("max_new_tokens", 1024)
    ev["max_new_tokens"] = min(tokens, EVAL_TOKENS)
    limit = ev.get("limit")
    ev["limit"] = min(limit or EVAL_ITEMS, EVAL_ITEMS)
    reps.append(Replacement("evaluation", f"{'the first ' + str(limit) if limit else 'every'} held-out item, up to "
                            f"{tokens} new tokens", f"the first {ev['limit']}, up to {ev['max_new_tokens']}",
                            "minutes; samples, temperature, top-p, stop strings and scorer are the protocol's"))
    ev["backend"] = "vllm" if vllm and not images else "hf"
    if not images and not vllm:
        reps.append(Replacement("evaluation backend", "vLLM (auto, on a GPU)", "HF generate", "vLLM is not installed"))
    path = str((ev.get("data") or {}).get("path") or "")
    superclevr = "$TINYZERO_DATA/superclevr200" in path
    if superclevr:
        env["TINYZERO_DATA"] = str(assets / "data")
        reps.append(Replacement("SuperCLEVR-200", "R1-V's 200 problems and Super-CLEVR's renders",
                                "12 drawn scenes in R1-V's problem-file form, prepared by the folder's "
                                "prepare_superclevr200.py --from-dir", "no download here"))
    return ev, superclevr


def plan_rehearsal(repro, out: Path, *, assets: Path, vllm: bool | None = None) -> RehearsalPlan:
    """The rehearsal of ``repro`` into ``out`` with its model and mirrors under ``assets`` (nothing is built here)."""
    from tinyzero_trl.config.compose import compose
    from tinyzero_trl.tiny.rehearsal import TINY
    from tinyzero_trl.tiny.rehearsal_models import PROFILES

    if repro.cpu:
        raise UserError(f"{repro.name} is a CPU reproduction: run it as it is (tinyzero-trl reproduce {repro.name}); "
                        "--rehearse stands in for the GPU reproductions")
    vllm = vllm_installed() if vllm is None else vllm
    real = compose(repro.hydra_overrides(out, []))
    model, training = real["model"], real["training"]
    hub_id = model["name_or_path"]
    if hub_id not in PROFILES:
        raise UserError(f"rehearsal: no stand-in for model {hub_id!r} (tiny.rehearsal_models.PROFILES); known: "
                        f"{', '.join(sorted(PROFILES))}")
    prof = PROFILES[hub_id]
    model_dir = assets / "models" / hub_id.replace("/", "--")
    ov = [f"model.name_or_path={model_dir}", "model.dtype=float32"]
    arch = "Qwen2VLForConditionalGeneration" if prof.arch == "qwen2-vl" else "Qwen2ForCausalLM"
    reps = [Replacement("model", f"{hub_id} ({model.get('dtype')})",
                        f"a random {arch}, hidden {TINY['hidden_size']} x {TINY['num_hidden_layers']} layers, fp32, "
                        f"with the real chat template and {len(prof.added)} added tokens ({prof.unverified})",
                        "a CPU holds no billions of parameters; prompts are rendered as on a GPU, ordinary text is cut "
                        "by a small BPE, so token counts differ")]
    if model.get("revision"):
        ov.append("model.revision=null")
    if training.get("bf16"):
        ov.append("training.bf16=false")
        reps.append(Replacement("precision", "bf16", "fp32", "a CPU"))
    processes = min(repro.num_processes, MAX_PROCESSES)
    if processes != repro.num_processes:
        per = training.get("per_device_train_batch_size")
        reps.append(Replacement("processes", f"{repro.num_processes} ({repro.accelerate})",
                                f"{processes} ({repro.accelerate} on CPU: gloo)", f"2 cores; per-device batch {per}, "
                                "generations, accumulation and num_iterations are the recipe's, so a step holds "
                                f"{processes} x {per} completions instead of {repro.num_processes} x {per}"))
    tokens = training.get("max_completion_length") or 256
    if tokens > COMPLETION_TOKENS:
        ov.append(f"training.max_completion_length={COMPLETION_TOKENS}")
        reps.append(Replacement("max_completion_length", str(tokens), str(COMPLETION_TOKENS), "minutes, not hours"))
    real_last, last = _steps(real, ov, reps)
    datasets = _data(real, ov, reps)
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "TINYZERO_HUB_MIRROR": str(assets / "hub")}
    server = _generation(real, vllm, ov, env, reps)
    evaluate, superclevr = (None, False)
    if repro.evaluate:
        evaluate, superclevr = _evaluation(repro, vllm, prof.arch == "qwen2-vl", assets, env, reps)
    return RehearsalPlan(name=repro.name, model=hub_id, model_dir=str(model_dir), datasets=datasets, overrides=ov,
                         num_processes=processes, evaluate=evaluate, env=env, vllm=vllm, vllm_server=server,
                         real_last_step=real_last, last_step=last, superclevr=superclevr, replacements=reps)
