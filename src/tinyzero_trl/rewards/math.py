"""Math accuracy on math-verify, scored in a pool of worker processes with a hard per-item time limit.

math-verify's own timeouts use ``signal.alarm``: main thread only, and unable to interrupt one long C call
(``9^{9^{9^9}}`` is a single big-int ``pow``). So items run in worker processes; the parent tracks a deadline
for the item each worker runs, kills a worker that overruns, scores its item 0.0 and starts a replacement.
Workers ('forkserver' context, math-verify preloaded, so a replacement is a cheap fork; 'spawn' elsewhere)
start lazily, cap their address space, ignore Ctrl-C (the parent owns shutdown) and stop at exit.
"""

from __future__ import annotations

import atexit
import functools
import logging
import multiprocessing as mp
import os
import threading
import time
import weakref
from collections import deque
from multiprocessing.connection import wait

from tinyzero_trl.rewards.format import completion_texts

DEFAULT_TIME_LIMIT = 5.0  # seconds per item, parse + verify
DEFAULT_MEMORY_LIMIT_MB = 4096  # address space a worker may add to what it holds once started
STARTUP_TIMEOUT = 120.0  # a worker not ready by then is replaced
_PREFETCH_MAX_BYTES = 16 * 1024  # queue a second item only if it fits a pipe buffer: a send must never block
_MAX_START_FAILURES = 3

_WARM_ENV = "TINYZERO_MATH_FORKSERVER_WARMUP"  # set only while our forkserver starts, see _context()
_WARMUP = [("\\boxed{0.5}", "\\frac{1}{2}"), ("\\boxed{(3, \\pi/2)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),
           ("\\boxed{6-5i}", "6 - 5i"), ("\\boxed{x^2+7x+10}", "(x+2)(x+5)"), ("\\boxed{3\\sqrt{13}}", "\\sqrt{117}"),
           ("\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
           ("\\boxed{[-2, 7)}", "[-2,7)"), ("\\boxed{\\text{Evelyn}}", "\\text{Evelyn}"), ("\\boxed{90^\\circ}", "90")]
_START_ERROR = ("math-verify workers fail to start. Workers import the main script: guard its entry point with "
                "`if __name__ == '__main__':`, and check that math_verify imports.")


@functools.cache  # built on first use: the parent process never imports math-verify
def _completion_config():
    """open-r1's completion extraction: LaTeX only, ``\\boxed{}`` first, no anchor-less guessing."""
    from math_verify import LatexExtractionConfig, LatexNormalizationConfig

    # The hard limit is the process kill: silence math-verify's "timeout is disabled" warning.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    norm = LatexNormalizationConfig(basic_latex=True, units=True, malformed_operators=False, nits=False, boxed="all")
    return [LatexExtractionConfig(normalization_config=norm, boxed_match_priority=0, try_extract_without_anchor=False)]


def parse_gold(gold: str) -> list:
    """Parse a gold answer: a full solution with ``\\boxed{}``, or a bare LaTeX answer like ``\\frac{1}{2}``.

    A bare answer is tried in ``$...$`` first (parsed raw, ``6 - 5i`` would extract just ``5``)."""
    from math_verify import parse

    _completion_config()
    boxed = "\\boxed" in gold or "\\fbox" in gold
    for text in [gold] if boxed else [f"${gold}$", f"\\boxed{{{gold}}}", gold]:
        parsed = parse(text, extraction_mode="first_match", parsing_timeout=None)
        if parsed:
            return parsed
    return []


def score_math(completion: str, gold: str) -> float | None:
    """Score one item in THIS process with NO time limit (what a worker runs): 1.0/0.0, None for a bad gold."""
    from math_verify import parse, verify

    gold_parsed = parse_gold(gold)
    if not gold_parsed:
        return None
    answer = parse(completion, extraction_config=_completion_config(), extraction_mode="first_match",
                   parsing_timeout=None)
    return 1.0 if verify(gold_parsed, answer, timeout_seconds=None) else 0.0


def _worker_main(inbox, outbox, memory_limit_mb: int) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import resource

        # Headroom over the current address space rather than an absolute cap: a worker inherits whatever the
        # parent's __main__ imports, and a fixed cap could leave it no room at all.
        with open("/proc/self/statm") as f:
            cap = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE") + memory_limit_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ImportError, OSError, ValueError):
        pass  # not Linux: no memory cap, the time limit still holds
    parse_gold("1")  # warm math-verify's lazy imports before the first item's clock starts
    outbox.send(("ready", None))
    while True:
        try:
            msg = inbox.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        try:
            result = (msg[3] or score_math)(msg[1], msg[2])
        except Exception:  # MemoryError, RecursionError, sympy errors: this item scores 0.0, the worker lives on
            result = 0.0
        outbox.send((msg[0], result))


def default_workers() -> int:
    """``$TINYZERO_MATH_WORKERS``, else the usable cores split among this node's ranks; between 1 and 8."""
    env, ranks = os.environ.get("TINYZERO_MATH_WORKERS", ""), os.environ.get("LOCAL_WORLD_SIZE", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if ranks.isdigit() and int(ranks) > 1:  # torchrun/accelerate: every rank has its own pool
        cores //= int(ranks)
    return max(1, min(cores, 8))


def _context():
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["tinyzero_trl.rewards.math", "math_verify"])
    # Start the forkserver now, telling its import of this module to warm math-verify up (compiled regexes,
    # the LaTeX parser's prediction tables), so that every worker, replacements included, forks warm. No
    # effect if the forkserver already runs: workers then import and warm up on their own.
    os.environ[_WARM_ENV] = "1"
    try:
        from multiprocessing import forkserver

        forkserver.ensure_running()
    finally:
        os.environ.pop(_WARM_ENV, None)
    return ctx


class _Worker:
    def __init__(self, ctx, memory_limit_mb: int):
        child_in, self.inbox = ctx.Pipe(duplex=False)
        self.outbox, child_out = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_worker_main, args=(child_in, child_out, memory_limit_mb),
                                name="math-verify-worker", daemon=True)
        self.proc.start()
        child_in.close()  # keep only the parent's ends, so a dead worker reads as EOF
        child_out.close()
        self.ready = False
        self.queue: deque[int] = deque()  # indices of the items sent; the head is the one running
        self.deadline = 0.0
        self.born = time.monotonic()

    def stop(self, grace: float = 0.0) -> None:
        """Wait up to ``grace`` seconds for the worker to exit, then kill it; reap it either way (no zombie)."""
        if grace > 0:
            self.proc.join(grace)
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()
        self.inbox.close()
        self.outbox.close()


_POOLS: weakref.WeakSet = weakref.WeakSet()


class MathVerifyPool:
    """Persistent math-verify worker processes with a hard time limit per item; thread-safe, any thread.

    Workers start on first use; :meth:`close` (also run at interpreter exit) stops and reaps them."""

    def __init__(self, workers: int | None = None, memory_limit_mb: int = DEFAULT_MEMORY_LIMIT_MB):
        self.size = workers or default_workers()
        self.memory_limit_mb = memory_limit_mb
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._pid = os.getpid()
        self._ctx = None
        _POOLS.add(self)

    def _spawn(self) -> _Worker:
        self._ctx = self._ctx or _context()
        return _Worker(self._ctx, self.memory_limit_mb)

    def start(self) -> None:
        """Start the workers now and wait until they are ready (otherwise the first :meth:`score` does)."""
        self.score([], wait_ready=True)

    def score(self, items: list[tuple[str, str]], time_limit: float = DEFAULT_TIME_LIMIT,
              wait_ready: bool = False, scorer=None) -> list[float | None]:
        """Score ``(completion, gold)`` pairs; an item over ``time_limit`` seconds, or crashing, scores 0.0.

        ``scorer`` is the module-level function a worker runs on each pair (default :func:`score_math`); it is
        sent by reference, so another reward's own math-verify settings get the same hard limits.
        """
        with self._lock:
            if self._pid != os.getpid():  # inherited through fork: those workers belong to the parent
                self._workers, self._pid = [], os.getpid()
            try:
                return self._run(items, float(time_limit), wait_ready, scorer)
            except BaseException:
                self._stop_all(grace=0.0)  # workers may still hold items of this batch: start afresh
                raise

    def _run(self, items, limit: float, wait_ready: bool, scorer=None) -> list[float | None]:
        results: list[float | None] = [0.0] * len(items)
        pending = deque(range(len(items)))
        remaining, failures = len(items), 0
        while len(self._workers) < self.size:
            self._workers.append(self._spawn())
        while remaining or (wait_ready and not all(w.ready for w in self._workers)):
            now = time.monotonic()
            for w in self._workers:  # each ready worker: one running item, plus one small one queued behind
                while w.ready and pending and len(w.queue) < 2:
                    i = pending[0]
                    if w.queue and 4 * (len(items[i][0]) + len(items[i][1])) > _PREFETCH_MAX_BYTES:
                        break
                    try:
                        w.inbox.send((i, *items[i], scorer))
                    except OSError:
                        break  # the worker died: its sentinel reports it below
                    pending.popleft()
                    if not w.queue:
                        w.deadline = now + limit
                    w.queue.append(i)
            due = [w.deadline if w.ready else w.born + STARTUP_TIMEOUT for w in self._workers if w.queue or not w.ready]
            handles = {h: w for w in self._workers for h in (w.outbox, w.proc.sentinel)}
            dead = set()
            for handle in wait(list(handles), max(0.0, min(due) - now) if due else None):
                w = handles[handle]
                try:
                    while w.outbox.poll():
                        index, value = w.outbox.recv()
                        if index == "ready":
                            w.ready, failures = True, 0
                            continue
                        results[index] = value
                        remaining -= 1
                        w.queue.popleft()
                        if w.queue:  # the queued item started when this result was sent
                            w.deadline = time.monotonic() + limit
                except (EOFError, OSError):
                    dead.add(w)
                if handle == w.proc.sentinel:
                    dead.add(w)
            now = time.monotonic()
            for k, w in enumerate(self._workers):
                late = now >= (w.deadline if w.ready else w.born + STARTUP_TIMEOUT)
                if w not in dead and not (late and (w.queue or not w.ready)):
                    continue
                if not w.ready:
                    failures += 1
                    if failures >= _MAX_START_FAILURES:
                        raise RuntimeError(_START_ERROR)
                if w.queue:  # the running item is the culprit: 0.0; a queued one never started: retry it
                    w.queue.popleft()
                    remaining -= 1
                    pending.extendleft(reversed(w.queue))
                w.stop()
                self._workers[k] = self._spawn()
        return results

    def _stop_all(self, grace: float) -> None:
        if self._pid == os.getpid():
            for w in self._workers:
                try:
                    w.inbox.send(None)  # ask all first, so that their exits overlap
                except (OSError, ValueError):
                    pass
            for w in self._workers:
                w.stop(grace)
        self._workers = []

    def close(self) -> None:
        """Stop the workers (asked, killed after a second) and reap them. The pool restarts if used again."""
        locked = self._lock.acquire(timeout=5.0)  # a thread stuck mid-batch must not block interpreter exit
        try:
            self._stop_all(grace=1.0)
        finally:
            if locked:
                self._lock.release()


@atexit.register
def _close_all_pools() -> None:
    for pool in list(_POOLS):
        pool.close()


_DEFAULT_POOL: MathVerifyPool | None = None
_DEFAULT_LOCK = threading.Lock()


def get_pool() -> MathVerifyPool:
    """The process-wide pool that :func:`math_accuracy_reward` uses, created on first use."""
    global _DEFAULT_POOL
    with _DEFAULT_LOCK:
        if _DEFAULT_POOL is None:
            _DEFAULT_POOL = MathVerifyPool()
        return _DEFAULT_POOL


def gold_text(golds, i: int, *, numbers: bool = True) -> str | None:
    """Row ``i``'s gold as text, or None (no or short column, not text); a number counts as text if ``numbers``."""
    try:
        gold = golds[i]
    except Exception:  # no or short solution column
        return None
    if numbers and isinstance(gold, (int, float)) and not isinstance(gold, bool):
        return str(gold)
    return gold if isinstance(gold, str) else None


def score_against_gold(texts: list, golds, time_limit: float, *, pool: MathVerifyPool | None = None, scorer=None,
                       no_gold=None, numbers: bool = True) -> list:
    """Each completion scored against its row's gold in the math-verify pool (``scorer``, default ``score_math``):
    the scorer's value, ``no_gold`` where the row has no gold (``gold_text``), 0.0 for a completion without text."""
    results: list = [0.0] * len(texts)
    jobs, where = [], []
    for i, text in enumerate(texts):
        gold = gold_text(golds, i, numbers=numbers)
        if gold is None:
            results[i] = no_gold
        elif text is not None:
            jobs.append((text, gold))
            where.append(i)
    if jobs:
        for i, value in zip(where, (pool or get_pool()).score(jobs, time_limit, scorer=scorer)):
            results[i] = value
    return results


def make_math_accuracy_reward(time_limit: float = DEFAULT_TIME_LIMIT, pool: MathVerifyPool | None = None):
    """Build a math accuracy reward with its own per-item ``time_limit`` (seconds) and, optionally, pool."""
    if not time_limit > 0:
        raise ValueError(f"time_limit must be positive seconds, got {time_limit!r}")

    def math_accuracy_reward(completions, solution=None, **kwargs) -> list[float | None]:
        """1.0 if the completion's final answer (``\\boxed{}`` first) equals the gold ``solution``, else 0.0.

        ``solution`` is a full solution with ``\\boxed{}`` or a bare LaTeX answer; an unparseable or missing
        gold gives ``None`` (TRL skips it). An item over the hard time limit scores 0.0. Safe to call from
        any thread; extra keyword arguments are ignored.
        """
        return score_against_gold(completion_texts(completions), solution, time_limit, pool=pool)

    return math_accuracy_reward


math_accuracy_reward = make_math_accuracy_reward()

if os.environ.get(_WARM_ENV) == "1":  # imported by our forkserver (see _context): warm up once for all forks
    for _completion, _gold in _WARMUP:
        try:
            score_math(_completion, _gold)
        except Exception:
            pass
