"""What a user relies on in a built image, each check a ``docker run`` the way the README shows it.

Every container runs with ``--network host`` (this machine's engine has no bridge), ``--rm``, and the runs
folder bind-mounted at /runs under a mapped uid: 1000:1000 when we are root (the folder is chowned to it), else
our own uid:gid, as docker/README.md tells users to do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2  # tinyzero-trl's exit codes (src/tinyzero_trl/errors.py)


def mapped_user() -> tuple[int, int]:
    """The uid:gid the containers run as."""
    return (1000, 1000) if os.geteuid() == 0 else (os.getuid(), os.getgid())


def run_command(image: str, args: list[str], runs: Path | None = None, user: tuple[int, int] | None = None,
                network: str = "host") -> list[str]:
    """The ``docker run`` command line for ``IMAGE ARGS`` (the entrypoint routes ARGS)."""
    uid, gid = user or mapped_user()
    command = ["docker", "run", "--rm", "--network", network, "--user", f"{uid}:{gid}"]
    if runs is not None:
        command += ["--volume", f"{runs}:/runs"]
    return command + [image, *args]


def host_subcommands(root: Path = ROOT) -> list[str] | None:
    """``tinyzero-trl --commands`` from the source tree (stdlib-only import), or None if it cannot run."""
    env = dict(os.environ, PYTHONPATH=str(root / "src"))
    try:
        out = subprocess.run([sys.executable, "-m", "tinyzero_trl.cli", "--commands"], capture_output=True,
                             text=True, env=env, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.split() if out.returncode == 0 else None


def owned_by_others(folder: Path, uid: int, gid: int) -> list[str]:
    """Paths under ``folder`` (itself included) not owned by uid:gid."""
    wrong = []
    for path in [folder, *folder.rglob("*")]:
        st = path.lstat()
        if (st.st_uid, st.st_gid) != (uid, gid):
            wrong.append(f"{path} ({st.st_uid}:{st.st_gid})")
    return wrong


class Runner:
    """Runs the checks against ``image``; ``results`` holds one {name, ok, detail} per check. ``network`` is
    every container's ``--network`` (``none`` cuts it off)."""

    network = "host"

    def __init__(self, image: str, runs: Path, log=print):
        self.image, self.runs, self.log = image, runs, log
        self.user = mapped_user()
        self.results: list[dict] = []
        self.timings: dict[str, float] = {}

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.results.append({"name": name, "ok": bool(ok), "detail": detail})
        self.log(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""))
        return ok

    def docker_run(self, args: list[str], stream: bool = False, timeout: float = 600) -> tuple[int, str]:
        command = run_command(self.image, args, self.runs, self.user, network=self.network)
        if not stream:
            out = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
            return out.returncode, out.stdout + out.stderr
        self.log("$ " + " ".join(command))
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
            lines = []
            for line in proc.stdout:
                print(line, end="", flush=True)
                lines.append(line)
            return proc.wait(timeout=timeout), "".join(lines)

    def fresh_runs(self) -> None:
        """An empty runs folder owned by the mapped uid (a user's ``mkdir -p runs``)."""
        shutil.rmtree(self.runs, ignore_errors=True)
        self.runs.mkdir(parents=True)
        os.chown(self.runs, *self.user)

    def quick_checks(self, host_commands: list[str] | None) -> None:
        """--help, list, --commands, every listed subcommand's --help, a plain command, a bad run's exit 2."""
        start = time.monotonic()
        self.fresh_runs()
        code, out = self.docker_run(["--help"])
        self.check("--help", code == EXIT_OK and "usage: tinyzero-trl" in out, f"exit {code}: {out[-300:]}")
        code, out = self.docker_run(["list"])
        self.check("list", code == EXIT_OK and "countdown-tiny" in out, f"exit {code}: {out[-300:]}")
        code, out = self.docker_run(["--commands"])
        names = out.split() if code == EXIT_OK else []
        self.check("--commands", bool(names), f"exit {code}: {out[-300:]}")
        if host_commands is not None:
            self.check("--commands matches the source tree's CLI", names == host_commands,
                       f"image {names}, source {host_commands}")
        for name in names:
            # Through the entrypoint: a name it failed to route would run as a plain command and exit 127.
            code, out = self.docker_run([name, "--help"])
            self.check(f"{name} --help", code == EXIT_OK and f"usage: tinyzero-trl {name}" in out,
                       f"exit {code}: {out[-300:]}")
        code, out = self.docker_run(["bash", "-c", "exit 7"])
        self.check("a plain command runs, its exit code reaches the host", code == 7, f"exit {code}: {out[-300:]}")
        code, out = self.docker_run(["verify", "countdown-tiny", "--run-dir", "/runs/no-such-run"])
        self.check("verify of a missing run exits 2 on the host", code == EXIT_BAD_INPUT, f"exit {code}: {out[-300:]}")
        self.timings["quick_checks"] = round(time.monotonic() - start, 1)

    def end_to_end(self, name: str) -> None:
        """reproduce NAME in one container, verify it in another (PASS, exit 0), a degraded copy (FAIL, exit 1),
        and the runs folder's ownership."""
        start = time.monotonic()
        code, out = self.docker_run(["reproduce", name], stream=True, timeout=3600)
        self.timings["reproduce"] = round(time.monotonic() - start, 1)
        if not self.check(f"reproduce {name} exits 0", code == EXIT_OK, f"exit {code}: {out[-500:]}"):
            return
        code, out = self.docker_run(["verify", name], stream=True)
        self.check(f"verify {name}: PASS, exit 0 on the host", code == EXIT_OK and f"{name}: PASS" in out,
                   f"exit {code}: {out[-500:]}")
        self._degraded(name)
        uid, gid = self.user
        wrong = owned_by_others(self.runs, uid, gid)
        count = sum(1 for _ in self.runs.rglob("*"))
        self.check(f"all {count} paths in the runs folder are owned by {uid}:{gid}", not wrong and count > 0,
                   f"{len(wrong)} not: {wrong[:5]}")
        self.timings["verify_and_checks"] = round(time.monotonic() - start - self.timings["reproduce"], 1)

    def _degraded(self, name: str) -> None:
        # The CI's own degradation (reward and accuracy cut to a third): verify must say FAIL, exit 1.
        sys.path.insert(0, str(ROOT / ".ci"))
        from verify_catches import copy_run, degrade

        copy = copy_run(self.runs / name, self.runs / f"{name}-degraded")
        degrade(copy)
        for path in [copy, *copy.rglob("*")]:
            os.chown(path, *self.user)
        code, out = self.docker_run(["verify", name, "--run-dir", f"/runs/{copy.name}"])
        self.check("verify of a degraded copy: FAIL, exit 1 on the host", code == EXIT_FAILED and "FAIL" in out,
                   f"exit {code}: {out[-500:]}")
        shutil.rmtree(copy)
