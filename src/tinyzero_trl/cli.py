"""``tinyzero-trl``: train, evaluate, reproduce, verify, health, fidelity, record, list, tiny-model, tiny-base.

Each subcommand is a thin shell over one module, so the command line and the Python API do the same thing. This
module imports nothing heavy at the top: ``--help`` and argument errors answer at once. Every subcommand ends a
failure with one line on stderr and an exit code (see ``errors``); ``--debug`` or ``TINYZERO_DEBUG=1`` shows the
traceback as well.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from tinyzero_trl.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_UNCHECKED,
    UserError,
    report,
)

DEBUG_ENV = "TINYZERO_DEBUG"


def _add_launch_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--accelerate", metavar="NAME|PATH",
                   help="accelerate config: a packaged name (ddp, zero1, zero2, zero3, fsdp) or a file")
    p.add_argument("--num-processes", type=int, default=None, help="total processes across all machines")
    p.add_argument("--num-machines", type=int, default=1)
    p.add_argument("--machine-rank", type=int, default=0)
    p.add_argument("--main-process-ip", default=None)
    p.add_argument("--main-process-port", type=int, default=None)


def _verbose(args) -> None:
    if args.verbose:  # every rank prints the full log dicts too (train.console reads it from the environment)
        os.environ["TINYZERO_VERBOSE"] = "1"


def cmd_train(args) -> int:
    from tinyzero_trl.launch.plan import prepare
    from tinyzero_trl.launch.run import run

    _verbose(args)

    overrides = list(args.overrides) + (["fresh=true"] if args.fresh else [])
    if args.vllm_server_only:
        from tinyzero_trl.config.compose import compose
        from tinyzero_trl.launch.plan import check_port
        from tinyzero_trl.launch.vllm_server import serve_only, split_gpus

        check_port(args.vllm_port, "--vllm-port")
        _, gpus = split_gpus(0, args.vllm_gpus or 1, os.environ.get("CUDA_VISIBLE_DEVICES"))
        return serve_only(compose(overrides), gpus, args.vllm_port)
    prepared = prepare(overrides, accelerate=args.accelerate, num_processes=args.num_processes,
                       num_machines=args.num_machines, machine_rank=args.machine_rank,
                       main_process_ip=args.main_process_ip, main_process_port=args.main_process_port,
                       vllm_gpus=args.vllm_gpus, vllm_port=args.vllm_port, vllm_server_url=args.vllm_server_url)
    if args.dry_run:
        print(prepared.text)
        return 0
    outcome = run(prepared, debug=args.debug)
    if outcome.code != 0:
        report("train", outcome.message or "training failed", code=outcome.code, every_rank=True)
    return outcome.code


# The data keys evaluate sets with a flag of its own. One table builds the overrides and names the flag in an error:
# the data layer, shared with train, names the key (data.path), which evaluate's user sets as --data-path.
EVALUATE_DATA_FLAGS = {"source": "--data-source", "path": "--data-path", "template": "--template"}
_DATA_KEY = re.compile(r"(?<![\w/.-])data\.(" + "|".join(EVALUATE_DATA_FLAGS) + r")\b")


def cmd_evaluate(args) -> int:
    from tinyzero_trl.evaluation.evaluate import evaluate

    data = {key: getattr(args, flag[2:].replace("-", "_")) for key, flag in EVALUATE_DATA_FLAGS.items()}
    try:
        result = evaluate(args.task, args.model_path, backend=args.backend, limit=args.limit,
                          num_samples=args.num_samples, temperature=args.temperature, top_p=args.top_p,
                          top_k=args.top_k, max_new_tokens=args.max_new_tokens, stop=args.stop,
                          stop_token_ids=args.stop_token_id, strip=args.strip, batch_size=args.batch_size,
                          data_overrides=data, scorer=args.scorer, revision=args.revision,
                          trust_remote_code=args.trust_remote_code, seed=args.seed, output=args.output)
    except UserError as err:
        err.args = (_DATA_KEY.sub(lambda m: EVALUATE_DATA_FLAGS[m[1]], str(err)),)
        raise
    print(json.dumps({k: v for k, v in result.items() if k != "items"}, indent=2))
    return 0


def cmd_list(args) -> int:
    from tinyzero_trl.reproduce.folders import Reproduction, list_reproductions

    for name in list_reproductions():
        repro = Reproduction.load(name)
        print(f"{name:22s} {repro.claim}\n{'':22s} hardware: {repro.hardware or 'not stated'}")
    return 0


def cmd_reproduce(args) -> int:
    from tinyzero_trl.reproduce.pipeline import reproduce

    _verbose(args)
    return reproduce(args.name, output_dir=args.output_dir, dry_run=args.dry_run, extra=args.overrides,
                     num_processes=args.num_processes, debug=args.debug, rehearse=args.rehearse)


def cmd_verify(args) -> int:
    from tinyzero_trl.reproduce.judge import judge
    from tinyzero_trl.verification.report import format_table

    try:
        judged = judge(args.name, args.run_dir, args.report_dir)
    except UserError as err:  # UnusableRun included
        if args.json:
            print(json.dumps({"reproduction": args.name, "verdict": "UNUSABLE", "error": str(err)}))
        report("verify", f"{args.name}: cannot judge the run: {err}")
        return EXIT_BAD_INPUT
    verdict, rehearsal = judged.verdict, judged.rehearsal is not None
    if args.json:
        print(json.dumps({"reproduction": args.name, "verdict": verdict, "rehearsal": rehearsal,
                          "run_dirs": [str(d) for d in judged.run_dirs], "checks": [r.__dict__ for r in judged.table]}, indent=2))
    else:  # a rehearsal says so in its first line
        print("\n".join(filter(None, [judged.heading, format_table(judged.table)])))
        print(f"\n{args.name}{' REHEARSAL' if rehearsal else ''}: {verdict}   (report: {judged.report_dir / 'verify.md'})")
    if verdict == "UNCHECKED":  # on stderr: --json output must stay one JSON document
        report("verify", f"{args.name}: " + ("a rehearsal is never a pass" if rehearsal else
                                              "no check had a reference number to meet: reported only, not a pass"))
        return EXIT_UNCHECKED
    return EXIT_FAILED if verdict == "FAIL" else 0


def cmd_health(args) -> int:
    from tinyzero_trl.verification.health import health

    return health(Path(args.run_dir), as_json=args.json)


def cmd_fidelity(args) -> int:
    from tinyzero_trl.reproduce.fidelity_readme import command

    return command(args)


def cmd_record(args) -> int:
    from tinyzero_trl.reproduce.record import record

    path = record(args.name, args.seeds, every=args.every, window=args.window)
    print(f"wrote {path}")
    return 0


def cmd_tiny_model(args) -> int:
    from tinyzero_trl.tiny.random_model import build_tiny_model

    print(build_tiny_model(args.arch, args.out, vllm=args.vllm))
    return 0


def cmd_tiny_base(args) -> int:
    """Rebuild a tiny base model (--task) and say whether it is bit-identical to the packaged one."""
    from tinyzero_trl.tiny.pretrain import base_module
    from tinyzero_trl.tiny.rebuild_check import compare_with_packaged

    module = base_module(args.task)
    same, lines = compare_with_packaged(module.build_tiny_base(args.out), module.PACKAGED_DIR)
    print("\n".join(lines))
    return 0 if same or not args.check else 1


def _reproduction_names() -> str:
    """The reproduction folders' names, for ``--help`` (a directory listing: nothing heavy is imported)."""
    from tinyzero_trl.reproduce.folders import list_reproductions

    return ", ".join(list_reproductions()) or "none found (set TINYZERO_REPRODUCTIONS=DIR)"


class _ListsReproductions(argparse.HelpFormatter):
    """Writes the folders' names into ``reproduce --help`` when it is printed: building the parser, which every
    command does, lists no folder."""

    def _get_help_string(self, action):
        text = super()._get_help_string(action)
        if text and "{reproductions}" in text:
            return text.replace("{reproductions}", _reproduction_names())
        return text


def _add_train(sub, common: argparse.ArgumentParser, training: argparse.ArgumentParser) -> None:
    """``train``: a launch of GRPO with Hydra overrides."""
    p = sub.add_parser("train", parents=[common, training], help="launch GRPO training with Hydra overrides (via accelerate)")
    _add_launch_args(p)
    p.add_argument("--fresh", action="store_true", help="set an existing run directory aside instead of resuming")
    p.add_argument("--dry-run", action="store_true", help="print the launch plan and exit")
    p.add_argument("--vllm-gpus", type=int, default=0, metavar="K",
                   help="vllm_mode=server: start `vllm serve` on the last K GPUs of this machine (tensor parallel "
                        "K), train on the first --num-processes, stop the server at the end")
    p.add_argument("--vllm-port", type=int, default=8000)
    p.add_argument("--vllm-server-url", default=None, metavar="URL",
                   help="a vLLM server started elsewhere, e.g. http://NODE:8000 (multi-node runs)")
    p.add_argument("--vllm-server-only", action="store_true",
                   help="run only the recipe's vLLM server here, in the foreground, on --vllm-gpus GPUs")
    p.add_argument("overrides", nargs="*", help="e.g. +countdown=grpo-qwen-2.5-3b-base model.name_or_path=DIR")
    p.set_defaults(func=cmd_train)


def _add_evaluate(sub, common: argparse.ArgumentParser) -> None:
    """``evaluate``: held-out accuracy of a saved model."""
    p = sub.add_parser("evaluate", parents=[common], help="held-out accuracy of a saved model")
    p.add_argument("task", help="countdown, math, multimodal (or a task registered by $TINYZERO_TASK_MODULES)")
    p.add_argument("--model_path", "--model-path", required=True)
    p.add_argument("--backend", choices=["auto", "vllm", "hf"], default="auto")
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N items")
    p.add_argument("--num-samples", "--num_samples", type=int, default=1, help="k for pass@k (sampling)")
    p.add_argument("--temperature", type=float, default=None, help="0 is greedy (the default for one sample)")
    p.add_argument("--top-p", "--top_p", type=float, default=1.0, help="nucleus sampling (1.0: off)")
    p.add_argument("--top-k", "--top_k", type=int, default=0, help="top-k sampling (0: off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-new-tokens", "--max_new_tokens", type=int, default=1024)
    p.add_argument("--stop", action="append", default=None, metavar="TEXT",
                   help="a string that ends a completion (repeatable), e.g. --stop $'\\nUser:' for base models; one "
                        "that is a special token of the tokenizer ends it as that token, on both backends")
    p.add_argument("--stop-token-id", type=int, action="append", default=None, metavar="ID",
                   help="a token id that ends a completion, as EOS does (repeatable)")
    p.add_argument("--strip", action="store_true",
                   help="score each completion without surrounding whitespace (oat-zero's evaluator)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--data-source", choices=["hub", "local", "generate"], default=None)
    p.add_argument("--data-path", default=None)
    p.add_argument("--template", default=None)
    p.add_argument("--scorer", default=None, metavar="REWARD",
                   help="the reward that scores answers (default: the accuracy reward behind the run's rewards)")
    p.add_argument("--revision", default=None, help="hub revision of the model (as model.revision in training)")
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--output", default=None, help="write the full result JSON here")
    p.set_defaults(func=cmd_evaluate)


def _add_reproduce_commands(sub, common: argparse.ArgumentParser, training: argparse.ArgumentParser) -> None:
    """The reproduction folders' commands: ``list``, ``reproduce``, ``verify``, ``health``, ``fidelity``, ``record``."""
    p = sub.add_parser("list", parents=[common], help="list the reproductions")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("reproduce", parents=[common, training], help="run a reproduction end to end",
                       formatter_class=_ListsReproductions,
                       description="Run a reproduction end to end: base evaluation, GRPO, final evaluation, "
                                   "summary.json and curves.png in the run directory.")
    p.add_argument("name", help="the reproduction: {reproductions} (`tinyzero-trl list` says what each claims and needs)")
    p.add_argument("--output-dir", default=None, help="run directory (default: $TINYZERO_RUNS/NAME or runs/NAME)")
    p.add_argument("--dry-run", action="store_true", help="print the launch plan; download nothing")
    p.add_argument("--num-processes", type=int, default=None)
    p.add_argument("--rehearse", action="store_true", help="a GPU reproduction's whole path on CPU: a random tiny "
                   "model of its architecture, mirrored data, minutes; every replacement listed; never a PASS")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="overrides on top of the pinned config, anywhere after NAME (e.g. seed=3)")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("verify", parents=[common], help="check a run against its reference curve")
    p.add_argument("name")
    p.add_argument("--run-dir", action="append", default=None, metavar="DIR",
                   help="the run to judge (default: $TINYZERO_RUNS/NAME); repeat it to judge several seeds together")
    p.add_argument("--report-dir", default=None, help="where verify.md and the plots go (default: the run "
                                                      "directory; for several runs $TINYZERO_RUNS/verify-NAME)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("health", parents=[common], help="judge a run, live or finished, by the health rules")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run directory (training.output_dir)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_health)

    p = sub.add_parser("fidelity", parents=[common],
                       help="a reproduction's settings, evaluation protocol and data draw beside its source's")
    p.add_argument("names", nargs="*", metavar="NAME", help="reproductions with a source.yaml")
    p.add_argument("--all", action="store_true", help="every reproduction with a source.yaml")
    p.add_argument("--write", action="store_true", help="write the table into each README (between its markers)")
    p.add_argument("--check", action="store_true", help="exit 1 unless each README holds the current table")
    p.set_defaults(func=cmd_fidelity)

    p = sub.add_parser("record", parents=[common], help="record a reference curve from several seeds of our own runs")
    p.add_argument("name")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--every", type=int, default=10, help="reference point every N steps")
    p.add_argument("--window", type=int, default=5, help="steps averaged into each point")
    p.set_defaults(func=cmd_record)


def _add_tiny_commands(sub, common: argparse.ArgumentParser) -> None:
    """The tiny models' commands: ``tiny-model``, ``tiny-base``."""
    p = sub.add_parser("tiny-model", parents=[common], help="write a random tiny model + tokenizer (or processor) for smoke tests")
    p.add_argument("--arch", default="qwen2", choices=["qwen2", "qwen2-vl"],
                   help="qwen2: text model; qwen2-vl: vision-language model with an image processor")
    p.add_argument("--vllm", action="store_true", help="a shape vLLM's CPU build can run (head size 32)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_tiny_model)

    p = sub.add_parser("tiny-base", parents=[common], help="rebuild a tiny base model offline and compare with the packaged one")
    p.add_argument("--task", choices=["countdown", "math", "clevr"], default="countdown",
                   help="countdown: countdown-tiny's base (default); math: math-tiny's; clevr: clevr-tiny's")
    p.add_argument("--out", required=True, help="directory for the rebuilt model")
    p.add_argument("--check", action="store_true", help="exit 1 unless the rebuild is bit-identical")
    p.set_defaults(func=cmd_tiny_base)


def build_parser() -> argparse.ArgumentParser:
    """The ``tinyzero-trl`` parser: the options every command shares, then each group of commands."""
    parser = argparse.ArgumentParser(prog="tinyzero-trl", description=__doc__.splitlines()[0].replace("``", ""),
                                     epilog="exit codes: 0 ok (verify: PASS; health: HEALTHY), 1 failed (FAIL; UNHEALTHY), 2 bad "
                                            "input or a run that cannot be judged, 3 UNCHECKED, 130/143 interrupted")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help=f"show tracebacks (also {DEBUG_ENV}=1)")
    training = argparse.ArgumentParser(add_help=False)  # what train and reproduce share
    training.add_argument("--verbose", action="store_true", help="print every logged metric of every step (they "
                                                                 "always go to metrics.jsonl), not one line a step")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub, common, training)
    _add_evaluate(sub, common)
    _add_reproduce_commands(sub, common, training)
    _add_tiny_commands(sub, common)
    return parser


OVERRIDE_COMMANDS = ("train", "reproduce")


def subcommands(parser: argparse.ArgumentParser | None = None) -> list[str]:
    """The subcommand names, from the parser itself (the Docker entrypoint asks with ``--commands``)."""
    parser = parser or build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; Hydra overrides (``key=value``, ``+key=value``, ``~key``) may come anywhere after the name."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest:
        overrides = [a for a in rest if not a.startswith("-") or "=" in a and not a.startswith("--")]
        unknown = [a for a in rest if a not in overrides]
        if args.command not in OVERRIDE_COMMANDS or unknown:
            parser.error(f"unrecognized arguments: {' '.join(unknown or rest)}")
        args.overrides = list(args.overrides) + overrides
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--commands"]:
        print("\n".join(subcommands()))
        return 0
    args = parse(argv)
    args.debug = bool(getattr(args, "debug", False)) or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        report(args.command, "interrupted (Ctrl-C)", every_rank=True)
        return EXIT_INTERRUPTED
    except UserError as err:
        if args.debug:
            raise
        report(args.command, str(err), every_rank=True)
        return err.exit_code
    except Exception as err:  # a bug, or a library failing in a way we did not foresee
        if args.debug:
            raise
        report(args.command, f"{type(err).__name__}: {err} (run again with --debug or {DEBUG_ENV}=1 for the "
                             "traceback)", every_rank=True)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
