"""The README's install, resolved for every Python version the project promises, without installing anything.

    python .ci/resolve_install.py                 # every version pyproject.toml's classifiers promise
    python .ci/resolve_install.py 3.12 --sizes    # one version, with what its wheels weigh

For each version this asks pip what ``pip install -c constraints.txt -e ".[dev]"`` would install there
(``pip install --dry-run --ignore-installed --python-version X --only-binary=:all: --report``), against PyPI alone:
this machine's pip config, mirrors and local wheels are switched off, as on a new user's machine. A pin that
drops a promised version (a wheel that needs a newer Python, a conflict) fails here, before a user meets it.

Two things a plain ``pip install --dry-run --python-version X`` gets wrong, and what is done instead:

- pip evaluates environment markers (``numpy==2.3.5; python_version == "3.12"``) against the interpreter it runs
  on, not ``--python-version``: pip runs here with the target version's marker environment (as
  ``docker/cuda_stack.py`` does for the CUDA image).
- ``--only-binary=:all:`` (which ``--python-version`` demands) cannot take a package that publishes only an sdist;
  ``deepspeed`` and ``antlr4-python3-runtime`` (hydra's) do. Each is built here into a wheel once, and accepted only
  if that wheel is pure Python (``py3-none-any``): then it is exactly what pip builds on a user's machine on any
  version, and resolving with it is the same resolution.

Exit 0 when every version resolves; 1 with pip's account of the conflict otherwise. stdlib only.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docker"))

# The CUDA image's resolution (docker/cuda_stack.py) already has the marker shim and pip's output parsing.
from cuda_stack import clean_pip_env, conflict, pip_with_markers, sdist_only  # noqa: E402

INDEX = "https://pypi.org/simple"


def promised_versions(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The ``Programming Language :: Python :: 3.X`` classifiers of pyproject.toml: the versions promised."""
    return re.findall(r'"Programming Language :: Python :: (3\.\d+)"', pyproject.read_text(encoding="utf-8"))


def pip_as(version: str, *args: str) -> list[str]:
    """A pip command line on PyPI alone, with CPython ``version``'s environment markers."""
    markers = {"python_version": version, "python_full_version": f"{version}.0",
               "implementation_version": f"{version}.0"}
    return [sys.executable, "-c", pip_with_markers(markers), *args, "--index-url", INDEX]


def build_pure_wheel(name: str, wheels: Path, env: dict) -> str | None:
    """Build ``name`` at its constraints.txt pin into ``wheels``; a problem unless it is a pure-Python wheel."""
    before = set(wheels.glob("*.whl"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels),
                          "-c", str(ROOT / "constraints.txt"), name, "--index-url", INDEX],
                         env=env, capture_output=True, text=True)
    built = set(wheels.glob("*.whl")) - before
    if out.returncode != 0 or not built:
        return f"{name}: no usable wheel on PyPI, and its sdist did not build: {out.stderr.strip()[-300:]}"
    special = [w.name for w in built if not w.name.endswith("-none-any.whl")]
    return f"{name}: no wheel for this Python on PyPI, and its sdist builds a platform wheel {special}" if special \
        else None


def resolve(version: str, wheels: Path, env: dict | None = None) -> dict:
    """What the README's install resolves to on CPython ``version``: {"resolved": {name: version}, "report": ...}
    or {"problem": one line}."""
    env = env or clean_pip_env()
    wheels.mkdir(parents=True, exist_ok=True)
    built: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        for _attempt in range(6):
            out = subprocess.run(pip_as(version, "install", "--dry-run", "--ignore-installed", "--report",
                                        str(report), "--python-version", version, "--only-binary=:all:",
                                        "--find-links", str(wheels), "-c", str(ROOT / "constraints.txt"),
                                        "-e", f"{ROOT}[dev]"), cwd=ROOT, env=env, capture_output=True, text=True)
            missing = [n for n in sdist_only(out.stdout + out.stderr) if n not in built]
            if out.returncode == 0 or not missing:
                break
            for name in missing:  # a wheel may exist for other versions only: then building it says so
                problem = build_pure_wheel(name, wheels, env)
                if problem:
                    return {"python": version, "problem": problem}
                built.append(name)
        if out.returncode != 0:
            return {"python": version, "problem": f"pip cannot resolve the install for Python {version}: "
                                                  f"{conflict(out.stdout + out.stderr)}"}
        items = json.loads(report.read_text())["install"]
    resolved = {re.sub(r"[-_.]+", "-", i["metadata"]["name"]).lower(): i["metadata"]["version"] for i in items}
    urls = {re.sub(r"[-_.]+", "-", i["metadata"]["name"]).lower(): i["download_info"]["url"] for i in items}
    return {"python": version, "resolved": resolved, "urls": urls, "built_from_sdist": built}


def wheel_sizes(urls: dict[str, str]) -> dict[str, int]:
    """Bytes of each resolved wheel on PyPI (its simple index's JSON, one request per package)."""
    sizes = {}
    for name, url in urls.items():
        if not url.startswith("https://"):
            continue  # the project itself, or a wheel built here
        request = urllib.request.Request(f"{INDEX}/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            files = json.load(answer)["files"]
        sizes[name] = next((f.get("size", 0) for f in files if f["url"].split("#")[0] == url.split("#")[0]), 0)
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("versions", nargs="*", help="default: the versions pyproject.toml promises")
    parser.add_argument("--sizes", action="store_true", help="also sum the wheels' sizes (one request a package)")
    args = parser.parse_args(argv)
    failed = 0
    with tempfile.TemporaryDirectory() as wheels:
        for version in args.versions or promised_versions():
            result = resolve(version, Path(wheels))
            if "problem" in result:
                print(f"Python {version}: FAILS: {result['problem']}")
                failed += 1
                continue
            key = {k: result["resolved"].get(k) for k in ("torch", "transformers", "trl", "numpy")}
            line = f"Python {version}: resolves, {len(result['resolved'])} packages, {key}"
            if args.sizes:
                sizes = wheel_sizes(result["urls"])
                cuda = sum(v for k, v in sizes.items() if k.startswith(("nvidia-", "cuda-", "triton", "torch")))
                line += f"; wheels {sum(sizes.values()) / 1e9:.2f} GB, of which torch + CUDA {cuda / 1e9:.2f} GB"
            print(line + (f" (built from sdists: {', '.join(result['built_from_sdist'])})"
                          if result["built_from_sdist"] else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
