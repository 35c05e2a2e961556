"""A real two-node Slurm cluster on this one machine, for running docker/slurm/train.sbatch as a cluster runs it.

    python docker/slurm/cluster.py up   --state DIR [--nodes 2] [--no-docker] [--image-tar FILE ...]
    python docker/slurm/cluster.py down --state DIR
    python docker/slurm/cluster.py run  --state DIR [--image-tar FILE ...] -- COMMAND ...   # up, COMMAND, down

``up`` prints the ``SLURM_CONF=...`` to export; ``run`` exports it for COMMAND and always stands the cluster down.

What it is: Debian's ``slurm-wlm`` 22.05 daemons, each started here and stopped by its process id, with a
generated ``slurm.conf`` (and nothing under /etc touched):

- one ``munged`` (own key, socket, pid and log files under ``STATE/munge``) for the whole cluster;
- ``slurmctld`` in this machine's own network namespace, on a free port of an address this script adds;
- per node ``nodeN``: a network namespace of its own (``ip netns``) with its own address on a private /24
  (a bridge in one more namespace joins the nodes and this machine; a veth pair each), a mount and UTS
  namespace in which the node's hostname is ``nodeN`` and ``/etc/hosts`` (and ``/etc/resolv.conf``: no DNS)
  are this cluster's, and in it ``slurmd -N nodeN`` and, unless ``--no-docker``, a private ``dockerd``
  (``--bridge=none --iptables=false --ip6tables=false``, as docker/engine.py starts it), so that
  ``docker run --network host`` on a node puts the container on that node's network, as on real machines.
  A ``TaskProlog`` points each job task's ``docker`` at its node's daemon (``DOCKER_HOST``). A node's Docker
  data lives on a sparse ext4 image loop-mounted in that node's mount namespace, so ``down`` deletes one file
  instead of the loaded images' ~200,000 (minutes on a busy machine).

Why namespaces and not several slurmd on one address: Debian's build does allow that (``scontrol show config``
says ``MULTIPLE_SLURMD = Yes``), but then every node is this machine, all containers share one network and one
Docker daemon, and the script's own assumptions (one daemon per node, node names that resolve to the node's
address, ranks reaching rank 0 at that address) would go unchecked: a rank that wrongly talked to 127.0.0.1
would still work. With namespaces a node is a separate network host with its own daemon.

No iptables rule, route or sysctl of this machine is changed, no Docker network is created, and the only
addresses ever contacted are the ones made here. ``down`` cancels the cluster's jobs, stops every daemon
started here by its pid (checking the pid still runs that daemon), ends what those daemons left in the nodes'
namespaces, deletes the namespaces and the link, and removes the Docker data. Needs root, iproute2,
util-linux (nsenter, unshare) and the packages ``slurmctld slurmd slurm-client munge`` (+ ``docker.io``).
Stdlib only.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SLURM_PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
BINARIES = {"slurmctld": "slurmctld", "slurmd": "slurmd", "sbatch": "slurm-client", "munged": "munge",
            "ip": "iproute2", "nsenter": "util-linux", "unshare": "util-linux"}
CANDIDATE_NETS = [f"10.{a}.{b}.0/24" for a in (231, 232, 233) for b in range(1, 255)]
STOP_TIMEOUT = 60


def log(message: str) -> None:
    print(f"[slurm-cluster] {message}", flush=True)


def missing_tools(docker: bool = True) -> list[str]:
    """The packages whose commands are missing here (``docker.io`` too when ``docker``)."""
    need = dict(BINARIES, **({"dockerd": "docker.io"} if docker else {}))
    return sorted({pkg for cmd, pkg in need.items() if shutil.which(cmd) is None})


def install_packages(packages: list[str]) -> tuple[bool, str]:
    """``apt-get install`` the packages (root, Debian); (ok, last lines of the output)."""
    if not packages:
        return True, ""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False, "not root, or no apt-get"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    out = subprocess.run(["apt-get", "install", "-y", "-qq", *packages], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env)
        out = subprocess.run(["apt-get", "install", "-y", "-qq", *packages], capture_output=True, text=True, env=env)
    return out.returncode == 0, (out.stdout + out.stderr).strip()[-500:]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop_pid(pid: int, must_contain: str, name: str, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM ``pid`` if it still runs a command containing ``must_contain``, wait, then SIGKILL."""
    if not _alive(pid) or must_contain not in _cmdline(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    if _alive(pid):
        log(f"{name} (pid {pid}) did not stop within {timeout:.0f} s: SIGKILL")
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    log(f"stopped {name} (pid {pid})")


def _netns_inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def pids_in_netns(netns_path: str) -> list[int]:
    """Processes whose network namespace is the one bound at ``netns_path``."""
    inode = _netns_inode(netns_path)
    found = []
    if inode is None:
        return found
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(entry / "ns" / "net").st_ino == inode:
                    found.append(int(entry.name))
    return found


def _used_networks() -> list[ipaddress.IPv4Network]:
    nets = []
    for command in (["ip", "-4", "-o", "addr"], ["ip", "-4", "route", "show", "table", "all"]):
        out = subprocess.run(command, capture_output=True, text=True).stdout
        for word in out.split():
            with contextlib.suppress(ValueError):
                if "/" in word or word[0].isdigit():
                    nets.append(ipaddress.ip_network(word, strict=False))
    return nets


def free_network() -> ipaddress.IPv4Network:
    """A private /24 that no address or route of this machine overlaps."""
    used = _used_networks()
    for candidate in CANDIDATE_NETS:
        net = ipaddress.ip_network(candidate)
        if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
            return net
    raise RuntimeError("no free private /24 among " + ", ".join(CANDIDATE_NETS[:3]) + " ...")


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def sh(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, **kwargs)


class Cluster:
    """``with Cluster(state) as cluster:`` stands a cluster up and always down again (``cluster.env`` has the
    ``SLURM_CONF`` for sbatch/srun/squeue/scancel). Everything lives in ``state`` (``cluster.json`` records
    what was made, so ``Cluster(state).down()`` works from another process too)."""

    def __init__(self, state: Path, nodes: int = 2, docker: bool = True):
        self.state = Path(state).resolve()
        self.n = nodes
        self.docker = docker
        tag = hashlib.sha1(str(self.state).encode()).hexdigest()[:4]
        self.prefix = f"tzs{tag}"  # netns and link names; 15 characters at most with suffixes
        self.record_file = self.state / "cluster.json"
        self.record: dict = {}

    # ------------------------------------------------------------------ bookkeeping

    def _save(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.record_file.write_text(json.dumps(self.record, indent=2) + "\n")

    def _load(self) -> None:
        if self.record_file.is_file():
            self.record = json.loads(self.record_file.read_text())

    @property
    def conf(self) -> Path:
        return self.state / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """The environment for Slurm's client commands (and the jobs: sbatch exports it)."""
        env = dict(os.environ, SLURM_CONF=str(self.conf))
        env.pop("DOCKER_HOST", None)  # each job task gets its node's daemon from the TaskProlog
        return env

    def node_names(self) -> list[str]:
        return [f"node{i}" for i in range(1, self.n + 1)]

    def docker_host(self, node: str) -> str:
        return f"unix://{self.state / 'nodes' / node / 'docker.sock'}"

    def _start(self, key: str, command: list[str], logfile: Path, marker: str) -> int:
        """Start a daemon in the foreground of a new session; record its pid under ``key``."""
        logfile.parent.mkdir(parents=True, exist_ok=True)
        with open(logfile, "ab") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.record.setdefault("pids", {})[key] = {"pid": proc.pid, "marker": marker}
        self._save()
        return proc.pid

    def _in_node(self, node: str, command: list[str], loop_mount: tuple[Path, Path] | None = None) -> list[str]:
        """``command`` inside the node: its network namespace, a mount namespace with the cluster's /etc/hosts and
        resolv.conf (and ``loop_mount``'s filesystem image mounted, if given), and a UTS namespace whose hostname is
        the node's name. The last exec keeps the pid; the mounts end with the namespace's last process."""
        ns = self.record["netns"][node]
        files = self.state / "etc"
        script = ('mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && hostname "$3" '
                  '&& { [ -z "$4" ] || mount -o loop "$4" "$5"; } && shift 5 && exec "$@"')
        image, target = (str(loop_mount[0]), str(loop_mount[1])) if loop_mount else ("", "")
        return ["nsenter", f"--net=/run/netns/{ns}", "unshare", "--mount", "--uts", "--propagation", "slave",
                "sh", "-c", script, "sh", str(files / "hosts"), str(files / "resolv.conf"), node, image, target,
                *command]

    # ------------------------------------------------------------------ up

    def __enter__(self) -> Cluster:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    def up(self) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("a Slurm cluster in network namespaces needs root")
        missing = missing_tools(self.docker)
        if missing:
            raise RuntimeError(f"missing packages: {' '.join(missing)} (apt-get install -y {' '.join(missing)})")
        self._load()
        if self.record.get("pids"):
            raise RuntimeError(f"{self.state} already holds a cluster ({self.record_file}); `down` it first")
        self.state.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state, 0o755)
        closed = [str(p) for p in self.state.parents if not os.stat(p).st_mode & 0o001]
        if closed:  # munged refuses a socket below a folder others cannot traverse
            raise RuntimeError(f"munged needs every folder above its socket searchable by all: chmod o+x {closed[0]} "
                               "(or choose another --state)")
        t0 = time.monotonic()
        self.record = {"prefix": self.prefix, "nodes": self.node_names(), "netns": {}, "links": []}
        self._network()
        self._files()
        self._munge()
        self._slurmctld()
        for node in self.node_names():
            if self.docker:
                self._dockerd(node)
            self._slurmd(node)
        self._wait_nodes_idle()
        self.record["up_seconds"] = round(time.monotonic() - t0, 1)
        self._save()
        log(f"cluster up in {self.record['up_seconds']} s: {', '.join(self.node_names())} "
            f"({self.record['network']}), SLURM_CONF={self.conf}")

    def _network(self) -> None:
        net = free_network()
        hosts = list(net.hosts())
        self.record["network"] = str(net)
        self.record["controller_ip"] = str(hosts[0])
        self.record["node_ips"] = {node: str(hosts[9 + i]) for i, node in enumerate(self.node_names(), start=1)}
        switch = f"{self.prefix}-sw"
        host_link = f"{self.prefix}-h"
        self.record["netns"]["switch"] = switch
        self._save()
        sh("ip", "netns", "add", switch)
        sh("ip", "-n", switch, "link", "set", "lo", "up")
        sh("ip", "-n", switch, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", switch, "link", "set", "br0", "up")
        self.record["links"].append(host_link)
        self._save()
        sh("ip", "link", "add", host_link, "type", "veth", "peer", "name", "host", "netns", switch)
        sh("ip", "-n", switch, "link", "set", "host", "master", "br0", "up")
        sh("ip", "addr", "add", f"{self.record['controller_ip']}/{net.prefixlen}", "dev", host_link)
        sh("ip", "link", "set", host_link, "up")
        for i, node in enumerate(self.node_names(), start=1):
            ns = f"{self.prefix}-n{i}"
            self.record["netns"][node] = ns
            self._save()
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", switch, "link", "add", f"n{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", switch, "link", "set", f"n{i}", "master", "br0", "up")
            sh("ip", "-n", ns, "addr", "add", f"{self.record['node_ips'][node]}/{net.prefixlen}", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        log(f"network {net}: this machine {self.record['controller_ip']} (slurmctld), "
            + ", ".join(f"{n} {ip}" for n, ip in self.record["node_ips"].items()))

    def _files(self) -> None:
        etc = self.state / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        names = "\n".join(f"{ip} {node}" for node, ip in self.record["node_ips"].items())
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n::1 localhost\n{self.record['controller_ip']} "
                                   f"{socket.gethostname()}-ctl\n{names}\n")
        # No DNS inside the cluster: lookups go to the node's own loopback and fail at once.
        (etc / "resolv.conf").write_text("# the test cluster has no DNS; names are in /etc/hosts\n"
                                         "nameserver 127.0.0.1\n")
        prolog = self.state / "taskprolog.sh"
        prolog.write_text("#!/bin/sh\n# Each task's docker talks to its own node's daemon (one Docker engine per "
                          "node).\n"
                          f'echo "export DOCKER_HOST=unix://{self.state}/nodes/$SLURMD_NODENAME/docker.sock"\n')
        prolog.chmod(0o755)
        for sub in ("ctld", "munge", "nodes"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)

    def _munge(self) -> None:
        d = self.state / "munge"
        os.chmod(d, 0o755)  # munged wants its socket's folder executable for all and writable by its owner only
        key = d / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        socket_path = d / "munge.socket"
        self._start("munged", ["munged", "--foreground", f"--key-file={key}", f"--socket={socket_path}",
                               f"--pid-file={d / 'munged.pid'}", f"--log-file={d / 'munged.log'}",
                               f"--seed-file={d / 'munged.seed'}"], d / "munged.out", str(key))
        self._wait(lambda: socket_path.exists(), 30, "munged's socket", d / "munged.out")

    def _slurm_conf(self) -> str:
        s = self.state
        ctl = self.record["controller_ip"]
        cpus = os.cpu_count() or 1
        nodes = "\n".join(f"NodeName={node} NodeHostname={node} NodeAddr={ip} CPUs={cpus} State=UNKNOWN"
                          for node, ip in self.record["node_ips"].items())
        return f"""# Generated by docker/slurm/cluster.py for a test cluster in network namespaces; see its docstring.
ClusterName=tinyzero{self.prefix[3:]}
SlurmctldHost={socket.gethostname()}({ctl})
SlurmctldPort={self.record['ctld_port']}
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={s / 'munge' / 'munge.socket'}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={s / 'ctld'}
SlurmctldPidFile={s / 'ctld' / 'slurmctld.pid'}
SlurmctldLogFile={s / 'ctld' / 'slurmctld.log'}
SlurmdSpoolDir={s / 'nodes' / '%n' / 'spool'}
SlurmdPidFile={s / 'nodes' / '%n' / 'slurmd.pid'}
SlurmdLogFile={s / 'nodes' / '%n' / 'slurmd.log'}
# No cgroups: processes are tracked by their parent chain, tasks are not bound.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MailProg=/bin/true
# Slurm's defaults, stated: TERM, then KILL 30 s later (train.sbatch's docker stop -t 20 fits inside).
KillWait=30
# Finished jobs stay visible to scontrol for 10 minutes (their exit codes are read from there).
MinJobAge=600
TaskProlog={s / 'taskprolog.sh'}
{nodes}
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""

    def _slurmctld(self) -> None:
        self.record["ctld_port"] = free_port(self.record["controller_ip"])
        self.conf.write_text(self._slurm_conf())
        self._start("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)], self.state / "ctld" / "slurmctld.out",
                    str(self.conf))
        self._wait(lambda: sh("scontrol", "ping", check=False, env=self.env).stdout.count("UP") > 0, 60,
                   "slurmctld", self.state / "ctld" / "slurmctld.out")

    def _dockerd(self, node: str) -> None:
        d = self.state / "nodes" / node
        d.mkdir(parents=True, exist_ok=True)
        (d / "docker").mkdir(exist_ok=True)
        command = ["dockerd", "--bridge=none", "--iptables=false", "--ip6tables=false",
                   "--host", self.docker_host(node), "--data-root", str(d / "docker"),
                   "--exec-root", str(d / "docker-exec"), "--pidfile", str(d / "dockerd.pid")]
        self._start(f"dockerd-{node}", self._in_node(node, command, self._docker_filesystem(d)), d / "dockerd.log",
                    str(d / "docker"))
        env = dict(os.environ, DOCKER_HOST=self.docker_host(node))
        self._wait(lambda: sh("docker", "info", check=False, env=env, timeout=30).returncode == 0, 120,
                   f"dockerd on {node}", d / "dockerd.log")

    def _docker_filesystem(self, d: Path) -> tuple[Path, Path] | None:
        """A sparse ext4 image for the node's Docker data, mounted (loop) in the node's own mount namespace: a loaded
        image is some 200,000 files, which take minutes to delete one by one on a busy machine, and one file to
        delete as an image. None (a plain folder) where mkfs.ext4 is missing or the image cannot be made."""
        image = d / "docker.ext4"
        if shutil.which("mkfs.ext4") is None or shutil.which("losetup") is None:
            return None
        with open(image, "wb") as fh:
            fh.truncate(self.DOCKER_FS_BYTES)
        made = sh("mkfs.ext4", "-q", "-F", "-m", "0", str(image), check=False)
        if made.returncode != 0:
            image.unlink()
            return None
        return image, d / "docker"

    DOCKER_FS_BYTES = 64 * 2**30  # sparse: only what the images use takes disk space

    def _slurmd(self, node: str) -> None:
        d = self.state / "nodes" / node
        (d / "spool").mkdir(parents=True, exist_ok=True)
        self._start(f"slurmd-{node}", self._in_node(node, ["slurmd", "-D", "-N", node, "-f", str(self.conf)]),
                    d / "slurmd.out", str(self.conf))

    def _wait_nodes_idle(self, timeout: float = 90) -> None:
        def idle() -> bool:
            out = sh("sinfo", "-h", "-N", "-o", "%N %t", check=False, env=self.env).stdout.split("\n")
            states = dict(line.split() for line in out if line.strip())
            return all(states.get(node) == "idle" for node in self.node_names())

        self._wait(idle, timeout, "every node idle in sinfo", self.state / "ctld" / "slurmctld.log")

    def _wait(self, ready, timeout: float, what: str, logfile: Path) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [k for k, v in self.record.get("pids", {}).items() if not _alive(v["pid"])]
            if dead or time.monotonic() > deadline:
                tail = logfile.read_text(errors="replace").splitlines()[-8:] if logfile.is_file() else []
                why = f"{', '.join(dead)} exited" if dead else f"not ready after {timeout:.0f} s"
                raise RuntimeError(f"{what}: {why}; last lines of {logfile}:\n" + "\n".join(tail))
            time.sleep(0.5)

    # ------------------------------------------------------------------ using it

    def attach(self) -> None:
        """Use a cluster another process stood up in ``state`` (its daemons must still run)."""
        self._load()
        pids = self.record.get("pids", {})
        dead = [k for k, v in pids.items() if not _alive(v["pid"])]
        if not pids or dead:
            raise RuntimeError(f"{self.state}: no running cluster there" + (f" ({', '.join(dead)} gone)" if dead else ""))
        self.n = len(self.record["nodes"])

    def load_image(self, tar: Path) -> float:
        """``docker load`` the image archive on every node (in parallel); returns the seconds it took."""
        t0 = time.monotonic()
        procs = [subprocess.Popen(["docker", "load", "-q", "-i", str(tar)], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True,
                                  env=dict(os.environ, DOCKER_HOST=self.docker_host(node)))
                 for node in self.node_names()]
        for node, proc in zip(self.node_names(), procs):
            out, _ = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"docker load on {node} failed: {out.strip()[-500:]}")
        seconds = time.monotonic() - t0
        log(f"loaded {tar.name} on {len(procs)} node(s) in {seconds:.0f} s")
        return seconds

    def containers(self, node: str, all_states: bool = True) -> list[str]:
        """Names of the containers on ``node``'s daemon (``docker ps -a``)."""
        out = sh("docker", "ps", *(["-a"] if all_states else []), "--format", "{{.Names}}",
                 env=dict(os.environ, DOCKER_HOST=self.docker_host(node)))
        return out.stdout.split()

    def jobs(self) -> list[str]:
        out = sh("squeue", "-h", "-o", "%i", check=False, env=self.env)
        return out.stdout.split()

    # ------------------------------------------------------------------ down

    def down(self) -> None:
        """Stop everything ``up`` started (also after a partial ``up``); safe to call twice."""
        self._load()
        if not self.record:
            return
        pids = self.record.get("pids", {})
        if "slurmctld" in pids and _alive(pids["slurmctld"]["pid"]):
            self._cancel_jobs()
        order = ([k for k in pids if k.startswith("slurmd-")] + ["slurmctld"]
                 + [k for k in pids if k.startswith("dockerd-")] + ["munged"])
        for key in order:
            if key in pids:
                stop_pid(pids[key]["pid"], pids[key]["marker"], key)
        for name, ns in self.record.get("netns", {}).items():
            leftovers = pids_in_netns(f"/run/netns/{ns}")
            for pid in leftovers:  # slurmstepd or container processes our daemons left behind
                log(f"{name}: ending leftover process {pid}: {_cmdline(pid)[:120]}")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            sh("ip", "netns", "del", ns, check=False)
        for link in self.record.get("links", []):
            deadline = time.monotonic() + 10  # a deleted namespace takes its veth ends with it, not always at once
            while sh("ip", "link", "show", link, check=False).returncode == 0 and time.monotonic() < deadline:
                sh("ip", "link", "del", link, check=False)
                time.sleep(0.5)
        for node in self.record.get("nodes", []):
            d = self.state / "nodes" / node
            (d / "docker.ext4").unlink(missing_ok=True)  # its mount ended with the node's namespaces
            for sub in ("docker", "docker-exec"):
                shutil.rmtree(d / sub, ignore_errors=True)
        self.record = {"stopped": True, "was": {k: v for k, v in self.record.items() if k != "pids"}}
        self._save()
        self.record = {}
        log(f"cluster down; logs kept in {self.state}")

    def _cancel_jobs(self, timeout: float = 90) -> None:
        jobs = self.jobs()
        if not jobs:
            return
        log(f"cancelling job(s) {' '.join(jobs)}")
        sh("scancel", *jobs, check=False, env=self.env)
        deadline = time.monotonic() + timeout
        while self.jobs() and time.monotonic() < deadline:
            time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down", "run"])
    parser.add_argument("--state", type=Path, required=True, help="the cluster's folder (config, logs, pids)")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--no-docker", action="store_true", help="no Docker daemon on the nodes")
    parser.add_argument("--image-tar", type=Path, action="append", default=[],
                        help="a `docker save` archive to load on every node (repeatable)")
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    cluster = Cluster(args.state, nodes=args.nodes, docker=not args.no_docker)
    if args.action == "down":
        cluster.down()
        return 0
    if args.action == "up":
        try:
            cluster.up()
            for tar in args.image_tar:
                cluster.load_image(tar)
        except BaseException:
            cluster.down()
            raise
        print(f"export SLURM_CONF={cluster.conf}")
        return 0
    if not command:
        parser.error("run needs a command after --")
    with cluster:
        for tar in args.image_tar:
            cluster.load_image(tar)
        return subprocess.run(command, env=cluster.env).returncode


if __name__ == "__main__":
    sys.exit(main())
