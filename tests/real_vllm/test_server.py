"""Server mode on CPU, as far as it goes: ``train --vllm-gpus 1`` starts ``vllm serve`` (the CPU build, through
vllm_server's shim), waits until it is healthy, and trl's own client generates from it; then trl refuses to
sync weights over NCCL without CUDA, and our CLI says so in one line, stops the server and exits: no hang.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request

from .conftest import env, free_port, kill_group

TIMEOUT = 480


def test_server_mode_runs_as_far_as_cpu_allows(vllm_model, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "train.log"
    args = [sys.executable, "-m", "tinyzero_trl.cli", "train", "--vllm-gpus", "1", "--vllm-port", str(port),
            "+countdown=grpo-qwen-2.5-3b-instruct", "+smoke=cpu", "data.source=generate",
            "data.test_split=null", "data.shuffle_seed=null",  # the hub split's draw; generated tasks have none
            f"model.name_or_path={vllm_model}", "training.use_vllm=true", f"training.output_dir={tmp_path / 'run'}"]
    generated: dict = {}
    # Imported before the launch: the client must be quick once the server is healthy, since the server is up
    # only until the trainer (a good 15 s of start-up behind it) reaches trl's refusal.
    from trl.generation.vllm_client import VLLMClient

    def client():  # trl's client, while the server is up
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        try:
            vllm = VLLMClient(base_url=url, connection_timeout=5)
            generated["info"] = vllm.get_server_info()
            generated["out"] = vllm.generate(["Using the numbers [1, 2, 3]"], n=2, max_tokens=8, temperature=1.0)
        except Exception as err:  # reported by the assertions below
            generated["error"] = repr(err)

    start = time.monotonic()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, env=env(), start_new_session=True)
        thread = threading.Thread(target=client, daemon=True)
        thread.start()
        try:
            proc.wait(timeout=TIMEOUT)
        finally:
            kill_group(proc)
    thread.join(timeout=30)
    text = log.read_text(errors="replace")
    print(f"server mode on CPU: {time.monotonic() - start:.0f} s from launch to exit")

    assert "error" not in generated, generated.get("error")
    assert generated["info"]["weight_transfer_config"] is not None  # our flags give trl what it checks for
    assert len(generated["out"]["completion_ids"]) == 2 and all(len(c) == 8 for c in generated["out"]["completion_ids"])
    assert proc.returncode == 2, text[-3000:]
    last = text.strip().splitlines()[-1]
    assert last.startswith("tinyzero-trl train: training.vllm_mode=server:") and "NCCL" in last, last
    assert f"vLLM server at {url} answered" in last
    assert "Traceback" not in text
    try:  # the server was stopped with the trainer
        urllib.request.urlopen(f"{url}/health", timeout=2)
        raise AssertionError(f"the vLLM server at {url} is still up")
    except OSError:
        pass
