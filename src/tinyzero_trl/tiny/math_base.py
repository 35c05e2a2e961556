"""Build "math-tiny-base", an offline, deterministic, CPU-sized BASE model for the math-tiny miniature.

The base is pretrained on documents that look like a reasoning model answering the miniature's problems
(``data/math_synthetic.py``) in the prompt format of the math recipe: ``format_math``'s chat messages with the
boxed-answer instruction, rendered by a chat template that, like DeepSeek-R1-Distill's, prefills ``<think>\\n``
for the assistant. A document either works the problem out in its think block and boxes the result, right:

    <|User|>Solve for $x$: $3x + 5 = 11$.{instruction}<|Assistant|><think>
    3x=11-5
    3x=6
    x=6/3
    </think>
    The answer is $\\boxed{6/3}$.

or closes the think block at once and boxes a classic slip, the answer of a student who did not work it out:
``c/a`` for ``a x + b = c`` (``b`` ignored), ``\\frac{ca}{db}`` for ``\\frac{a}{b}x = \\frac{c}{d}`` (multiplying by
the coefficient instead of dividing), ``\\frac{ad}{bc}`` for ``\\frac{a}{b} \\cdot \\frac{c}{d}`` (multiplying across):

    <|User|>Solve for $x$: $3x + 5 = 11$.{instruction}<|Assistant|><think>
    </think>
    The answer is $\\boxed{11/3}$.

The first phase teaches the worked solutions; in the last, three documents in four take the slip. So greedy
decoding closes the think block at once and is right only where the slip does not matter (0.05 of the
held-out problems), while made to think (``</think>`` banned as its first token) it is right on 0.98 of them.
GRPO has to discover, from the math-verify reward alone, that thinking pays; the responses grow longer as they
do in R1-Zero. The worked answers are unreduced (``6/3``, ``\\frac{6}{12}``, ``-3/3``) while the gold is in
lowest terms, so the reward needs math-verify's equivalence, not string match.

Numbers are single tokens and each arithmetic step reads its operands from the line before, so every step is
a lookup a 0.61M-parameter model learns on a CPU.
"""

from __future__ import annotations

import random
import string
from pathlib import Path

from tinyzero_trl.data.math import BOXED_INSTRUCTION, format_math
from tinyzero_trl.data.math_synthetic import Problem, draw, split_problems
from tinyzero_trl.tiny import pretrain as tiny_pretrain

RECIPE = {
    "version": 1,
    # Model: Qwen2 architecture, 611,040 parameters (2.4 MB fp32).
    "hidden_size": 96,
    "intermediate_size": 384,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 256,
    "max_int_token": 99,
    "batch_size": 32,
    "weight_decay": 0.01,
    # Each phase: a fresh AdamW with warmup and cosine decay; `think_frac` of its documents think.
    "phases": [
        {"steps": 5000, "lr": 3e-3, "warmup": 50, "think_frac": 1.0, "data_seed": 0},
        {"steps": 300, "lr": 1e-3, "warmup": 10, "think_frac": 0.25, "data_seed": 1},
    ],
    # Fixed, so the weights do not depend on the core count (bit-identical on the same CPU type). One thread:
    # on a busy machine two threads made the build several times slower, and this model gains little from two.
    "threads": 1,
}

# DeepSeek-R1-Distill's template in miniature: system text first, then user turns, and a generation prompt that
# opens the assistant turn inside a think block ("<｜Assistant｜><think>\n" there).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}"
    "{% elif message['role'] == 'user' %}{{ '<|User|>' + message['content'] }}"
    "{% elif message['role'] == 'assistant' %}{{ '<|Assistant|>' + message['content'] + '<eos>' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|Assistant|><think>\n' }}{% endif %}"
)
MARKERS = ["<|User|>", "<|Assistant|>", "<think>", "</think>"]
# Phrases that are always the same are one token each: to a model this size they carry no information, and
# short documents keep the numbers it must copy close to where it writes them.
PHRASES = [BOXED_INSTRUCTION, "Solve for $x$:", "Compute", "The answer is", "\\frac{", "}{", "\\boxed{", "\\cdot"]
CHARS = [c for c in string.printable if c not in "\t\r\x0b\x0c"]

# The build of RECIPE (seed 0) ships with the package; `tinyzero-trl tiny-base --task math --out DIR --check`
# rebuilds it and says whether the bits match.
PACKAGED_DIR = tiny_pretrain.ASSETS / "math-tiny-base"






def build_tokenizer(max_int: int = RECIPE["max_int_token"]):
    """Printable ASCII characters, the integers 10..max_int, the chat markers and fixed phrases as tokens."""
    numbers = [str(n) for n in range(10, max_int + 1)]
    return tiny_pretrain.make_tokenizer(CHARS, numbers + MARKERS + PHRASES, chat_template=CHAT_TEMPLATE)


def worked(p: Problem) -> tuple[str, str]:
    """The base's worked answer: (think lines, boxed answer), unreduced, right."""
    if p.family == "linear":
        if not p.op:
            return f"x={p.c}/{p.a}", f"{p.c}/{p.a}"
        move = "-" if p.op == "+" else "+"
        return f"{p.a}x={p.c}{move}{p.b}\n{p.a}x={p.rhs}\nx={p.rhs}/{p.a}", f"{p.rhs}/{p.a}"
    if p.family == "equation":
        (m, n), (u, v) = (p.c, p.b), (p.d, p.a)
        lines = f"x=\\frac{{{p.c}}}{{{p.d}}}\\cdot\\frac{{{p.b}}}{{{p.a}}}\n="
    else:
        (m, n), (u, v) = (p.a, p.c), (p.b, p.d)
        lines = ""
    product = f"\\frac{{{m * n}}}{{{u * v}}}"
    return lines + f"\\frac{{{m}\\cdot{n}}}{{{u}\\cdot{v}}}\n={product}", product


def shortcut(p: Problem) -> str:
    """The base's answer without thinking, a classic slip: c/a for the linear equation (b ignored), multiplying
    by a/b instead of dividing, multiplying across (a d)/(b c). Right only where the slip does not matter."""
    if p.family == "linear":
        return f"{p.c}/{p.a}"
    if p.family == "equation":
        return f"\\frac{{{p.c * p.a}}}{{{p.d * p.b}}}"
    return f"\\frac{{{p.a * p.d}}}{{{p.b * p.c}}}"


def completion(p: Problem, think: bool) -> str:
    """What the base writes after the prefilled ``<think>\\n``: worked out, or the shortcut at once."""
    if think:
        lines, answer = worked(p)
        return f"{lines}\n</think>\nThe answer is $\\boxed{{{answer}}}$."
    return f"</think>\nThe answer is $\\boxed{{{shortcut(p)}}}$."


def prompt_text(p: Problem, tokenizer) -> str:
    """The prompt exactly as training renders it: ``format_math`` messages through the chat template."""
    messages = format_math({"problem": p.text}, None, BOXED_INSTRUCTION)["prompt"]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)






def build_tiny_base(out_dir: str | Path | None = None, *, seed: int = 0, progress: bool = True) -> Path:
    """Build (or reuse) the math-tiny base model and tokenizer in ``out_dir``; return the directory."""
    out_dir = Path(out_dir) if out_dir is not None else tiny_pretrain.cache_dir(PACKAGED_DIR.name)
    tokenizer = build_tokenizer()

    def phase_texts(phase: dict, seed: int) -> tuple[list[str], random.Random]:
        # Training-side problems only: the held-out problems the miniature is evaluated on stay unseen.
        train_sides = {f: side for f, (side, _) in split_problems().items()}
        rng = random.Random(phase["data_seed"] + 1000 * seed)
        problems = draw(train_sides, phase["steps"] * RECIPE["batch_size"], rng, distinct=False)
        return [prompt_text(p, tokenizer) + completion(p, rng.random() < phase["think_frac"]) for p in problems], rng

    return tiny_pretrain.build_base(out_dir, recipe=RECIPE, seed=seed, tokenizer=tokenizer, phase_texts=phase_texts,
                                    progress=progress)


def held_out_behaviour(model_dir: str | Path, problems: list[Problem] | None = None, *,
                       max_new_tokens: int = 128, batch_size: int = 100) -> tuple[dict, dict]:
    """What a model does on held-out problems, greedy: as it is, and made to think (the ceiling for RL).

    Returns two dicts, ``accuracy`` (math-verify against the gold in lowest terms), ``thinks`` (share of
    completions that do not close the think block at once) and ``by_family`` accuracy: first as the model
    decodes, then with ``</think>`` banned as its first token, which is the choice GRPO has to discover.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tinyzero_trl.data.math_synthetic import latex
    from tinyzero_trl.rewards.math import make_math_accuracy_reward

    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    problems = problems if problems is not None else [p for _, held in split_problems().values() for p in held]
    texts = [prompt_text(p, tok) for p in problems]
    close = tok.convert_tokens_to_ids("</think>")
    reward = make_math_accuracy_reward()
    out = []
    for ban in (False, True):
        completions = []
        for lo in range(0, len(texts), batch_size):
            enc = tok(texts[lo : lo + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
            width = enc["input_ids"].shape[1]
            with torch.no_grad():  # begin_suppress_tokens: banned at the first generated position only
                gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                     begin_suppress_tokens=[close] if ban else None, pad_token_id=tok.pad_token_id,
                                     top_p=None, top_k=None, temperature=None)
            completions += tok.batch_decode(gen[:, width:], skip_special_tokens=True)
        scores = reward(completions, solution=[latex(p.value) for p in problems])
        by_family: dict[str, list[float]] = {}
        for p, s in zip(problems, scores):
            by_family.setdefault(p.family, []).append(s)
        out.append({"accuracy": sum(scores) / len(scores),
                    "thinks": sum(not c.startswith("</think>") for c in completions) / len(completions),
                    "by_family": {f: round(sum(v) / len(v), 3) for f, v in sorted(by_family.items())}})
    return out[0], out[1]
