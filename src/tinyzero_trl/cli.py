"""``tinyzero-trl``: train, evaluate, reproduce, verify, record, list, tiny-model, tiny-base.

Each subcommand is a thin shell over one module, so the command line and the Python API do the same thing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _add_launch_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--accelerate", metavar="NAME|PATH",
                   help="accelerate config: a packaged name (ddp, zero1, zero2, zero3, fsdp) or a file")
    p.add_argument("--num-processes", type=int, default=None, help="total processes across all machines")
    p.add_argument("--num-machines", type=int, default=1)
    p.add_argument("--machine-rank", type=int, default=0)
    p.add_argument("--main-process-ip", default=None)
    p.add_argument("--main-process-port", type=int, default=None)


def cmd_train(args) -> int:
    from tinyzero_trl import launch

    overrides = list(args.overrides) + (["fresh=true"] if args.fresh else [])
    plan = launch.LaunchPlan(overrides=overrides, accelerate=args.accelerate,
                             num_processes=args.num_processes or args.num_machines,
                             num_machines=args.num_machines, machine_rank=args.machine_rank,
                             main_process_ip=args.main_process_ip, main_process_port=args.main_process_port,
                             vllm_server_url=args.vllm_server_url)
    resolved = None
    if args.dry_run or args.vllm_gpus or args.vllm_server_only:  # the recipe names the model vLLM serves
        from tinyzero_trl.config import compose, validate

        resolved = compose(overrides)
        validate(resolved)
    if args.vllm_server_only:
        _, gpus = launch.split_gpus(0, args.vllm_gpus or 1, os.environ.get("CUDA_VISIBLE_DEVICES"))
        return launch.serve_only(launch.vllm_server_for(resolved, gpus, args.vllm_port))
    if args.vllm_gpus:
        launch.add_vllm_server(plan, resolved, args.vllm_gpus, args.vllm_port)
    if args.dry_run:
        from tinyzero_trl.scale import describe_plan

        print(describe_plan(plan, resolved))
        return 0
    return launch.run_plan(plan)


def cmd_evaluate(args) -> int:
    from tinyzero_trl.evaluate import evaluate

    data = {"source": args.data_source, "path": args.data_path, "template": args.template}
    result = evaluate(args.task, args.model_path, backend=args.backend, limit=args.limit,
                      num_samples=args.num_samples, temperature=args.temperature,
                      max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                      data_overrides=data, output=args.output)
    print(json.dumps({k: v for k, v in result.items() if k != "items"}, indent=2))
    return 0


def cmd_list(args) -> int:
    from tinyzero_trl.reproductions import Reproduction, list_reproductions

    for name in list_reproductions():
        repro = Reproduction.load(name)
        print(f"{name:22s} {repro.claim}\n{'':22s} hardware: {repro.hardware or 'not stated'}")
    return 0


def cmd_reproduce(args) -> int:
    from tinyzero_trl.reproductions import reproduce

    return reproduce(args.name, output_dir=args.output_dir, dry_run=args.dry_run, extra=args.overrides,
                     num_processes=args.num_processes)


def cmd_verify(args) -> int:
    from tinyzero_trl.reproductions import Reproduction, runs_root
    from tinyzero_trl.verify import UnusableRun, format_table, verify_run

    try:
        repro = Reproduction.load(args.name)
        run_dir = Path(args.run_dir) if args.run_dir else runs_root() / args.name
        verdict, table = verify_run(repro.folder / "expected.json", run_dir)
    except (UnusableRun, FileNotFoundError) as err:
        if args.json:
            print(json.dumps({"reproduction": args.name, "verdict": "UNUSABLE", "error": str(err)}))
        else:
            print(f"verify {args.name}: cannot judge the run: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"reproduction": args.name, "verdict": verdict, "run_dir": str(run_dir),
                          "checks": [r.__dict__ for r in table]}, indent=2))
    else:
        print(format_table(table))
        print(f"\n{args.name}: {verdict}   (report: {run_dir / 'verify.md'})")
    if verdict == "UNCHECKED":  # on stderr: --json output must stay one JSON document
        print("no check had a reference number to meet: reported only, not a pass", file=sys.stderr)
    return 1 if verdict == "FAIL" else 0


def cmd_record(args) -> int:
    from tinyzero_trl.record import record

    path = record(args.name, args.seeds, every=args.every, window=args.window)
    print(f"wrote {path}")
    return 0


def cmd_tiny_model(args) -> int:
    from tinyzero_trl.tiny_model import build_tiny_model

    print(build_tiny_model(args.arch, args.out))
    return 0


def cmd_tiny_base(args) -> int:
    """Rebuild a tiny base model (--task) and say whether it is bit-identical to the packaged one."""
    from tinyzero_trl.tiny_pretrain import base_module, compare_with_packaged

    module = base_module(args.task)
    same, lines = compare_with_packaged(module.build_tiny_base(args.out), module.PACKAGED_DIR)
    print("\n".join(lines))
    return 0 if same or not args.check else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinyzero-trl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="launch GRPO training with Hydra overrides (via accelerate)")
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

    p = sub.add_parser("evaluate", help="held-out accuracy of a saved model")
    p.add_argument("task", choices=["countdown", "math", "multimodal"])
    p.add_argument("--model_path", "--model-path", required=True)
    p.add_argument("--backend", choices=["auto", "vllm", "hf"], default="auto")
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N items")
    p.add_argument("--num-samples", "--num_samples", type=int, default=1, help="k for pass@k (sampling)")
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--max-new-tokens", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--data-source", choices=["hub", "local", "generate"], default=None)
    p.add_argument("--data-path", default=None)
    p.add_argument("--template", default=None)
    p.add_argument("--output", default=None, help="write the full result JSON here")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("list", help="list the reproductions")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("reproduce", help="run a reproduction end to end")
    p.add_argument("name")
    p.add_argument("--output-dir", default=None, help="run directory (default: $TINYZERO_RUNS/NAME or runs/NAME)")
    p.add_argument("--dry-run", action="store_true", help="print the launch plan; download nothing")
    p.add_argument("--num-processes", type=int, default=None)
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("verify", help="check a run against its reference curve")
    p.add_argument("name")
    p.add_argument("--run-dir", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("record", help="record a reference curve from several seeds of our own runs")
    p.add_argument("name")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--every", type=int, default=10, help="reference point every N steps")
    p.add_argument("--window", type=int, default=5, help="steps averaged into each point")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("tiny-model", help="write a random tiny model + tokenizer (or processor) for smoke tests")
    p.add_argument("--arch", default="qwen2", choices=["qwen2", "qwen2-vl"],
                   help="qwen2: text model; qwen2-vl: vision-language model with an image processor")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_tiny_model)

    p = sub.add_parser("tiny-base", help="rebuild a tiny base model offline and compare with the packaged one")
    p.add_argument("--task", choices=["countdown", "math"], default="countdown",
                   help="countdown: countdown-tiny's base (default); math: math-tiny's")
    p.add_argument("--out", required=True, help="directory for the rebuilt model")
    p.add_argument("--check", action="store_true", help="exit 1 unless the rebuild is bit-identical")
    p.set_defaults(func=cmd_tiny_base)
    return parser


def main(argv: list[str] | None = None) -> int:
    from tinyzero_trl.config import ConfigError
    from tinyzero_trl.data.sources import DataError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, DataError, FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"tinyzero-trl {args.command}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
