"""Test hook: turns off trl's weight sync to vLLM in every process that has this folder on PYTHONPATH.

Python imports ``sitecustomize`` at start-up; this one waits for ``trl.generation.vllm_generation`` to be
imported and makes ``VLLMGeneration.sync_weights`` do nothing, so the colocated engine keeps generating with
the weights it loaded while the trainer's move on. test_colocate uses it to show that its in-step check fails on
such a run. Nothing in the package imports or ships it.
"""

import importlib.abc
import importlib.machinery
import sys

TARGET = "trl.generation.vllm_generation"


class _DisableSync(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run_module = spec.loader.exec_module

        def exec_module(module):
            run_module(module)
            module.VLLMGeneration.sync_weights = lambda self: None
            print("[test hook] trl weight sync to vLLM disabled", file=sys.stderr, flush=True)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _DisableSync())
