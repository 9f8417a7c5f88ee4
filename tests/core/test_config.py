"""Config loading, overrides, validation and explain, as a config author sees them."""

import re
import textwrap
from pathlib import Path

import pytest

from trainyard import ConfigError, load_config, validate_config
from trainyard.config import explain, parse_overrides


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def chain(tmp_path):
    """A three-level inheritance chain: runtime <- schedule+model <- experiment."""
    write(tmp_path / "_base_/runtime.py", """
        default_hooks = dict(logger=dict(type='LoggerHook', interval=50))
        work_dir = './work_dirs/base'
        log_level = 'INFO'
    """)
    write(tmp_path / "_base_/model.py", """
        _base_ = './runtime.py'
        num_classes = 3
        model = dict(type='ToyNet', channels=8, head=dict(num_classes=num_classes, dropout=0.1))
    """)
    write(tmp_path / "_base_/schedule.py", """
        optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
        train_cfg = dict(type='IterBasedTrainLoop', max_iters=100)
    """)
    return write(tmp_path / "exp/experiment.py", """
        _base_ = ['../_base_/model.py', '../_base_/schedule.py']
        model = dict(channels=16, head=dict(_delete_=True, num_classes=5))
        optim_wrapper = dict(optimizer=dict(lr={{_base_.optim_wrapper.optimizer.lr}}))
        max_lr = {{_base_.optim_wrapper.optimizer.lr}}
        work_dir = './work_dirs/exp'
    """)


def test_multi_level_inheritance_merges_dicts(chain):
    cfg = load_config(chain)
    assert cfg.model.type == "ToyNet" and cfg.model.channels == 16
    assert cfg.default_hooks.logger.interval == 50
    assert cfg.optim_wrapper.optimizer.momentum == 0.9
    assert cfg.work_dir == "./work_dirs/exp"


def test_delete_replaces_instead_of_merging(chain):
    assert load_config(chain).model.head.to_dict() == {"num_classes": 5}


def test_base_variable_reference(chain):
    assert load_config(chain).max_lr == 0.01


def test_overrides_nested_list_and_strings(chain):
    cfg = load_config(
        chain,
        ["optim_wrapper.optimizer.lr=0.5", "model.sizes=[1,2]", "name=a, b", "flag=true", "work_dir=runs/x y"],
    )
    assert cfg.optim_wrapper.optimizer.lr == 0.5
    assert cfg.model.sizes == [1, 2]
    assert cfg.name == "a, b"
    assert cfg.flag is True
    assert cfg.work_dir == "runs/x y"


def test_override_into_list_element(tmp_path):
    path = write(tmp_path / "c.py", "custom_hooks = [dict(type='A', x=1), dict(type='B', x=2)]\n")
    assert load_config(path, ["custom_hooks.1.x=5"]).custom_hooks[1].x == 5


def test_parse_overrides_rejects_item_without_equals():
    with pytest.raises(ConfigError, match="not of the form key=value"):
        parse_overrides(["lr0.1"])


@pytest.mark.parametrize("item, problem", [
    ("a=[1,", "an unclosed '['"), ("a=dict(x=1", "an unclosed '('"), ("a=1]", "an unmatched ']'"),
    ("a=[1, 2)", "an unmatched ')'"), ("a='abc", "an unterminated '-quoted string"),
])
def test_parse_overrides_rejects_an_unbalanced_bracket_or_quote_naming_the_item(item, problem):
    with pytest.raises(ConfigError, match=re.escape(f"--cfg-options item {item!r} has {problem}")):
        parse_overrides([item])


def test_parse_overrides_keeps_balanced_text_and_apostrophes_as_strings():
    assert parse_overrides(["name=bob's run", "a='[1,'", "b=x (copy)"]) == {"name": "bob's run", "a": "[1,", "b": "x (copy)"}


def test_typo_in_top_level_key_is_an_error_with_suggestion(chain, tmp_path):
    path = write(tmp_path / "typo.py", "_base_ = './exp/experiment.py'\ntrian_dataloader = dict(batch_size=2)\n")
    cfg = load_config(path)
    with pytest.raises(ConfigError, match="unknown top-level key 'trian_dataloader': did you mean 'train_dataloader'"):
        validate_config(cfg, check_types=False)


def test_config_variables_stay_allowed(chain):
    validate_config(load_config(chain, ["crop_size=(64,64)", "data_root=data/x", "train_pipeline=[]"]), check_types=False)


def test_missing_required_keys_are_named(chain):
    with pytest.raises(ConfigError, match="no 'train_dataloader', which 'train' needs"):
        validate_config(load_config(chain), mode="train", check_types=False)


def test_unknown_type_is_reported_with_its_key(tmp_path):
    path = write(tmp_path / "c.py", "default_hooks = dict(logger=dict(type='LogerHook'))\n")
    with pytest.raises(ConfigError, match="HOOKS: unknown type 'LogerHook' \\(config key 'default_hooks.logger'\\). Did you mean 'LoggerHook'"):
        validate_config(load_config(path))


def test_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.py", "model = dict(\n  type='X',,\n)\n")
    with pytest.raises(ConfigError, match=r"syntax error in config .*bad.py, line 2"):
        load_config(path)


def test_missing_file_and_missing_base(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.py")
    path = write(tmp_path / "c.py", "_base_ = './missing_base.py'\n")
    with pytest.raises(ConfigError, match="missing_base"):
        load_config(path)


def test_explain_names_the_file_that_set_each_key(chain):
    rows = {key: source for key, _, source in explain(chain, ["log_level=DEBUG"])}
    assert rows["model.type"].endswith("_base_/model.py")
    assert rows["model.channels"].endswith("exp/experiment.py")
    assert rows["default_hooks.logger.interval"].endswith("_base_/runtime.py")
    assert rows["optim_wrapper.optimizer.momentum"].endswith("_base_/schedule.py")
    assert rows["log_level"] == "--cfg-options"


def test_dump_and_reload_round_trip(chain, tmp_path):
    cfg = load_config(chain, ["model.sizes=[1,2]"])
    dumped = tmp_path / "dumped.py"
    cfg.dump(str(dumped))
    assert load_config(dumped).to_dict() == cfg.to_dict()


def test_custom_imports_of_a_missing_module_is_a_config_error(tmp_path):
    path = write(tmp_path / "c.py", "custom_imports = dict(imports=['no_such_module_abc'])\n")
    with pytest.raises(ConfigError, match="custom_imports names module 'no_such_module_abc'"):
        load_config(path)
