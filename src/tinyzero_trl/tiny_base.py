"""Build "countdown-tiny", an offline, deterministic, CPU-sized BASE model for the countdown miniature.

The point of the miniature is to show the R1-Zero effect in minutes on a laptop: a base model that already
knows the answer format and arithmetic, but is poor at countdown, improves under GRPO with nothing but the
exact-equation reward. So the base is pretrained on documents that look like countdown attempts:

    3 5 7 = 22\\n<think>5*3=15 15+7=22\\n3+5=8 8*7=56\\n</think>\\n<answer>(3+5)*7</answer><eos>

Each document tries a random number of *distinct random* candidate expressions over the given numbers, each
written as two correctly computed steps, and then answers the LAST candidate it tried. Candidates and their
count are drawn independently of the target, so the base model answers right only by chance (~0.1), while the
skill RL has to find is simple and local: keep trying, and stop once a line's value equals the target.

Numbers are single tokens (0..999), so every arithmetic step is a lookup and "value equals target" is a
token-identity match; this is what lets a ~1M-parameter model learn both in a few CPU minutes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import random
import time
from pathlib import Path

RECIPE = {
    "version": 1,
    # Model: Qwen2 architecture, ~0.17M parameters (~0.7 MB fp32): enough for ~430 arithmetic facts + copying.
    "hidden_size": 64,
    "intermediate_size": 256,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 320,
    "max_int_token": 216,  # largest value a chain over 1..6 can reach: 6*6*6
    # Task distribution the pretraining prompts are drawn from (same as the miniature's GRPO/eval tasks).
    # Numbers 1..6 keep the arithmetic table small (~430 distinct steps) so a CPU pretraining learns it.
    "task": {
        "min_numbers": 3,
        "max_numbers": 3,
        "min_number": 1,
        "max_number": 6,
        "min_target": 1,
        "max_target": 100,
    },
    # Attempts per document: 1 + Geometric(stop_prob), capped; short on average, long ones still seen.
    "stop_prob": 0.25,
    "max_tries": 16,
    # Optimiser.
    "steps": 1500,
    "batch_size": 32,  # small batches, more steps: faster learning per token for a model this small
    "lr": 3e-3,
    "warmup": 50,
    "weight_decay": 0.01,
    "threads": 2,  # fixed, so the weights do not depend on the core count (bit-identical on the same machine)
}

SPECIAL = ["<pad>", "<eos>"]
MARKERS = ["<think>", "</think>", "<answer>", "</answer>"]
CHARS = list("+-*/()=<> \n")


def default_cache_dir() -> Path:
    """Where the base model is cached: ``$TINYZERO_CACHE`` or ``~/.cache/tinyzero-trl``, plus the model name."""
    root = os.environ.get("TINYZERO_CACHE") or Path.home() / ".cache" / "tinyzero-trl"
    return Path(root) / "countdown-tiny-base"


def recipe_hash(recipe: dict = RECIPE, seed: int = 0) -> str:
    blob = json.dumps({"recipe": recipe, "seed": seed}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def build_tokenizer(max_int: int = RECIPE["max_int_token"]):
    """Qwen2 tokenizer whose integers 0..max_int are single tokens, plus operators, space, newline, markers.

    It is a ``Qwen2Tokenizer`` (byte-level BPE, no merges) because ``AutoTokenizer`` forces that class on any
    ``qwen2`` checkpoint and would rebuild a custom pipeline as Qwen2's. Integers >= 10 are added tokens, which
    are matched (longest first) before Qwen2's digit-by-digit split, so "15" is one token, not "1" "5".
    """
    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_char = bytes_to_unicode()
    base = SPECIAL + [byte_char[ord(c)] for c in CHARS + list("0123456789")]
    tok = Qwen2Tokenizer(
        vocab={t: i for i, t in enumerate(base)},
        merges=[],
        unk_token=None,
        eos_token="<eos>",
        pad_token="<pad>",
    )
    # Markers are ordinary (non-special) tokens: TRL decodes completions with skip_special_tokens=True and the
    # reward must still see <answer>.
    tok.add_tokens([str(n) for n in range(10, max_int + 1)] + MARKERS)
    tok.padding_side = "left"
    return tok


def candidates(nums: list[int]) -> list[tuple[str, str, int]]:
    """Every two-step chain over three numbers with non-negative integer intermediates.

    Returns (think line, answer expression, value). Chains ``(a o b) o c`` and ``c o (a o b)`` reach every
    generated 3-number task, and integer steps keep each step a single token lookup.
    """
    out = []
    for i, j in itertools.permutations(range(3), 2):
        a, b, c = nums[i], nums[j], nums[3 - i - j]
        for o1 in "+-*/":
            x = _step(a, o1, b)
            if x is None:
                continue
            for o2, rev in itertools.product("+-*/", (False, True)):
                if rev and o2 in "+*":
                    continue  # commutative: the reversed form repeats the plain one
                left, right = (c, x) if rev else (x, c)
                y = _step(left, o2, right)
                if y is None:
                    continue
                ab = f"({a}{o1}{b})"
                expr = f"{c}{o2}{ab}" if rev else f"{ab}{o2}{c}"
                out.append((f"{a}{o1}{b}={x} {left}{o2}{right}={y}", expr, y))
    return out


def _step(a: int, op: str, b: int) -> int | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b if a >= b else None
    if op == "*":
        return a * b
    return a // b if b and a % b == 0 else None


def document(nums: list[int], target: int, rng: random.Random) -> str:
    """One pretraining document: prompt, distinct random attempts, and the last attempt as the answer."""
    from tinyzero_trl.data.countdown import countdown_prompt

    tries = 1
    while tries < RECIPE["max_tries"] and rng.random() > RECIPE["stop_prob"]:
        tries += 1
    pool = candidates(nums)
    picks = rng.sample(pool, min(tries, len(pool)))
    # Each attempt ends with how its value compares with the target: "15+6=21<" (below), ">" (above) or "="
    # (hit), computed correctly but never acted on: attempts stop at random. Attempts are joined by "\n" and the
    # last is closed by "</think>" right after its mark, so the stop decision is predicted AT the mark token:
    # "stop after '=', go on after '<' or '>'" is then a one-token rule RL can find from a sparse reward.
    think = "\n".join(f"{line}{_relation(value, target)}" for line, _, value in picks)
    return (
        countdown_prompt(nums, target, template="tiny") + f"{think}</think>\n<answer>{picks[-1][1]}</answer>"
    )


def _relation(value: int, target: int) -> str:
    return "<" if value < target else ">" if value > target else "="


def _weights_sha256(out_dir: Path) -> str:
    return hashlib.sha256((out_dir / "model.safetensors").read_bytes()).hexdigest()


def build_tiny_base(out_dir: str | Path | None = None, *, seed: int = 0, progress: bool = True) -> Path:
    """Build (or reuse) the tiny base model and tokenizer in ``out_dir``; return the directory.

    Idempotent: a directory holding a complete build with the same recipe hash is returned untouched.
    """
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from tinyzero_trl.data.countdown import generate_countdown

    out_dir = Path(out_dir) if out_dir is not None else default_cache_dir()
    rhash = recipe_hash(RECIPE, seed)
    info_path = out_dir / "build_info.json"
    if info_path.is_file() and (out_dir / "model.safetensors").is_file():
        info = json.loads(info_path.read_text())
        if info.get("recipe_hash") == rhash and info.get("weights_sha256") == _weights_sha256(out_dir):
            return out_dir

    start = time.time()
    tokenizer = build_tokenizer()
    threads = torch.get_num_threads()
    torch.set_num_threads(RECIPE["threads"])
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    try:
        config = Qwen2Config(
            vocab_size=len(tokenizer),
            hidden_size=RECIPE["hidden_size"],
            intermediate_size=RECIPE["intermediate_size"],
            num_hidden_layers=RECIPE["num_hidden_layers"],
            num_attention_heads=RECIPE["num_attention_heads"],
            num_key_value_heads=RECIPE["num_key_value_heads"],
            max_position_embeddings=RECIPE["max_position_embeddings"],
            tie_word_embeddings=True,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=tokenizer.eos_token_id,
        )
        model = Qwen2ForCausalLM(config)
        model.train()
        _pretrain(model, tokenizer, generate_countdown, seed, progress)
    finally:
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(threads)

    model.eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    info = {
        "recipe": RECIPE,
        "seed": seed,
        "recipe_hash": rhash,
        "weights_sha256": _weights_sha256(out_dir),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "build_seconds": round(time.time() - start, 1),
        "torch_threads": RECIPE["threads"],
    }
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    return out_dir


def _pretrain(model, tokenizer, generate_countdown, seed: int, progress: bool) -> None:
    """Plain next-token training on synthetic attempt documents, length-bucketed to waste little padding."""
    import torch

    steps, bsz = RECIPE["steps"], RECIPE["batch_size"]
    tasks = generate_countdown(steps * bsz, seed=10_000 + seed, **RECIPE["task"])
    rng = random.Random(seed)
    eos = tokenizer.eos_token
    texts = [document(n, t, rng) + eos for n, t in zip(tasks["nums"], tasks["target"], strict=True)]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    # Bucket by length within chunks of 16 batches, then shuffle the batch order: similar lengths per batch.
    batches = []
    chunk = 16 * bsz
    for lo in range(0, len(ids), chunk):
        part = sorted(ids[lo : lo + chunk], key=len)
        group = [part[k : k + bsz] for k in range(0, len(part), bsz)]
        rng.shuffle(group)
        batches.extend(group)

    opt = torch.optim.AdamW(model.parameters(), lr=RECIPE["lr"], weight_decay=RECIPE["weight_decay"])
    warm = RECIPE["warmup"]
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    pad = tokenizer.pad_token_id
    t0 = time.time()
    for step, batch in enumerate(batches[:steps]):
        width = max(len(x) for x in batch)
        inp = torch.full((len(batch), width), pad, dtype=torch.long)
        for r, seq in enumerate(batch):
            inp[r, : len(seq)] = torch.tensor(seq)
        mask = inp != pad
        labels = inp.masked_fill(~mask, -100)
        loss = model(input_ids=inp, attention_mask=mask.long(), labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if progress and (step % 100 == 0 or step == steps - 1):
            print(
                f"[tiny-base] step {step + 1}/{steps} loss {loss.item():.4f} {time.time() - t0:.0f}s",
                flush=True,
            )
