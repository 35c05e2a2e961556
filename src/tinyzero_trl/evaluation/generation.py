"""Generation for evaluation: one set of sampling settings, three engines (HF text, HF image+text, vLLM).

``Sampling`` is the single description of how completions are drawn. Each engine is handed exactly these
settings and nothing else, so that greedy means greedy and "T=0.6, top-p 0.95" means the same on both
backends: HF ``generate`` otherwise fills the gaps from the checkpoint's ``generation_config.json`` (Qwen's
instruct checkpoints ask for top-k 20, top-p 0.8 and a repetition penalty), which a vLLM ``SamplingParams`` never
sees. Only the stop tokens are taken from the checkpoint, on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinyzero_trl.model.stopping import Stops

# A rendered prompt is tokenized as it stands: the tokenizer adds no special tokens of its own (a BOS), on either
# backend; a chat template's own tokens are part of the text. (lighteval tokenized its templated text again with
# them, which gave R1-Distill two BOS tokens: reproductions/math-1.5b/source.yaml.)
ADD_SPECIAL_TOKENS = False
# No repetition penalty on either backend, whatever the checkpoint's generation_config.json asks for.
REPETITION_PENALTY = 1.0


@dataclass(frozen=True)
class Sampling:
    """How completions are drawn: ``temperature`` 0 is greedy; ``top_k`` 0 and ``top_p`` 1.0 are off."""

    num_samples: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 1024
    seed: int = 0
    stop: tuple[str, ...] = ()  # strings that end a completion, left out of it (oat-zero stops at "\nUser:")
    stop_token_ids: tuple[int, ...] = ()  # tokens that end a completion, as its EOS does

    def __post_init__(self):
        object.__setattr__(self, "stop", tuple(self.stop or ()))
        object.__setattr__(self, "stop_token_ids", tuple(self.stop_token_ids or ()))
        problems = []
        if self.num_samples < 1:
            problems.append(f"num_samples={self.num_samples} (need at least 1)")
        if self.temperature < 0:
            problems.append(f"temperature={self.temperature} (need >= 0; 0 is greedy)")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p={self.top_p} (need 0 < top_p <= 1)")
        if self.top_k < 0:
            problems.append(f"top_k={self.top_k} (need >= 0; 0 is off)")
        if self.max_new_tokens < 1:
            problems.append(f"max_new_tokens={self.max_new_tokens} (need at least 1)")
        if not all(isinstance(s, str) and s for s in self.stop):
            problems.append(f"stop={list(self.stop)!r} (need non-empty strings)")
        if problems:
            from tinyzero_trl.errors import UserError

            raise UserError("invalid sampling settings: " + "; ".join(problems))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def stops(self, tokenizer) -> Stops:
        """The stop strings and tokens as both engines must read them (``model.stopping``)."""
        return Stops.split(self.stop, tokenizer, self.stop_token_ids)

    def hf_generation_config(self, model_generation_config=None, tokenizer=None):
        """A ``transformers.GenerationConfig`` with exactly these settings; only EOS tokens come from the model.

        transformers 5 fills every field left unset from the checkpoint's generation config, so each field that
        shapes the distribution is set here, to its neutral value when these settings do not use it. Greedy
        decoding is the exception: transformers applies the sampling fields (temperature, top-p, top-k, min-p,
        typical-p, the cutoffs) only when ``do_sample`` is on, so a greedy config leaves them unset; set to their
        neutral values they only made transformers warn "generation flags are not valid" on every evaluation.
        """
        from transformers import GenerationConfig

        stops = self.stops(tokenizer).hf(getattr(model_generation_config, "eos_token_id", None))
        sampling = {} if self.greedy else {
            "temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k, "min_p": 0.0,
            "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0}
        return GenerationConfig(
            max_new_tokens=self.max_new_tokens, num_return_sequences=self.num_samples, do_sample=not self.greedy,
            **sampling, repetition_penalty=REPETITION_PENALTY, no_repeat_ngram_size=0, num_beams=1, min_new_tokens=0,
            **stops)

    def vllm_params(self, tokenizer):
        """``vllm.SamplingParams`` with exactly these settings (vLLM adds the checkpoint's own EOS tokens)."""
        from vllm import SamplingParams

        return SamplingParams(n=self.num_samples, temperature=self.temperature,
                              top_p=1.0 if self.greedy else self.top_p, top_k=0 if self.greedy else self.top_k,
                              max_tokens=self.max_new_tokens, seed=self.seed, repetition_penalty=REPETITION_PENALTY,
                              **self.stops(tokenizer).vllm())


def prompt_texts(prompts, tokenizer) -> list[str]:
    """Plain prompts pass through; conversational ones are rendered with the chat template, as TRL does."""
    texts = []
    for p in prompts:
        if isinstance(p, str):
            texts.append(p)
        else:
            texts.append(tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True))
    return texts


class _CountFinished:
    """A stopping criterion that stops nothing: at each decoding step it moves ``bar`` by the completions that have
    just ended (their last token is the pad or an end token, which generate appends once a row is done), so the
    bar counts completions as they finish instead of jumping once per batch (2 jumps for 200 prompts)."""

    def __init__(self, bar, ends: set[int], prompt_length: int):
        self.bar, self.ends, self.prompt_length = bar, sorted(ends), prompt_length
        self.done, self.counted = None, 0

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        if input_ids.shape[1] > self.prompt_length:
            ended = torch.isin(input_ids[:, -1], torch.tensor(self.ends, device=input_ids.device))
            self.done = ended if self.done is None else self.done | ended
            self.bar.update(int(self.done.sum()) - self.counted)
            self.counted = int(self.done.sum())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def generate_batch(model, tokenizer, enc, sampling: Sampling, bar=None) -> list[list[str]]:
    """One ``generate`` call on an encoded, left-padded batch: ``num_samples`` decoded completions per row;
    ``bar`` (a tqdm over completions) moves as each completion ends."""
    import torch
    from transformers import StoppingCriteriaList

    config = sampling.hf_generation_config(getattr(model, "generation_config", None), tokenizer)
    config.pad_token_id = tokenizer.pad_token_id
    stops = sampling.stops(tokenizer)
    criteria = StoppingCriteriaList()
    if bar is not None:
        eos = config.eos_token_id if config.eos_token_id is not None else tokenizer.eos_token_id
        ends = {t for t in ([eos] if isinstance(eos, int) else list(eos or [])) + [tokenizer.pad_token_id]
                if t is not None}
        criteria.append(counter := _CountFinished(bar, ends, enc["input_ids"].shape[1]))
    with torch.no_grad():
        gen = model.generate(**enc, generation_config=config, tokenizer=tokenizer if stops.strings else None,
                             stopping_criteria=criteria)
    if bar is not None:  # the rest ran to max_new_tokens
        bar.update(gen.shape[0] - counter.counted)
    # HF's text keeps the string it stopped on, vLLM's does not: cut it the same way.
    texts = [stops.cut(t) for t in tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:],
                                                           skip_special_tokens=True)]
    n = sampling.num_samples
    return [texts[i:i + n] for i in range(0, len(texts), n)]


def _generate_batches(model, tokenizer, count: int, encode, sampling: Sampling, batch_size: int,
                      progress: bool) -> list[list[str]]:
    """``generate_batch`` over ``count`` prompts, ``batch_size`` at a time; ``encode(start, end)`` makes a batch."""
    import torch
    from tqdm.auto import tqdm

    torch.manual_seed(sampling.seed)
    tokenizer.padding_side = "left"  # generation continues from the right edge of every row
    outputs: list[list[str]] = []
    with tqdm(total=count * sampling.num_samples, desc="generating", unit="completion", disable=not progress) as bar:
        for start in range(0, count, batch_size):
            outputs += generate_batch(model, tokenizer, encode(start, start + batch_size).to(model.device), sampling,
                                      bar=bar if progress else None)
    return outputs


def generate_hf(model, tokenizer, texts: list[str], sampling: Sampling, *, batch_size: int = 16,
                progress: bool = True) -> list[list[str]]:
    """Batched HF ``generate`` on text prompts, with a progress bar; ``num_samples`` completions per prompt."""

    def encode(start, end):
        return tokenizer(texts[start:end], return_tensors="pt", padding=True,
                         add_special_tokens=ADD_SPECIAL_TOKENS)

    return _generate_batches(model, tokenizer, len(texts), encode, sampling, batch_size, progress)


def generate_multimodal(model, processor, prompts: list, images: list, sampling: Sampling, *,
                        batch_size: int = 16, progress: bool = True) -> list[list[str]]:
    """Batched HF ``generate`` on conversational image prompts; ``num_samples`` completions per prompt.

    Each prompt's ``{"type": "image"}`` placeholder is filled with its image by TRL's own
    ``prepare_multimodal_messages``, so evaluation renders prompts exactly as training did.
    """
    from trl.data_utils import prepare_multimodal_messages

    def encode(start, end):
        chunk = [prepare_multimodal_messages(prompt, images=[image] if image is not None else [])
                 for prompt, image in zip(prompts[start:end], images[start:end])]
        return processor.apply_chat_template(chunk, add_generation_prompt=True, tokenize=True, return_dict=True,
                                             return_tensors="pt", processor_kwargs={"padding": True})

    return _generate_batches(model, processor.tokenizer, len(prompts), encode, sampling, batch_size, progress)


def require_vllm(flag: str, *, otherwise: str = "") -> None:
    """Refuse ``flag`` with one line that says how to install vLLM, when it is not installed here; ``otherwise``
    ends the line with what the user can do instead."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        from tinyzero_trl.errors import UserError

        raise UserError(f"{flag}: vLLM is not installed here; on a CUDA machine pip install -c constraints.txt -e "
                        f"'.[vllm]', on CPU see README 'vLLM on CPU'{otherwise}")


def generate_vllm(model_path: str, texts: list[str], sampling: Sampling, *, revision: str | None = None,
                  trust_remote_code: bool = False, dtype: str = "auto", enforce_eager: bool | None = None,
                  timings: dict | None = None) -> list[list[str]]:
    """Generation with vLLM, in a process of its own; same output shape as ``generate_hf``.

    The engine lives in a child process (``python -m tinyzero_trl.evaluation.generation``) that exits before this returns,
    so every byte it held (weights, KV cache, on a GPU the whole CUDA context) is back with the system: a
    reproduction can evaluate with vLLM and then start training, whose own colocated engine would not fit beside
    a leftover one. The child also gives vLLM the ``__main__`` guard its spawned engine core needs, whatever
    script calls this. Prompts are tokenized exactly as ``generate_hf`` does (no special tokens added) and
    handed to vLLM as token ids, so both backends continue the same tokens. ``dtype="auto"`` is the checkpoint's
    own dtype, as ``from_pretrained`` reads it (vLLM's "auto" would serve a float32 checkpoint in bfloat16 or
    float16, and greedy completions would part from HF's on near-ties). ``enforce_eager`` (default: on CPU
    only) skips torch.compile, whose warm-up costs more than it saves at evaluation sizes on CPU. ``timings``,
    if given, receives the child's engine start-up and generation seconds and the completion token count.
    """
    import json
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    require_vllm("--backend vllm", otherwise=", or use --backend hf")
    request = {"model": str(model_path), "texts": list(texts), "sampling": sampling.__dict__, "revision": revision,
               "trust_remote_code": trust_remote_code, "dtype": dtype, "enforce_eager": enforce_eager}
    with tempfile.TemporaryDirectory(prefix="tinyzero-vllm-") as tmp:
        req, res = Path(tmp) / "request.json", Path(tmp) / "result.json"
        req.write_text(json.dumps(request))
        code = subprocess.call([sys.executable, "-m", "tinyzero_trl.evaluation.generation", str(req), str(res)])
        if code != 0 or not res.is_file():
            raise RuntimeError(f"vLLM generation failed (exit code {code}); its output is above")
        result = json.loads(res.read_text())
    if timings is not None:
        timings.update(result["timings"])
    return result["completions"]


def _vllm_child(request_file: str, result_file: str) -> None:
    """The child of ``generate_vllm``: build the engine, generate, write the completions, exit."""
    import json
    import time

    from transformers import AutoTokenizer
    from vllm import LLM
    from vllm.inputs import TokensPrompt

    request = json.loads(open(request_file, encoding="utf-8").read())
    sampling = Sampling(**request["sampling"])
    load = {"revision": request["revision"], "trust_remote_code": request["trust_remote_code"]}
    tokenizer = AutoTokenizer.from_pretrained(request["model"], **load)
    dtype = request["dtype"]
    if dtype == "auto":
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(request["model"], **load)
        checkpoint = getattr(config, "dtype", None) or getattr(getattr(config, "text_config", None), "dtype", None)
        dtype = str(checkpoint).removeprefix("torch.") if checkpoint is not None else "auto"
    prompts = [TokensPrompt(prompt_token_ids=ids)
               for ids in tokenizer(request["texts"], add_special_tokens=ADD_SPECIAL_TOKENS)["input_ids"]]
    eager = request["enforce_eager"]
    if eager is None:
        import torch

        eager = not torch.cuda.is_available()
    start = time.perf_counter()
    llm = LLM(model=request["model"], dtype=dtype, seed=sampling.seed, enforce_eager=eager, **load)
    ready = time.perf_counter()
    outputs = llm.generate(prompts, sampling.vllm_params(tokenizer))
    done = time.perf_counter()
    completions = [[o.text for o in r.outputs] for r in outputs]
    tokens = sum(len(o.token_ids) for r in outputs for o in r.outputs)
    with open(result_file, "w", encoding="utf-8") as fh:
        json.dump({"completions": completions, "timings": {"engine_seconds": ready - start,
                                                           "generate_seconds": done - ready,
                                                           "completion_tokens": tokens}}, fh)


def generate(model_path: str, processing_class, prompts: list, sampling: Sampling, *, images: list | None = None,
             backend: str = "auto", batch_size: int = 16, progress: bool = True,
             load: dict | None = None) -> tuple[list[list[str]], str]:
    """Completions for every prompt (rendered texts; conversational ones with ``images``: HF only) from the model at
    ``model_path``, loaded with ``load`` (revision, trust_remote_code), and the backend that made them."""
    load = load or {}
    backend = "hf" if images is not None else pick_backend(backend)
    if images is not None:
        from transformers import AutoModelForImageTextToText

        model = AutoModelForImageTextToText.from_pretrained(model_path, **load).eval()
        return generate_multimodal(model, processing_class, prompts, images, sampling, batch_size=batch_size,
                                   progress=progress), backend
    if backend == "vllm":
        return generate_vllm(model_path, prompts, sampling, **load), backend
    from transformers import AutoModelForCausalLM

    tokenizer = getattr(processing_class, "tokenizer", processing_class)
    model = AutoModelForCausalLM.from_pretrained(model_path, **load).eval()
    return generate_hf(model, tokenizer, prompts, sampling, batch_size=batch_size, progress=progress), backend


def pick_backend(backend: str) -> str:
    """``auto`` means vLLM when it is importable and a GPU is visible, else HF generate."""
    if backend != "auto":
        return backend
    try:
        import torch
        import vllm  # noqa: F401

        return "vllm" if torch.cuda.is_available() else "hf"
    except ImportError:
        return "hf"


if __name__ == "__main__":  # the vLLM child of generate_vllm
    import sys

    _vllm_child(sys.argv[1], sys.argv[2])
