"""The documentation's code runs, and the contract it states holds (``docs/plugins.md``)."""

import importlib
import re
import subprocess
import sys

import pytest

import trainyard
from conftest import REPO, tiny_cfg, trainyard_env

PLUGINS_DOC = REPO / "docs" / "plugins.md"


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", PLUGINS_DOC.read_text(), flags=re.S | re.M)


def section(title: str) -> str:
    text = PLUGINS_DOC.read_text()
    start = text.index(title)
    return text[start:text.index("\n## ", start + 1)]


def test_every_python_block_of_the_plugins_page_runs_in_order(tmp_path):
    blocks = code_blocks("python")
    assert len(blocks) >= 7
    script = tmp_path / "plugins_md.py"
    script.write_text("\n\n".join(blocks))
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                            env=trainyard_env(), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_files_shown_are_what_new_plugin_writes(tmp_path):
    from trainyard.scaffold import generate

    generate("acme-signals", "blank", tmp_path / "acme-signals")
    assert code_blocks("toml") == [(tmp_path / "acme-signals" / "pyproject.toml").read_text()]
    assert code_blocks("python")[0] == (tmp_path / "acme-signals" / "acme_signals" / "plugin.py").read_text()


def test_public_names_in_the_docs_are_trainyards_public_names_and_import():
    text = section("## Public API")
    table = text[text.index("| group | names |"):text.index("Modules, for what")]
    documented = set(re.findall(r"`(\w+)`", table))
    assert documented == set(trainyard.__all__)
    for name in documented:
        assert getattr(trainyard, name) is not None


def test_public_module_names_in_the_docs_import():
    paragraph = section("Modules, for what the names above do not cover")
    for module_name, names in re.findall(r"`(trainyard\.\w+)`(?: \(([^)]*)\))?", paragraph):
        module = importlib.import_module(module_name)
        for name in re.findall(r"`(\w+)`", names):
            assert hasattr(module, name), f"{module_name}.{name}"


def documented_runner_attributes() -> list[str]:
    text = PLUGINS_DOC.read_text()
    start = text.index("What a hook may use on the runner:")
    return re.findall(r"`runner\.(\w+)", text[start:text.index("```python", start)])


def test_every_runner_attribute_the_docs_offer_hooks_exists_during_training(tmp_path):
    from trainyard import Hook, Runner

    attributes = documented_runner_attributes()
    assert {"model", "optimizer", "epoch", "iter", "work_dir", "logger", "rank", "world_size", "cfg"} <= set(attributes)
    seen = {}

    class Probe(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            for name in attributes:
                value = getattr(runner, name)
                seen[name] = value("train") if name == "dataloader" else value

    runner = Runner.from_cfg(tiny_cfg(tmp_path, "train_cfg.max_epochs=1", "val_cfg=None", "val_dataloader=None"))
    runner.register_hook(Probe())
    runner.train()
    assert sorted(seen) == sorted(set(attributes))
    assert seen["max_epochs"] == 1 and seen["iter"] == 6 and seen["dataloader"] is not None


@pytest.mark.parametrize("mode", ["loss", "predict", "tensor"])
def test_the_model_modes_table_names_each_mode_the_runner_uses(mode):
    assert f"| `'{mode}'` |" in section("### The model")
