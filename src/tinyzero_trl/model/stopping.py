"""Where a completion ends: a recipe's stop strings and stop tokens made to mean the same to HF generate and to
vLLM, in training and in evaluation, and the text a reward reads cut where the sources cut it.

Two differences between the engines, found in their code (transformers 5.17, vLLM 0.31):

- vLLM matches stop strings against the text it detokenizes with special tokens skipped, so a special token
  given as a string (``"<|im_end|>"``) never matches there; HF's ``StopStringCriteria`` matches token strings
  with the special tokens in. ``Stops.split`` turns every stop string that is one special token of the tokenizer
  into that token's id, on which both engines stop as they stop on EOS; what remains are plain strings, which
  both match in the text.
- Both engines keep the tokens of a matched stop string in the completion's token ids; vLLM cuts the string
  from its *text* only. TRL scores what it decodes from the ids, so a reward would read ``"...</answer>\\nUser:"``
  where the source (oat-zero, scoring vLLM's text) read ``"...</answer>"``. ``Stops.cut`` gives the rewards the
  text up to the first stop string, as vLLM's text and the sources' rewards have it.

The tokens of the stop string itself stay in what the loss trains on: the sources trained on vLLM's token ids,
which keep them (oat: ``CompletionOutput.token_ids``); generation stops right after them, so nothing follows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stops:
    """Plain stop ``strings`` (matched in the text) and stop ``token_ids`` (matched as tokens)."""

    strings: tuple[str, ...] = ()
    token_ids: tuple[int, ...] = ()

    @classmethod
    def split(cls, strings=(), tokenizer=None, token_ids=()) -> Stops:
        """``strings`` that are a single special token of ``tokenizer`` become its id; the rest stay strings."""
        special = _special_tokens(tokenizer) if tokenizer is not None else {}
        ids = [int(t) for t in (token_ids or ())]
        plain = []
        for text in strings or ():
            if text in special:
                ids.append(special[text])
            else:
                plain.append(text)
        return cls(tuple(dict.fromkeys(plain)), tuple(dict.fromkeys(ids)))

    def cut(self, text: str) -> str:
        """``text`` up to its first stop string (the whole text when none occurs)."""
        if not isinstance(text, str):
            return text
        ends = [i for i in (text.find(s) for s in self.strings) if i >= 0]
        return text[:min(ends)] if ends else text

    def vllm(self) -> dict:
        """``SamplingParams`` arguments."""
        return {"stop": list(self.strings) or None, "stop_token_ids": list(self.token_ids) or None}

    def hf(self, eos_token_ids) -> dict:
        """``GenerationConfig`` arguments: the stop tokens join the model's EOS ids; the strings need the tokenizer
        passed to ``generate``."""
        eos = [eos_token_ids] if isinstance(eos_token_ids, int) else list(eos_token_ids or [])
        return {"stop_strings": list(self.strings) or None,
                "eos_token_id": list(dict.fromkeys([*eos, *self.token_ids])) or None}


def _special_tokens(tokenizer) -> dict[str, int]:
    """Every special token of ``tokenizer`` (named ones and added ones marked special) -> its id."""
    found = {t: tokenizer.convert_tokens_to_ids(t) for t in tokenizer.all_special_tokens}
    for token_id, added in getattr(tokenizer, "added_tokens_decoder", {}).items():
        if getattr(added, "special", False):
            found[str(added)] = token_id
    return found


def stop_settings(generation_kwargs: dict | None) -> tuple[list[str], list[int], dict]:
    """A recipe's ``training.generation_kwargs`` (vLLM's names): its ``stop`` strings, ``stop_token_ids``, and the
    rest."""
    rest = dict(generation_kwargs or {})
    strings = rest.pop("stop", None) or []
    ids = rest.pop("stop_token_ids", None) or []
    return [strings] if isinstance(strings, str) else list(strings), list(ids), rest
