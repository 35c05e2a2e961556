"""The module path of one ``reproduce``, from a call trace: which of the package's modules it passes, in order.

    python benchmarks/trace_reproduce.py math-tiny --out /tmp/trace.json

Runs ``tinyzero-trl reproduce NAME`` with a ``sys.setprofile`` hook in the orchestrating process and in every
training process (through a ``sitecustomize`` on ``PYTHONPATH``; nothing of the package is changed). At each
moment the *current module* is the package module of the innermost package frame on the stack; the sequence is
every change of it. Calls that a library makes back into the package (TRL calling a reward function or a
trainer callback, datasets calling a map function) are callbacks, not the package's own path: they and what they
call are counted apart and left out of the sequence.

Two figures are read from the sequence, leaf helpers set aside (modules that call no other package module
during the run, such as the error types; they are listed on their own):

- modules passed: the distinct non-leaf modules in the sequence;
- returns: the times the sequence comes back to a non-leaf module it had left, not counting the return of a
  call to the module that made it (a function returning to its caller is not a return to a module "left").

Both are given twice: over modules, and over packages (the layers: ``launch``, ``config``, ``evaluation``...; each
module of a package counted as the package, the top-level ``cli`` and ``grpo`` as themselves), the granularity at
which the issue's first count was made, when each layer was about one module.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

PACKAGE_DIR = str(Path(__file__).resolve().parents[1] / "src" / "tinyzero_trl")

HOOK = textwrap.dedent('''
    import atexit, json, os, sys, threading
    _DIR = {pkg!r}
    _events = []  # (kind, module): kind "call" (entered by a call) or "return" (back to the caller's module)

    def _module(code):
        path = code.co_filename
        if not path.startswith(_DIR):
            return None
        rel = path[len(_DIR) + 1:-3].replace(os.sep, ".")
        return "tinyzero_trl." + rel.removesuffix(".__init__").removesuffix("__init__").rstrip(".")

    _stack = []  # one entry per frame we track: module name or None (not ours)
    _callback_depth = [0]

    def _profile(frame, event, arg):
        if event == "call":
            mod = _module(frame.f_code)
            caller = _module(frame.f_back.f_code) if frame.f_back is not None else None
            ours_below = any(m for m in _stack if m)
            if _callback_depth[0] or (mod and ours_below and caller is None):
                _callback_depth[0] += 1  # a library calling back into the package: not the package's path
                _stack.append("@callback")
                return
            current = next((m for m in reversed(_stack) if m), None)
            _stack.append(mod)
            if mod and mod != current:
                _events.append(("call", mod, frame.f_code.co_qualname))
        elif event == "return" and _stack:
            top = _stack.pop()
            if top == "@callback":
                _callback_depth[0] -= 1
                if _callback_depth[0] == 0:
                    _events.append(("callback", None))
                return
            current = next((m for m in reversed(_stack) if m), None)
            if top and current and top != current:
                _events.append(("return", current))

    def _dump():
        sys.setprofile(None)
        out = os.path.join(os.environ["TINYZERO_TRACE_DIR"], f"{{os.getpid()}}.json")
        with open(out, "w") as fh:
            json.dump({{"argv": sys.argv, "events": _events}}, fh)

    if os.environ.get("TINYZERO_TRACE_DIR"):
        atexit.register(_dump)
        sys.setprofile(_profile)
''')


def collapse_loops(seq: list, longest: int = 16, times: int = 3) -> list:
    """``seq`` with a run of up to ``longest`` items that repeats ``times`` times or more in a row kept once: a loop
    over items (scoring 200 completions) is one pass. A pair of repeats is kept: doing a thing twice is a path."""
    seq = list(seq)
    changed = True
    while changed:
        changed = False
        for size in range(1, longest + 1):
            i = 0
            while i + times * size <= len(seq):
                block = seq[i:i + size]
                k = 1
                while seq[i + k * size:i + (k + 1) * size] == block:
                    k += 1
                if k >= times:
                    del seq[i + size:i + k * size]
                    changed = True
                i += 1
    return seq


def summarize(events: list) -> dict:
    """Modules passed, returns to a module left (and the function each return entered), the sequence and the leaf
    helpers, from one process's events."""
    calls_out: dict[str, set] = {}
    stack: list[str] = []
    for kind, mod, *_ in events:
        if kind == "call":
            if stack:
                calls_out.setdefault(stack[-1], set()).add(mod)
            stack.append(mod)
        elif kind == "return":
            while stack and stack[-1] != mod:
                stack.pop()
    steps = [(kind, mod, fn[0] if fn else "") for kind, mod, *fn in events if kind in ("call", "return")]
    leaves = sorted({m for _, m, _ in steps if not calls_out.get(m, set()) - {m}})
    path: list[tuple[str, str, str]] = []
    for kind, mod, fn in steps:
        if mod in leaves or (path and path[-1][1] == mod):
            continue
        path.append((kind, mod, fn))
    path = collapse_loops(path)
    returns, seen, reentries = 0, set(), []
    for kind, mod, fn in path:
        if kind == "call" and mod in seen:
            returns += 1
            reentries.append(f"{mod.removeprefix('tinyzero_trl.')}.{fn}")
        seen.add(mod)
    callbacks = sum(1 for kind, *_ in events if kind == "callback")
    return {"modules_passed": len(seen), "returns": returns, "leaf_helpers": [m.removeprefix("tinyzero_trl.")
                                                                             for m in leaves],
            "library_callbacks": callbacks, "reentries": reentries,
            "sequence": [("" if kind == "call" else "<") + m.removeprefix("tinyzero_trl.") for kind, m, _ in path]}


def by_package(events: list) -> list:
    """``events`` with each module named by its package (``tinyzero_trl.launch.plan`` -> ``tinyzero_trl.launch``)."""
    return [[kind, ".".join(mod.split(".")[:2]) if mod else mod, *rest] for kind, mod, *rest in events]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the reproduction, e.g. math-tiny")
    parser.add_argument("--out", default=None, help="write the summary JSON here")
    parser.add_argument("extra", nargs="*", help="more reproduce arguments")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tinyzero-trace-") as tmp:
        hook_dir, trace_dir, run_dir = Path(tmp) / "hook", Path(tmp) / "trace", Path(tmp) / "run"
        hook_dir.mkdir()
        trace_dir.mkdir()
        (hook_dir / "sitecustomize.py").write_text(HOOK.format(pkg=PACKAGE_DIR))
        env = {**os.environ, "TINYZERO_TRACE_DIR": str(trace_dir),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(hook_dir), os.environ.get("PYTHONPATH")]))}
        cmd = [sys.executable, "-m", "tinyzero_trl.cli", "reproduce", args.name, "--output-dir", str(run_dir),
               *args.extra]
        code = subprocess.call(cmd, env=env)
        processes = []
        for path in sorted(trace_dir.glob("*.json")):
            data = json.loads(path.read_text())
            summary = summarize(data["events"])
            if summary["sequence"]:
                processes.append({"argv": data["argv"][:3], **summary, "packages": summarize(by_package(data["events"])),
                                  "events": data["events"]})
    result = {"reproduction": args.name, "exit_code": code, "processes": processes}
    for proc in processes:
        print(f"\n{' '.join(map(str, proc['argv']))}\n  modules passed {proc['modules_passed']}, returns "
              f"{proc['returns']}, leaf helpers {proc['leaf_helpers']}, library callbacks {proc['library_callbacks']}"
              f"\n  " + " -> ".join(proc["sequence"]) + "\n  returns enter: " + ", ".join(proc["reentries"]))
        pkg = proc["packages"]
        print(f"  by package: passed {pkg['modules_passed']}, returns {pkg['returns']}, leaf packages "
              f"{pkg['leaf_helpers']}\n  " + " -> ".join(pkg["sequence"]) + "\n  returns enter: "
              + ", ".join(pkg["reentries"]))
    if args.out:
        Path(args.out).write_text(json.dumps(result) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
