"""The countdown-tiny base model's pretraining documents and its deterministic, cached build."""

import itertools
import random
import re

from tinyzero_trl.rewards.countdown import countdown_equation_reward
from tinyzero_trl.tiny import countdown_base as tiny_base

LINE = re.compile(r"(\d+)([-+*])(\d+)=(\d+) (\d+)([-+*])(\d+)=(\d+) vs (\d+) (yes|no)")


def reachable(nums) -> set[int]:
    """Every value of every + - * expression over all of ``nums`` (any order, any bracketing): brute force."""

    def values(items):
        if len(items) == 1:
            return {items[0]}
        out = set()
        for i in range(1, len(items)):
            for a in values(items[:i]):
                for b in values(items[i:]):
                    out |= {a + b, a - b, a * b}
        return out

    return set().union(*(values(list(p)) for p in itertools.permutations(nums)))


def _apply(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def test_search_reaches_every_target_that_plus_minus_times_can_make():
    # The base model's search is only worth learning to use if it is complete: for every task of the
    # miniature, some line of the 27 hits the target (checked against an independent brute force).
    for nums in itertools.product(range(1, 7), repeat=3):
        hits = {value for _, _, value in tiny_base.candidates(list(nums))}
        assert hits == {v for v in reachable(nums) if v >= 0}, nums


def test_candidate_answers_use_each_number_once_and_equal_their_value():
    for nums in ([3, 5, 2], [1, 1, 6], [6, 6, 6], [2, 4, 4]):
        for line, expr, value in tiny_base.candidates(nums):
            a, o1, b, x, u, o2, v, y, _, _ = LINE.fullmatch(tiny_base.check_line(line, value, 1)).groups()
            assert _apply(int(a), o1, int(b)) == int(x) and _apply(int(u), o2, int(v)) == int(y) == value
            assert countdown_equation_reward([f"<answer>{expr}</answer>"], nums=[nums], target=[value]) == [1.0]


def test_documents_check_every_line_and_answer_the_last_one():
    rng = random.Random(0)
    kinds = {"stopped at a hit": 0, "stopped at a miss": 0}
    for _ in range(300):
        nums, target = [rng.randint(1, 6) for _ in range(3)], None
        target = rng.choice([v for _, _, v in tiny_base.candidates(nums) if 1 <= v <= 100])
        doc = tiny_base.document(nums, target, rng, careful_frac=0.15, long_frac=0.35)
        prompt, rest = doc.split("<think>")
        assert prompt == f"{nums[0]} {nums[1]} {nums[2]} = {target}\n"
        think, answer = rest.split("\n</think>\n<answer>")
        lines = [LINE.fullmatch(line).groups() for line in think.split("\n")]
        assert all(int(g[8]) == target and (g[9] == "yes") == (int(g[7]) == target) for g in lines)  # checks right
        expected = [c[0] for c in tiny_base.candidates(nums)][: len(lines)]
        assert [" ".join(line.split()[:2]) for line in think.split("\n")] == expected  # the search order
        reward = countdown_equation_reward([f"<answer>{answer}"], nums=[nums], target=[target])[0]
        assert reward == (1.0 if lines[-1][9] == "yes" else 0.0)
        kinds["stopped at a hit" if reward else "stopped at a miss"] += 1
    # Mostly wrong (the base is poor at the task), but careful documents exist for RL to amplify.
    assert kinds["stopped at a miss"] > 2 * kinds["stopped at a hit"] > 0


def test_tokenizer_makes_numbers_and_markers_single_tokens():
    tok = tiny_base.build_tokenizer()
    text = "3 5 2 = 13\n<think>3*5=15 15-2=13 vs 13 yes\n</think>\n<answer>(3*5)-2</answer>"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    for piece in ("216", "15", "vs", "yes", "no", "</think>"):
        assert len(tok(piece, add_special_tokens=False)["input_ids"]) == 1, piece
