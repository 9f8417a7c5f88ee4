"""The documentation's code runs, and the contract it states holds.

Every ```` ```python ```` block of every page under ``docs/`` is tested. Write new
examples to fit one of these three kinds:

- A plain block runs. A page's plain blocks run in order as one script, in a fresh
  process, in an empty folder, so a block may use what an earlier one defined. What
  a page takes as given (a trained run in ``work_dirs/unet``, ``street.jpg``,
  ``pil_image``) is set up by ``GIVEN``, with tiny runs and images.
- A block right after the line ``<!-- docs-test: config -->`` is a config file or a
  part of one. When its first line is a comment naming a file (``# configs/seg/x.py``)
  it is written there, beside a copy of the repository's ``configs/``; otherwise it is
  put on top of the tiny test config. It must load and pass ``validate_config`` as
  ``trainyard train`` would check it. When that first line is the name alone and the
  repository ships that file, the rest of the block is the file, word for word
  (``# configs/seg/x.py, shortened`` shows a part).
- A block right after ``<!-- docs-test: skip: WHY -->`` does not run; WHY names what it
  needs that no test has (a dataset, a file that a shell command shown above makes).
  Keep these few.
"""

import importlib
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import trainyard
from conftest import REPO, TINY_CONFIG, tiny_cfg, trainyard_env, write_images

DOCS = REPO / "docs"
PLUGINS_DOC = DOCS / "plugins.md"
_BLOCK = re.compile(r"(?:^<!-- docs-test: (?P<marker>[^\n]*?) -->\n)?^```python\n(?P<code>.*?)^```", flags=re.S | re.M)
_CONFIG_FILE_COMMENT = re.compile(r"# ([\w./-]+\.py)\b")


@dataclass
class Example:
    """One ```` ```python ```` block of a page."""

    page: Path
    line: int
    """The line of the page where the code starts."""
    code: str
    marker: str
    """``''`` (runs), ``'config'`` or ``'skip: WHY'``."""

    def __str__(self) -> str:
        return f"{self.page.relative_to(DOCS)}:{self.line}"

    def as_of_its_page(self) -> str:
        """The code, moved down to its line of the page, so that a traceback points into the page."""
        return "\n" * (self.line - 1) + self.code


def examples(page: Path) -> list[Example]:
    text = page.read_text()
    return [Example(page, text.count("\n", 0, match.start("code")) + 1, match["code"], match["marker"] or "")
            for match in _BLOCK.finditer(text)]


PAGES = sorted(page for page in DOCS.rglob("*.md") if examples(page))
ALL_EXAMPLES = [example for page in PAGES for example in examples(page)]


def write_inference_given(folder: Path, quick_run) -> str:
    """inference.md's runs (tiny ones, trained once per session), its images, and the names it uses for images."""
    (folder / "work_dirs").mkdir()
    for name, task in (("unet", "seg"), ("resnet18_imagefolder", "cls"), ("faster_rcnn_small_generated", "det")):
        (folder / "work_dirs" / name).symlink_to(quick_run(task))
    write_images(folder / "scans")
    write_images(folder / "photos")
    shutil.copy(folder / "scans" / "small.jpg", folder / "street.jpg")
    return (
        "import numpy as np, torch\nfrom PIL import Image\n"
        "pil_image = Image.open('street.jpg')\nnumpy_array = np.array(pil_image)\n"
        "tensor = torch.from_numpy(numpy_array).permute(2, 0, 1)\nimage_uint8_chw = tensor\n"
    )


GIVEN = {"inference.md": write_inference_given}
"""``{page: write(folder, quick_run) -> code}``: files the page's examples expect in their folder, and code run before them."""


@pytest.mark.parametrize("page", [page for page in PAGES if any(not e.marker for e in examples(page))], ids=lambda page: page.name)
def test_the_plain_python_blocks_of_each_page_run_in_order(page, tmp_path, quick_run):
    given = GIVEN[page.name](tmp_path, quick_run) if page.name in GIVEN else ""
    runnable = [(str(e.page), e.as_of_its_page()) for e in examples(page) if not e.marker]
    script = tmp_path / f"{page.stem}_md.py"
    script.write_text(f"for _file, _code in {[('<given by tests/test_docs.py>', given), *runnable]!r}:\n"
                      "    exec(compile(_code, _file, 'exec'), globals())\n")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                            env=trainyard_env(), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("example", [e for e in ALL_EXAMPLES if e.marker == "config"], ids=str)
def test_each_config_block_loads_and_passes_the_checks_of_trainyard_train(example, tmp_path):
    from trainyard.config import load_config, validate_config

    shutil.copytree(REPO / "configs", tmp_path / "configs")
    named = _CONFIG_FILE_COMMENT.match(example.code)
    path = tmp_path / (named.group(1) if named else "fragment.py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(example.code if named else f"_base_ = [{str(TINY_CONFIG)!r}]\n{example.code}")
    validate_config(load_config(path), mode="train")


def test_every_marker_is_known_and_the_pages_with_examples_are_found():
    assert {"checkpoints.md", "config.md", "experiments.md", "hooks.md", "inference.md", "plugins.md"} <= {p.name for p in PAGES}
    for example in ALL_EXAMPLES:
        assert example.marker in ("", "config") or re.fullmatch(r"skip: \S.*", example.marker), f"{example}: unknown marker {example.marker!r}"
    for page in PAGES:
        markers = page.read_text().count("<!-- docs-test:")
        assert markers == sum(1 for e in examples(page) if e.marker), f"{page.name}: a docs-test marker not right before a ```python line"


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", PLUGINS_DOC.read_text(), flags=re.S | re.M)


def section(title: str) -> str:
    text = PLUGINS_DOC.read_text()
    start = text.index(title)
    return text[start:text.index("\n## ", start + 1)]


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


def test_a_config_block_named_after_a_shipped_file_shows_that_file():
    shown = 0
    for example in ALL_EXAMPLES:
        first_line, _, rest = example.code.partition("\n")
        named = re.fullmatch(r"# ([\w./-]+\.py)", first_line)
        if example.marker == "config" and named and (REPO / named.group(1)).is_file():
            assert rest == (REPO / named.group(1)).read_text(), f"{example}: differs from {named.group(1)}"
            shown += 1
    assert shown >= 2
