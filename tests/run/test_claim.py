"""run.json written from two threads at once, as the trainer's heartbeat and its main thread do."""

import threading

from tinyzero_trl.run.status import read_status, update_status


def test_two_threads_updating_run_json_lose_nothing_and_never_fail(tmp_path):
    errors = []

    def writer(name):
        try:
            for i in range(300):
                update_status(tmp_path, **{f"{name}_{i}": i})
        except Exception as err:  # a lost race shows up as a failed os.replace of the shared temp file
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("heartbeat", "main")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    status = read_status(tmp_path)
    assert all(f"{name}_{i}" in status for name in ("heartbeat", "main") for i in range(300))


def test_read_yaml_names_the_file_and_the_problem(tmp_path):
    import pytest

    from tinyzero_trl.errors import UnusableRun
    from tinyzero_trl.run.files import read_yaml

    bad = tmp_path / "config.yaml"
    bad.write_text("rewards: [\n")
    with pytest.raises(UnusableRun, match=r"config.yaml: not valid YAML \(line 2, column 1: .*\); fresh=true"):
        read_yaml(bad, error=UnusableRun, fix="; fresh=true")
    with pytest.raises(UnusableRun, match=r"nope.yaml: cannot read it \(.*No such file"):
        read_yaml(tmp_path / "nope.yaml", error=UnusableRun)
    bad.write_text("- a list, not a mapping\n")
    assert read_yaml(bad) == {}
    bad.write_text("")
    assert read_yaml(bad) == {}


def test_open_run_claims_then_writes_the_config_once(tmp_path):
    """open_run: a fresh directory is claimed and its config written (fresh off); a reader only claims."""
    from tinyzero_trl.run.claim import CONFIG_FILE, open_run
    from tinyzero_trl.run.files import read_yaml

    resolved = {"training": {"max_steps": 2}, "fresh": True}
    assert open_run(tmp_path / "other", resolved, write=False) is None
    assert not (tmp_path / "other").exists()
    assert open_run(tmp_path / "run", resolved, fresh=True) is None
    assert read_yaml(tmp_path / "run" / CONFIG_FILE) == {"training": {"max_steps": 2}, "fresh": False}
