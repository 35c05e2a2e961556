"""Build "countdown-tiny", an offline, deterministic, CPU-sized BASE model for the countdown miniature.

The miniature shows the R1-Zero effect in minutes on a laptop: a base model that already has the pieces of a
solution (arithmetic, a search procedure, a check of each result against the target) but does not use them
well is taught by GRPO, with nothing but the exact-equation reward, to use them. So the base is pretrained on
documents that look like countdown attempts:

    3 5 2 = 13
    <think>3+5=8 8+2=10 vs 13 no
    3+5=8 8-2=6 vs 13 no
    ...
    3*5=15 15-2=13 vs 13 yes
    </think>
    <answer>(3*5)-2</answer>

The search is systematic (pairs in prompt order, then + - * for each step; ``candidates``), so a model that
keeps going finds every solution, and each line ends with a check: the target copied beside the value, then
"yes" or "no". What the base gets wrong is *when to stop*. Most documents stop at a random line and answer it,
hit or not ("careless"); some stop at their first "yes" ("careful": the latent behaviour RL amplifies, as
R1-Zero amplifies a base model's occasional self-verification); early in pretraining many also give up after
a line or two. So after a "yes" the base goes on more often than it stops, and greedy decoding searches to
the end and answers the last line, right only by chance: 0.10 of the held-out tasks, greedy. Stopping at its
first "yes" would make it right on 0.865 (measured by forcing that stop): GRPO has to discover that from the
exact-equation reward alone.

Numbers are single tokens (0..216), so every arithmetic step is a lookup; this is what lets a 0.61M-parameter
model learn the pieces on a CPU (about 40 minutes on 2 cores; the build ships with the package).
"""

from __future__ import annotations

import random
from pathlib import Path

from tinyzero_trl.tiny import pretrain as tiny_pretrain

RECIPE = {
    "version": 3,
    # Model: Qwen2 architecture, 614,400 parameters (2.5 MB fp32).
    "hidden_size": 96,
    "intermediate_size": 384,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 640,
    "max_int_token": 216,  # largest value a chain over 1..6 can reach: 6*6*6
    # Task distribution of the pretraining prompts: the miniature's task (recipe `data.generate`), train split.
    "task": {
        "min_numbers": 3,
        "max_numbers": 3,
        "min_number": 1,
        "max_number": 6,
        "min_target": 1,
        "max_target": 100,
        "ops": "+-*",
    },
    # Documents stop after each line with probability `impatience` ("impatient"), except the careful ones (stop
    # at the first "yes") and the long ones (stop at a uniform random line); each phase sets their fractions.
    "impatience": 0.8,
    "batch_size": 32,
    "weight_decay": 0.01,
    # Pretraining phases, each with a fresh AdamW and cosine schedule (they are the steps in which the recipe was
    # found, kept exactly as they ran so that a one-shot build retraces the shipped one). Phase 1 teaches the format, the search
    # and the arithmetic. The yes/no check (equality of two numbers) is learned last and slowest: later phases
    # see more long documents and weight the verdict tokens up (`check_weight`; see _pretrain).
    "phases": [
        {"steps": 1200, "lr": 3e-3, "warmup": 50, "careful_frac": 0.15, "long_frac": 0.35, "check_weight": 1.0,
         "data_seed": 0},
        {"steps": 200, "lr": 2e-3, "warmup": 10, "careful_frac": 0.15, "long_frac": 0.6, "check_weight": 10.0,
         "data_seed": 7},
        {"steps": 300, "lr": 2e-3, "warmup": 10, "careful_frac": 0.15, "long_frac": 0.6, "check_weight": 30.0,
         "data_seed": 8},
        {"steps": 300, "lr": 2e-3, "warmup": 10, "careful_frac": 0.15, "long_frac": 0.85, "check_weight": 30.0,
         "data_seed": 9},
        {"steps": 150, "lr": 1e-3, "warmup": 10, "careful_frac": 0.3, "long_frac": 0.7, "check_weight": 30.0,
         "data_seed": 10},
        # Version 3: after phase 5 the base said "no" to a third of its hits, which capped what GRPO could reach
        # (stopping at its first "yes" scored 0.675). 400 more steps of long, verdict-weighted documents: 0.865.
        {"steps": 400, "lr": 1e-3, "warmup": 10, "careful_frac": 0.15, "long_frac": 0.85, "check_weight": 30.0,
         "data_seed": 11},
    ],
    "threads": 2,  # fixed, so the weights do not depend on the core count (bit-identical on the same CPU kernels)
}

MARKERS = ["<think>", "</think>", "<answer>", "</answer>", "vs", "yes", "no"]
CHARS = list("+-*/()= \n")
# Search order over the three numbers: which pair is combined first (indices into the prompt's numbers).
PAIRS = ((0, 1), (0, 2), (1, 2))


# The build of RECIPE (seed 0) ships with the package (~2 MB), so a reproduction starts training at once. Its
# build_info.json says how it was made (phase by phase); `tinyzero-trl tiny-base --out DIR --check` rebuilds it
# in one go and says whether the bits match. It did for the five phases of version 2 and for the six of version 3
# (2026-11-24: identical sha256 each time, 33 and 39 min on 2 cores).
PACKAGED_DIR = tiny_pretrain.ASSETS / "countdown-tiny-base"






def build_tokenizer(max_int: int = RECIPE["max_int_token"]):
    """Qwen2 tokenizer whose integers 0..max_int are single tokens, plus operators, space, newline, markers."""
    numbers = [str(n) for n in range(10, max_int + 1)]
    return tiny_pretrain.make_tokenizer(CHARS + list("0123456789"), numbers + MARKERS)


def candidates(nums: list[int]) -> list[tuple[str, str, int]]:
    """The base model's search, in order: (think line, answer expression, value) for each two-step chain.

    For each pair of numbers (prompt order), each op, then each op with the third number. "-" always takes
    the larger operand first, so every intermediate is a non-negative integer (one token) and the 27 chains
    reach every target that + - * can make from three numbers.
    """
    out = []
    for i, j in PAIRS:
        a, b, c = nums[i], nums[j], nums[3 - i - j]
        for o1 in "+-*":
            x, (p, q) = _step(a, o1, b)
            for o2 in "+-*":
                y, (u, v) = _step(x, o2, c)
                first = f"{p}{o1}{q}"
                # The intermediate is whichever operand of the second step is x (after "-" put the larger first).
                expr = f"({first}){o2}{v}" if (u, v) == (x, c) else f"{u}{o2}({first})"
                out.append((f"{first}={x} {u}{o2}{v}={y}", expr, y))
    return out


def _step(a: int, op: str, b: int) -> tuple[int, tuple[int, int]]:
    if op == "-" and a < b:
        a, b = b, a
    return (a + b if op == "+" else a - b if op == "-" else a * b), (a, b)


def check_line(line: str, value: int, target: int) -> str:
    """A search line with its check: "3*5=15 15-2=13 vs 13 yes".

    The target is copied next to the value before the verdict because a model this small learns to compare two
    *nearby* tokens (a lookup, like its arithmetic) but, in our runs, never learned to compare a value with the
    target far back in the prompt: a base pretrained without the copy predicted "no" for 99% of the hits.
    """
    return f"{line} vs {target} {'yes' if value == target else 'no'}"


def document(nums: list[int], target: int, rng: random.Random, careful_frac: float, long_frac: float) -> str:
    """One pretraining document: prompt, the search up to where this document stops, and its last line's answer."""
    from tinyzero_trl.data.countdown import countdown_prompt

    lines = candidates(nums)
    kind = rng.random()
    if kind < careful_frac:
        stop = next((k for k, line in enumerate(lines) if line[2] == target), len(lines) - 1)
    elif kind < careful_frac + long_frac:
        stop = rng.randrange(len(lines))
    else:
        stop = 0
        while stop < len(lines) - 1 and rng.random() > RECIPE["impatience"]:
            stop += 1
    think = "\n".join(check_line(line, value, target) for line, _, value in lines[: stop + 1])
    answer = lines[stop][1]
    return countdown_prompt(nums, target, template="tiny") + f"{think}\n</think>\n<answer>{answer}</answer>"






def build_tiny_base(out_dir: str | Path | None = None, *, seed: int = 0, progress: bool = True) -> Path:
    """Build (or reuse) the tiny base model and tokenizer in ``out_dir``; return the directory.

    Idempotent: a directory holding a complete build with the same recipe hash is returned untouched.
    """
    out_dir = Path(out_dir) if out_dir is not None else tiny_pretrain.cache_dir(PACKAGED_DIR.name)
    # The yes/no verdict is 1 token in 18 and the hardest to learn (an equality of two numbers); without
    # weighting it up (a phase's check_weight), 1,400 steps left the base answering "no" to 91% of its hits.
    return tiny_pretrain.build_base(out_dir, recipe=RECIPE, seed=seed, tokenizer=build_tokenizer(),
                                    phase_texts=_phase_texts, weight_key="check_weight",
                                    weighted_tokens=["yes", "no"], progress=progress)


def _phase_texts(phase: dict, seed: int) -> tuple[list[str], random.Random]:
    """One phase's pretraining documents (training-split tasks only) and the rng that goes on to order them."""
    from tinyzero_trl.data.countdown import generate_countdown, is_heldout

    steps, bsz = phase["steps"], RECIPE["batch_size"]
    data_seed = phase["data_seed"] + 1000 * seed
    # Pretrain on training-split tasks only: the held-out tasks the miniature is evaluated on stay unseen.
    tasks = generate_countdown(int(steps * bsz * 1.25), seed=10_000 + data_seed, **RECIPE["task"])
    pairs = [(n, t) for n, t in zip(tasks["nums"], tasks["target"], strict=True) if not is_heldout(n, t)]
    rng = random.Random(data_seed)
    mix = {"careful_frac": phase["careful_frac"], "long_frac": phase["long_frac"]}
    return [document(n, t, rng, **mix) for n, t in pairs[: steps * bsz]], rng
