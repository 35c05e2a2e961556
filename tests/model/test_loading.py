"""model.loading.check_model: a model name that is neither a directory nor a hub id is one ConfigError naming the
field, never huggingface_hub's validation traceback (exit 1)."""

import pytest

from tinyzero_trl.errors import ConfigError
from tinyzero_trl.model.loading import check_model


@pytest.mark.parametrize("name", ["runs/nonexist/checkpoint-5", "a/b/c", "my model"])
def test_a_path_that_is_not_there_and_not_a_hub_id_is_one_config_error(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative to an empty directory: nothing of that name exists
    with pytest.raises(ConfigError) as caught:
        check_model(name, key="model_path")
    message = str(caught.value)
    assert message.startswith(f"model_path={name}: no such model directory, and not a hub id")
    assert "config.json" in message and "\n" not in message
