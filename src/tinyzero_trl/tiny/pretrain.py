"""What the packaged tiny base models share: tokenizer, pretraining loop, deterministic build and checksums.

Each CPU miniature starts from a 0.61M-parameter Qwen2 pretrained offline on synthetic documents of its task
(``countdown_base.py`` for countdown-tiny, ``math_base.py`` for math-tiny; ``clevr_base.py``, a Qwen2-VL, runs its
own loop on these pieces). A base module owns its recipe and its documents; this module turns them into a saved
model the same way for every base: the same architecture knobs, the same next-token loop with an optional
up-weighted set of tokens, fixed threads and deterministic kernels, and a ``build_info.json`` with the recipe, its
hash and the weights' sha256, so that a rebuild can be compared bit for bit with the build that ships in
``assets/`` (``rebuild_check``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

SPECIAL = ["<pad>", "<eos>"]
ASSETS = Path(__file__).resolve().parent / "assets"
# The tiny base of each task; cli (`tiny-base --task`) and reproductions (`tiny_base:` in config.yaml) look here.
BASES = {"countdown": "tinyzero_trl.tiny.countdown_base", "math": "tinyzero_trl.tiny.math_base",
         "clevr": "tinyzero_trl.tiny.clevr_base"}


def base_module(task: str):
    """The module that builds ``task``'s tiny base (``BASES``); an unknown task names the known ones."""
    if task not in BASES:
        raise ValueError(f"no tiny base for task {task!r}; known: {', '.join(sorted(BASES))}")
    return importlib.import_module(BASES[task])


def cache_dir(name: str) -> Path:
    """Where a base is cached: ``$TINYZERO_CACHE`` or ``~/.cache/tinyzero-trl``, plus the model name."""
    root = os.environ.get("TINYZERO_CACHE") or Path.home() / ".cache" / "tinyzero-trl"
    return Path(root) / name


def recipe_hash(recipe: dict, seed: int = 0) -> str:
    """Short hash of a recipe and seed."""
    blob = json.dumps({"recipe": recipe, "seed": seed}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def weights_sha256(out_dir: Path) -> str:
    """sha256 of a build's ``model.safetensors``."""
    return hashlib.sha256((Path(out_dir) / "model.safetensors").read_bytes()).hexdigest()


def is_complete(out_dir: Path, rhash: str) -> bool:
    """Whether ``out_dir`` holds an intact build of the recipe with hash ``rhash`` (hash and checksum match)."""
    info_path = Path(out_dir) / "build_info.json"
    if not info_path.is_file() or not (Path(out_dir) / "model.safetensors").is_file():
        return False
    info = json.loads(info_path.read_text())
    return info.get("recipe_hash") == rhash and info.get("weights_sha256") == weights_sha256(Path(out_dir))


def tiny_base_path(task: str, *, build: bool = True) -> Path:
    """The base model ``task``'s miniature trains: the packaged build when it is the build of the module's
    current ``RECIPE``, else the cached build (``cache_dir``), made now unless ``build`` is False (dry runs only
    name the path)."""
    module = base_module(task)
    if is_complete(module.PACKAGED_DIR, recipe_hash(module.RECIPE)):
        return module.PACKAGED_DIR
    cache = cache_dir(module.PACKAGED_DIR.name)
    return module.build_tiny_base(cache) if build else cache


def make_tokenizer(chars: Sequence[str], added: Sequence[str], *, chat_template: str | None = None,
                   pad: str = SPECIAL[0], eos: str = SPECIAL[1]):
    """Qwen2 tokenizer over the single characters ``chars`` plus the ``added`` tokens (numbers, markers, words).

    ``pad`` and ``eos`` are its two special tokens, ids 0 and 1 (clevr-tiny's base names them as Qwen2-VL does).

    It is a ``Qwen2Tokenizer`` (byte-level BPE, no merges) because ``AutoTokenizer`` forces that class on any
    ``qwen2`` checkpoint and would rebuild a custom pipeline as Qwen2's. Added tokens are matched (longest first)
    before Qwen2's pre-tokenizer splits digits one by one, so "15" is one token, not "1" "5". They are ordinary,
    not special, tokens: TRL decodes completions with skip_special_tokens=True and the rewards must see them.
    """
    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_char = bytes_to_unicode()
    base = [pad, eos] + [byte_char[ord(c)] for c in chars]
    tok = Qwen2Tokenizer(
        vocab={t: i for i, t in enumerate(base)},
        merges=[],
        unk_token=None,
        eos_token=eos,
        pad_token=pad,
    )
    tok.add_tokens(list(added))
    tok.padding_side = "left"
    if chat_template is not None:
        tok.chat_template = chat_template
    return tok


PhaseTexts = Callable[[dict, int], tuple[list[str], random.Random]]


def needs_build(out_dir: Path, recipe: dict, seed: int) -> str | None:
    """The recipe hash of a build still to make in ``out_dir``, or None when ``out_dir`` holds it complete. A place
    the build cannot write fails here, not when it saves after minutes of training."""
    from tinyzero_trl.run.files import check_writable

    rhash = recipe_hash(recipe, seed)
    if is_complete(out_dir, rhash):
        return None
    check_writable(out_dir, key="tiny base directory", hint="tinyzero-trl tiny-base --out DIR, or TINYZERO_CACHE=DIR")
    return rhash


def build_base(out_dir: Path, *, recipe: dict, seed: int, tokenizer, phase_texts: PhaseTexts,
               weight_key: str | None = None, weighted_tokens: Sequence[str] = (), progress: bool = True) -> Path:
    """Pretrain ``recipe``'s model phase by phase and save it, its tokenizer and ``build_info.json``.

    ``phase_texts(phase, seed)`` returns the phase's documents and the ``random.Random`` that then orders its
    batches. ``phase[weight_key]`` (1.0 when absent or without a key) is the loss weight of ``weighted_tokens``.
    Idempotent: a directory holding a complete build of the same recipe hash is returned untouched.
    """
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out_dir = Path(out_dir)
    rhash = needs_build(out_dir, recipe, seed)
    if rhash is None:
        return out_dir
    start = time.time()
    with deterministic(recipe["threads"], seed):
        config = Qwen2Config(
            vocab_size=len(tokenizer),
            hidden_size=recipe["hidden_size"],
            intermediate_size=recipe["intermediate_size"],
            num_hidden_layers=recipe["num_hidden_layers"],
            num_attention_heads=recipe["num_attention_heads"],
            num_key_value_heads=recipe["num_key_value_heads"],
            max_position_embeddings=recipe["max_position_embeddings"],
            tie_word_embeddings=True,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            # The tokenizer has no BOS (prompts start with their first number); a BOS id here made transformers
            # "align" it to None with a warning in every trainer. It shapes no weights.
            bos_token_id=None,
        )
        model = Qwen2ForCausalLM(config)
        model.train()
        for number, phase in enumerate(recipe["phases"], 1):
            texts, rng = phase_texts(phase, seed)
            weight = phase.get(weight_key, 1.0) if weight_key else 1.0
            pretrain_phase(model, tokenizer, texts, rng, phase, batch_size=recipe["batch_size"],
                           weight_decay=recipe["weight_decay"], weight=weight, weighted_tokens=weighted_tokens,
                           progress=f"phase {number}" if progress else "")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return save_build(out_dir, model, tokenizer, recipe=recipe, seed=seed, rhash=rhash, start=start)


@contextmanager
def deterministic(threads: int, seed: int):
    """Fixed threads, seed and deterministic kernels for the length of a build; torch's threads and its default
    kernels are given back after it, even when the build fails."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(before)


def cpu_kernels() -> str:
    """The instruction set of the CPU kernels torch runs in this process (``AVX2``, ``AVX512``...). Two builds of one
    recipe are bit-identical only when they ran the same kernels: they round differently."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def save_build(out_dir: Path, model, processor, *, recipe: dict, seed: int, rhash: str, start: float) -> Path:
    """Save a finished build in ``out_dir``: the model (in eval mode), its tokenizer or processor, and
    ``build_info.json`` (the recipe and its hash, the weights' sha256, how long it took and the CPU kernels it ran,
    which a rebuild is compared with: ``compare_with_packaged``). Returns ``out_dir``."""
    out_dir = Path(out_dir)
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
    info = {
        "recipe": recipe,
        "seed": seed,
        "recipe_hash": rhash,
        "weights_sha256": weights_sha256(out_dir),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "build_seconds": round(time.time() - start, 1),
        "torch_threads": recipe["threads"],
        "cpu_kernels": cpu_kernels(),
    }
    (out_dir / "build_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return out_dir


def pretrain_phase(model, tokenizer, texts: list[str], rng: random.Random, phase: dict, *, batch_size: int,
                   weight_decay: float, weight: float, weighted_tokens: Sequence[str], progress: str) -> None:
    """One phase of next-token training on ``texts`` (eos appended), length-bucketed to waste little padding.

    ``phase`` gives ``steps``, ``lr`` and ``warmup`` (AdamW, linear warmup then cosine to 0). With ``weight``
    other than 1.0 the loss of each target in ``weighted_tokens`` counts ``weight`` times.
    """
    import torch

    steps, bsz = phase["steps"], batch_size
    eos = tokenizer.eos_token
    ids = tokenizer([t + eos for t in texts], add_special_tokens=False)["input_ids"]
    # Bucket by length within chunks of 16 batches, then shuffle the batch order: similar lengths per batch.
    batches = []
    chunk = 16 * bsz
    for lo in range(0, len(ids), chunk):
        part = sorted(ids[lo : lo + chunk], key=len)
        group = [part[k : k + bsz] for k in range(0, len(part), bsz)]
        rng.shuffle(group)
        batches.extend(group)

    opt, sched = phase_optimizer(model, phase, weight_decay)
    pad = tokenizer.pad_token_id
    weighted_ids = torch.tensor(tokenizer.convert_tokens_to_ids(list(weighted_tokens)), dtype=torch.long)
    t0 = time.time()
    for step, batch in enumerate(batches[:steps]):
        width = max(len(x) for x in batch)
        inp = torch.full((len(batch), width), pad, dtype=torch.long)
        for r, seq in enumerate(batch):
            inp[r, : len(seq)] = torch.tensor(seq)
        mask = inp != pad
        labels = inp.masked_fill(~mask, -100)
        if weight == 1.0:
            loss = model(input_ids=inp, attention_mask=mask.long(), labels=labels).loss
        else:
            logits = model(input_ids=inp, attention_mask=mask.long()).logits[:, :-1]
            loss = weighted_token_loss(logits, labels[:, 1:], weighted_ids, weight)
        optimizer_step(model, opt, sched, loss)
        report(progress, step, steps, loss, t0)


def phase_optimizer(model, phase: dict, weight_decay: float):
    """AdamW at ``phase["lr"]`` with linear warmup over ``phase["warmup"]`` steps, then cosine to 0 at
    ``phase["steps"]``: the schedule every tiny base's phases share."""
    import torch

    steps, warm = phase["steps"], phase["warmup"]
    opt = torch.optim.AdamW(model.parameters(), lr=phase["lr"], weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    return opt, sched


def weighted_token_loss(logits, targets, weighted_ids, weight: float):
    """Mean next-token loss over ``targets`` (-100 ignored) where targets in ``weighted_ids`` count ``weight``
    times: the digits of an answer are few tokens among many, and up-weighting them is what teaches the base to
    get them right."""
    import torch

    token_loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="none"
    ).view_as(targets)
    token_weight = torch.where(torch.isin(targets, weighted_ids), weight, 1.0)
    token_weight = token_weight * (targets != -100)
    return (token_loss * token_weight).sum() / token_weight.sum()


def optimizer_step(model, opt, sched, loss) -> None:
    """Backward, clip the gradient norm at 1.0, step the optimizer and the schedule."""
    import torch

    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()


def report(progress: str, step: int, steps: int, loss, t0: float) -> None:
    """The build's progress line, every 100 steps and at a phase's last (nothing when ``progress`` is empty)."""
    if progress and (step % 100 == 0 or step == steps - 1):
        print(f"[tiny-base] {progress}: step {step + 1}/{steps} loss {loss.item():.4f} {time.time() - t0:.0f}s",
              flush=True)
