"""Format rewards and the completion-text helpers every reward shares.

TRL hands a reward function either plain strings or, for conversational data, message lists such as
``[{"role": "assistant", "content": "..."}]`` whose content may itself be a list of ``{"type": "text"}``
parts. :func:`completion_text` turns any of these into one string, or ``None`` for anything else, so that a
malformed completion scores 0.0 instead of raising inside the trainer.

All checks here use ``str.find``/``str.count`` only: linear time on megabyte completions and no regex that
could backtrack.
"""

from __future__ import annotations

from collections.abc import Sequence

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"


def _content_text(content) -> str | None:
    """The text of one message's ``content``: a string, or the concatenated ``text`` parts of a part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        pieces = []
        for part in content:
            if isinstance(part, str):
                pieces.append(part)
            elif isinstance(part, dict) and part.get("type", "text") == "text" and isinstance(part.get("text"), str):
                pieces.append(part["text"])
        return "".join(pieces)
    return None


def completion_text(completion) -> str | None:
    """Return the text a reward should judge, or ``None`` when ``completion`` has no usable text.

    A string is returned as is. A message list yields the content of its LAST assistant message (earlier
    turns are context, not the model's answer); a single message dict is accepted too.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, Sequence) and not isinstance(completion, (bytes, bytearray)):
        try:
            for message in reversed(completion):
                if isinstance(message, dict) and message.get("role") == "assistant":
                    return _content_text(message.get("content"))
        except Exception:  # a hostile Sequence subclass: treat as no text rather than crash the trainer
            return None
    return None


def completion_texts(completions) -> list[str | None]:
    """:func:`completion_text` over a batch; a batch that is not iterable (or is a lone string) gives ``[]``."""
    if isinstance(completions, (list, tuple)):
        return [completion_text(c) for c in completions]
    if completions is None or isinstance(completions, (str, bytes, bytearray)):
        return []
    try:
        return [completion_text(c) for c in list(completions)]
    except Exception:  # not iterable, or an iterator that raises: nothing to score
        return []


def last_answer(text: str) -> str | None:
    """Content of the block opened by the LAST ``<answer>`` tag, or ``None`` when that tag is never closed.

    Only the last opening tag counts, so an answer written earlier (for instance inside the think block)
    cannot be rewarded when a later one exists. ``rfind``/``find`` keep this linear on any input.
    """
    start = text.rfind(ANSWER_OPEN)
    if start < 0:
        return None
    start += len(ANSWER_OPEN)
    end = text.find(ANSWER_CLOSE, start)
    if end < 0:
        return None
    return text[start:end]


def _countdown_format_ok(text: str) -> bool:
    # The prompt already opened <think>: the completion must close it once and never reopen it.
    if text.count(THINK_CLOSE) != 1 or THINK_OPEN in text:
        return False
    tail = text[text.find(THINK_CLOSE) + len(THINK_CLOSE):].strip()
    if not (tail.startswith(ANSWER_OPEN) and tail.endswith(ANSWER_CLOSE)):
        return False
    inner = tail[len(ANSWER_OPEN):-len(ANSWER_CLOSE)]
    # Exactly one answer block after </think>, and not an empty one (an empty block is free format reward).
    return ANSWER_OPEN not in inner and ANSWER_CLOSE not in inner and bool(inner.strip())


def countdown_format_reward(completions, **kwargs) -> list[float]:
    """1.0 when a completion of a prompt ending in ``<think>`` has the countdown format, else 0.0.

    The format: think text, exactly one ``</think>`` (and no ``<think>``: the prompt opened the block), then,
    after optional whitespace, exactly one non-empty ``<answer>...</answer>`` and nothing but whitespace.
    Extra keyword arguments (dataset columns, prompts, ...) are ignored.
    """
    return [1.0 if isinstance(t, str) and _countdown_format_ok(t) else 0.0 for t in completion_texts(completions)]


def _think_format_ok(text: str) -> bool:
    body = text.lstrip()
    if not body.startswith(THINK_OPEN) or text.count(THINK_OPEN) != 1 or text.count(THINK_CLOSE) != 1:
        return False
    close = body.find(THINK_CLOSE)
    return bool(body[close + len(THINK_CLOSE):].strip())


def think_format_reward(completions, **kwargs) -> list[float]:
    """R1's format for prompts that do not prefill ``<think>``: 1.0 or 0.0 per completion.

    1.0 iff the completion (after optional leading whitespace) starts with ``<think>``, holds exactly one
    ``<think>`` and one ``</think>``, and has a non-empty answer after ``</think>``. Extra keyword arguments
    are ignored.
    """
    return [1.0 if isinstance(t, str) and _think_format_ok(t) else 0.0 for t in completion_texts(completions)]


def _think_close_ok(text: str) -> bool:
    if THINK_OPEN in text or text.count(THINK_CLOSE) != 1:
        return False
    return bool(text[text.find(THINK_CLOSE) + len(THINK_CLOSE):].strip())


def think_close_format_reward(completions, **kwargs) -> list[float]:
    """R1's format for chat templates that prefill ``<think>`` (DeepSeek-R1-Distill's): 1.0 or 0.0.

    The completion starts inside the think block, so 1.0 iff it holds no ``<think>``, exactly one
    ``</think>``, and a non-empty answer after it.
    """
    return [1.0 if isinstance(t, str) and _think_close_ok(t) else 0.0 for t in completion_texts(completions)]
