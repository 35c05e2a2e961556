"""Every command the READMEs show still parses as written, and the ones that run offline (dry runs, list, help)
run: a renamed flag or a command that exits 2 as documented fails here, not in a user's terminal."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tinyzero_trl.cli import main, parse, subcommands

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", ROOT / "docker" / "README.md", ROOT / "src/tinyzero_trl/accelerate_configs/README.md",
        *sorted((ROOT / "reproductions").glob("*/README.md"))]
IMAGE_NAMES = re.compile(r"^(IMAGE|\$IMG|tinyzero-trl:\S+|\$\{?IMAGE\}?)$")


def shell_lines(path: Path) -> list[str]:
    """The commands of a document's ```bash blocks, continuation lines joined, comments dropped."""
    lines, block, pending = [], False, ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.strip().startswith("```"):
            block = raw.strip() in ("```bash", "```sh", "```shell")
            continue
        if not block:
            continue
        text = pending + raw.strip()
        if text.endswith("\\"):
            pending = text[:-1] + " "
            continue
        pending = ""
        if text and not text.startswith("#"):
            lines.append(text)
    return lines


def cli_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of every tinyzero-trl invocation the documents show, direct or through the image."""
    found = []
    for doc in DOCS:
        for line in shell_lines(doc):
            try:
                words = shlex.split(line, comments=True)
            except ValueError:  # an unbalanced quote in prose-like shell: not a command to check
                continue
            for i, word in enumerate(words):
                direct = word == "tinyzero-trl"
                through_image = IMAGE_NAMES.match(word) and i + 1 < len(words) and words[i + 1] in subcommands()
                if direct or through_image:
                    argv = words[i + 1:]
                    argv = argv[:next((k for k, w in enumerate(argv) if w in ("|", "&&", ";", ">", "2>&1")),
                                      len(argv))]
                    found.append((f"{doc.relative_to(ROOT)}: {line}", argv))
                    break
    return found


COMMANDS = cli_commands()


def test_the_documents_show_commands():
    assert len(COMMANDS) > 30 and any("--dry-run" in argv for _, argv in COMMANDS)


@pytest.mark.parametrize("where, argv", COMMANDS, ids=[w[:90] for w, _ in COMMANDS])
def test_every_shown_command_parses(where, argv):
    try:
        parse(argv)
    except SystemExit as exit_:
        pytest.fail(f"{where}\n  does not parse (exit {exit_.code})")


RUNNABLE = [(w, a) for w, a in COMMANDS if "--dry-run" in a or a[:1] in (["list"], ["--help"], ["--commands"])]


@pytest.mark.parametrize("where, argv", RUNNABLE, ids=[w[:90] for w, _ in RUNNABLE])
def test_every_shown_dry_run_runs(where, argv, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # nothing a dry run might write lands in the checkout
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    assert code == 0, f"{where}\n  exits {code}: {capsys.readouterr().err[-500:]}"


def python_block(path: Path, marker: str) -> str:
    """The ```python block of a document whose first line contains ``marker``."""
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.DOTALL)
    return next(b for b in blocks if marker in b.splitlines()[0])


def test_a_task_of_your_own_is_one_module_and_one_registration(tmp_path, monkeypatch):
    """The README's task module, as written, registered through $TINYZERO_TASK_MODULES: a recipe names it, the
    config check accepts it, and the trainer's data path loads it (the hub replaced by rows of GSM8K's shape)."""
    import datasets

    from tinyzero_trl.config import validate
    from tinyzero_trl.config.compose import compose
    from tinyzero_trl.data import TASKS, load_task_data

    (tmp_path / "my_tasks.py").write_text(python_block(ROOT / "README.md", "my_tasks.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("TINYZERO_TASK_MODULES", "my_tasks")
    monkeypatch.delitem(TASKS, "gsm8k", raising=False)
    rows = {"question": ["Tom has 3 apples and buys 4. How many?"] * 4, "answer": ["3 + 4 = 7\n#### 7"] * 4}
    fake = datasets.DatasetDict(train=datasets.Dataset.from_dict(rows), test=datasets.Dataset.from_dict(rows))
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: fake)
    try:
        cfg = validate(compose(["+math=grpo-tiny-base", "data.task=gsm8k", "model.name_or_path=/m",
                                "training.output_dir=/tmp/never-written"]))
        splits = load_task_data(cfg.data)
    finally:
        TASKS.pop("gsm8k", None)
    assert cfg.data.task == "gsm8k" and splits["test"][0]["solution"] == "7"
    assert splits["train"][0]["prompt"][0]["content"].endswith("Put the final answer within \\boxed{}.")


def test_one_image_tag_scheme_in_the_build_the_docs_and_the_scripts():
    """Issue 32: the build tagged tinyzero-trl:0.1.0-cpu while docker/README.md ran tinyzero-trl:cpu. Every image
    tag written anywhere is tinyzero-trl:VERSION-cpu or -cuda (VERSION from pyproject.toml, or $VERSION), as the
    build tags it and as the reproductions pin it."""
    import sys

    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    files = [*DOCS, ROOT / "docker" / "Dockerfile", ROOT / "docker" / "Dockerfile.cpu",
             ROOT / "docker" / "slurm" / "train.sbatch", *sorted((ROOT / "reproductions").glob("*/config.yaml"))]
    # cpu-vllm: the CPU image plus vLLM's CPU build, for a vLLM node of the Slurm test cluster (docker/slurm)
    allowed = re.compile(rf"tinyzero-trl:(?:{re.escape(version)}|\$?VERSION)-(?:cpu|cuda|cpu-vllm)")  # VERSION: prose
    tags = [(f.relative_to(ROOT), m.group(0)) for f in files
            for m in re.finditer(r"tinyzero-trl:(?:\$?VERSION-\w+|[\w.-]+)", f.read_text(encoding="utf-8"))]
    assert len(tags) > 10 and [t for t in tags if not allowed.fullmatch(t[1])] == []
    sys.path.insert(0, str(ROOT / "docker"))
    try:
        from nox_docker import build_commands
    finally:
        sys.path.remove(str(ROOT / "docker"))
    built = [c[i + 1] for c in build_commands(["cpu", "cuda"], version, "c", "u") for i, a in enumerate(c)
             if a == "--tag"]
    assert built == [f"tinyzero-trl:{version}-cpu", f"tinyzero-trl:{version}-cuda"]


def sbatch_submissions() -> list[tuple[dict[str, str], list[str]]]:
    """docker/README.md's ``sbatch ... docker/slurm/train.sbatch ...`` lines: (the environment set, the overrides)."""
    found = []
    for line in shell_lines(ROOT / "docker" / "README.md"):
        words = shlex.split(line)
        if "sbatch" not in words or "docker/slurm/train.sbatch" not in words:
            continue
        i = words.index("sbatch")
        env = dict(w.split("=", 1) for w in words[:i])
        found.append((env, words[words.index("docker/slurm/train.sbatch") + 1:]))
    return found


def test_the_slurm_submissions_gpu_and_cpu_use_settings_the_script_reads():
    """Issue 30: docker/README.md shows the GPU submission and its CPU form side by side. Every variable they set is
    one train.sbatch reads (or sbatch's own SBATCH_*), the CPU form is the one tests/docker/test_slurm.py submits
    under a real Slurm, and every submission's overrides compose."""
    import sys

    from tinyzero_trl.config.compose import compose

    script = (ROOT / "docker" / "slurm" / "train.sbatch").read_text(encoding="utf-8")
    submissions = sbatch_submissions()
    gpu = [(env, args) for env, args in submissions if "DOCKER_GPUS" not in env]
    cpu = [(env, args) for env, args in submissions if "DOCKER_GPUS" in env]
    assert len(gpu) >= 1 and len(cpu) == 1, submissions
    for env, args in submissions:
        for name in env:
            assert name.startswith("SBATCH_") or re.search(rf"\$\{{{name}[:}}-]", script), name
        compose(args)
    sys.path.insert(0, str(ROOT / "tests" / "docker"))
    sys.path.insert(0, str(ROOT / "docker" / "slurm"))
    try:
        import images
        import test_slurm
    finally:
        sys.path.remove(str(ROOT / "tests" / "docker"))
        sys.path.remove(str(ROOT / "docker" / "slurm"))
    env, args = cpu[0]
    assert env == {**test_slurm.CPU, "IMAGE": images.CPU}
    assert args[0] == "+countdown=grpo-tiny-base" and "model.name_or_path=/runs/tiny-base" in args


def test_every_registered_reward_is_named_in_the_readme():
    """The README's list of rewards is how users find the names a recipe can use; a reward added without a word
    there (three were) is one they cannot find."""
    from tinyzero_trl.rewards import REWARDS

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert not [name for name in REWARDS if f"`{name}`" not in text]



@pytest.mark.parametrize("package", ["reproduce", "launch", "verification", "evaluation", "train", "config", "run"])
def test_the_layout_table_names_every_module_of_the_packages_it_lists(package):
    """README "Layout" is where a newcomer looks for what lives where; a module missing from its package's row is
    one they will not find (five of reproduce/ were)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| ") and f"`{package}/`" in line)
    modules = sorted(p.stem for p in (ROOT / "src" / "tinyzero_trl" / package).glob("*.py") if p.stem != "__init__")
    assert not [m for m in modules if f"`{m}`" not in row]



def test_the_slurm_variables_the_script_reads_are_all_documented():
    """accelerate_configs/README.md lists train.sbatch's settings; one the script reads but the list lacks (four
    did) is one a cluster user cannot find."""
    script = (ROOT / "docker" / "slurm" / "train.sbatch").read_text(encoding="utf-8")
    read = set(re.findall(r"\$\{?([A-Z][A-Z_]+)", script))
    own = {"PWD", "TRAIN_NODES"} | {v for v in read if v.startswith("SLURM")}  # bash's, the script's own, Slurm's
    text = (ROOT / "src" / "tinyzero_trl" / "accelerate_configs" / "README.md").read_text(encoding="utf-8")
    assert sorted(v for v in read - own if f"`{v}`" not in text) == []
