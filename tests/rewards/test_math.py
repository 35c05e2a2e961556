"""Math accuracy on math-verify: gold forms, None for bad golds, and the worker pool's hard limits."""

from __future__ import annotations

import os
import sys
import time

import pytest

from tinyzero_trl.rewards.math import (
    DEFAULT_MEMORY_LIMIT_MB,
    MathVerifyPool,
    get_pool,
    make_math_accuracy_reward,
    score_math,
)

LIMIT = 2.0
reward = make_math_accuracy_reward(time_limit=LIMIT)


@pytest.fixture(scope="module", autouse=True)
def warm_pool():
    get_pool().start()  # workers start once; later timings exclude start-up


def test_bad_time_limit():
    with pytest.raises(ValueError, match="time_limit"):
        make_math_accuracy_reward(time_limit=0)


def test_in_process_scoring():
    assert score_math("so $x = \\boxed{\\frac{1}{2}}$", "\\frac{1}{2}") == 1.0
    assert score_math("\\boxed{3}", "\\frac{1}{2}") == 0.0
    assert score_math("\\boxed{3}", "") is None


def test_batch_scores():
    completions = [
        "We compute carefully. Thus the answer is $\\boxed{\\frac{1}{2}}$.",  # bare LaTeX gold
        "The answer is \\boxed{0.5}",  # equivalent value
        "\\boxed{\\frac{1}{3}}",  # wrong
        "The result is $6-5i$, i.e. \\boxed{6-5i}.",  # raw parsing of the gold would extract only 5
        "Therefore \\boxed{(3, \\frac{\\pi}{2})}",
        "\\boxed{\\begin{pmatrix} -1 \\\\ 2 \\end{pmatrix}}",
        "no final answer at all",
        "We get \\boxed{2}.",  # gold is a full solution with \boxed
        "First I guessed \\boxed{7} but then \\boxed{3}.",  # the last box is the answer
        "First I guessed \\boxed{3} but then \\boxed{7}.",  # so an earlier right box does not count
        "\\boxed{3}. Or \\boxed{7}.",  # and hedging yields a set, which matches neither
        "\\boxed{3}. Or \\boxed{7}.",
    ]
    golds = ["\\frac{1}{2}", "\\frac12", "\\frac{1}{2}", "6 - 5i", "\\left( 3, \\frac{\\pi}{2} \\right)",
             "\\begin{pmatrix} -1 \\\\ 2 \\end{pmatrix}", "5", "Adding, we find $1 + 1 = \\boxed{2}$.", "3", "3", "3", "7"]
    assert reward(completions, solution=golds) == [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]


def test_gold_problems_give_none():
    out = reward(["\\boxed{1}", "\\boxed{1}", "\\boxed{1}", None, "\\boxed{1}"],
                 solution=["", None, "\\boxed{}", "1", 1])
    assert out == [None, None, None, 0.0, 1.0]  # bad completions score 0.0; an int gold is read as text
    assert reward(["\\boxed{1}"]) == [None]  # no solution column
    assert reward([]) == []


def test_conversational_and_extra_kwargs():
    completions = [[{"role": "assistant", "content": "<think>hmm</think> \\boxed{42}"}],
                   [{"role": "assistant", "content": [{"type": "text", "text": "\\boxed{41}"}]}]]
    out = reward(completions=completions, solution=["42", "42"], prompts=[[{"role": "user", "content": "q"}]] * 2,
                 completion_ids=[[1], [2]], trainer_state=None, problem=["q", "q"])
    assert out == [1.0, 0.0]


def test_timeout_kills_and_replaces_the_worker():
    pool = get_pool()
    before = {w.proc.pid for w in pool._workers}
    start = time.perf_counter()
    out = make_math_accuracy_reward(time_limit=1.0)(["\\boxed{9^{9^{9^{9}}}}", "\\boxed{4}"], solution=["1", "4"])
    elapsed = time.perf_counter() - start
    assert out == [0.0, 1.0]
    assert 1.0 <= elapsed < 3.0
    after = {w.proc.pid for w in pool._workers}
    assert len(after) == pool.size and len(before - after) == 1  # exactly the stuck worker was replaced
    gone = (before - after).pop()
    assert not os.path.exists(f"/proc/{gone}") or open(f"/proc/{gone}/stat").read().split()[2] != "Z"
    assert reward(["\\boxed{5}"], solution=["5"]) == [1.0]  # the pool still works


def test_an_overrunning_item_is_stopped_at_its_limit_not_later():
    """The deadline is the item's own limit from when it starts: 3 s here, not 6 (a doubled deadline, issue 25)."""
    from support import sleepy_scorer

    pool = MathVerifyPool(workers=1)
    pool.start()
    start = time.perf_counter()
    assert pool.score([("x", "60")], time_limit=3.0, scorer=sleepy_scorer) == [0.0]
    elapsed = time.perf_counter() - start
    pool.close()
    assert 3.0 <= elapsed < 4.5, elapsed


def test_an_item_queued_behind_another_gets_its_own_full_limit():
    """Two 2 s items queued in one worker under a 3 s limit: the second starts at 2 s and has until 5 s. Keeping
    the first item's deadline would kill it at 3 s, one second before it is done (issue 25)."""
    from support import sleepy_scorer

    pool = MathVerifyPool(workers=1)
    pool.start()
    assert pool.score([("x", "2"), ("y", "2")], time_limit=3.0, scorer=sleepy_scorer) == [1.0, 1.0]
    pool.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_cap_their_address_space():
    pool = get_pool()
    pool.start()  # every worker up and ready: the loop below must look at each of them
    assert pool._workers and all(w.ready for w in pool._workers)
    for w in pool._workers:
        limits = open(f"/proc/{w.proc.pid}/limits").read()
        line = next(x for x in limits.splitlines() if x.startswith("Max address space"))
        soft = line.split()[3]
        assert soft.isdigit(), line  # not "unlimited"
        assert DEFAULT_MEMORY_LIMIT_MB * 2**20 < int(soft) < (DEFAULT_MEMORY_LIMIT_MB + 4096) * 2**20, line


def test_private_pool_close_reaps_workers():
    pool = MathVerifyPool(workers=1)
    f = make_math_accuracy_reward(time_limit=LIMIT, pool=pool)
    assert f(["\\boxed{2}", "\\boxed{3}", "\\boxed{2}"], solution=["2", "2", "2"]) == [1.0, 0.0, 1.0]
    procs = [w.proc for w in pool._workers]
    pool.close()
    for p in procs:
        assert not p.is_alive() and p.exitcode is not None
        assert not os.path.exists(f"/proc/{p.pid}") or open(f"/proc/{p.pid}/stat").read().split()[2] != "Z"
    assert f(["\\boxed{2}"], solution=["2"]) == [1.0]  # a closed pool restarts on use
    pool.close()
