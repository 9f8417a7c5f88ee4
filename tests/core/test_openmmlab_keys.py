"""OpenMMLab runtime keys: each one an OpenMMLab config brings is honoured or named in one warning, never dropped."""

import multiprocessing
import sys
from collections import Counter
from types import SimpleNamespace

import pytest
from conftest import REPO, TESTS, run_trainyard, tiny_cfg

from trainyard import ConfigError, load_config
from trainyard.config import flatten
from trainyard.environment import setup_backends
from trainyard.openmmlab_keys import OPENMMLAB_KEYS, config_warnings, ddp_arguments
from trainyard.runner import Runner

OPENMMLAB_CONFIG = TESTS / "configs" / "openmmlab_shaped.py"
WARNED = {
    "default_scope", "visualizer", "vis_backends", "log_processor", "experiment_name", "sync_bn",
    "find_unused_parameters", "env_cfg.resource_limit", "model_wrapper_cfg.detect_anomalous_params", "data_preprocessor",
}
TRAINYARD_READS = {"env_cfg.dist_cfg.backend", "model_wrapper_cfg.find_unused_parameters"}
"""Keys of the OpenMMLab config that are trainyard's own too (no table entry needed)."""


def warned_key(line: str) -> str:
    return line.split(" is not used by trainyard")[0]


def test_config_command_warns_once_for_each_openmmlab_key_it_does_not_use():
    result = run_trainyard("config", str(OPENMMLAB_CONFIG))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert all(line.startswith("trainyard config: warning: ") for line in lines), lines
    counted = Counter(warned_key(line.removeprefix("trainyard config: warning: ")) for line in lines)
    assert counted == Counter(WARNED)
    assert "default_scope = 'mmdet'" in result.stdout  # the resolved config still prints, on stdout alone


def test_no_key_of_an_openmmlab_config_is_silently_dropped():
    """Every key the OpenMMLab config adds to the tiny one is honoured (the table), read by trainyard, or warned about."""
    cfg = load_config(OPENMMLAB_CONFIG)
    base = flatten(load_config(TESTS / "configs" / "tiny.py").to_dict())
    added = {key for key, value in flatten(cfg.to_dict()).items() if key not in base or base[key] != value}
    honoured = {item.key for item in OPENMMLAB_KEYS if item.honoured}
    warned = {warned_key(line) for line in config_warnings(cfg)}
    assert warned == WARNED
    handled = honoured | warned | TRAINYARD_READS

    def covered(key: str) -> bool:
        parts = key.split(".")
        return any(".".join(parts[:n]) in handled for n in range(1, len(parts) + 1))

    assert sorted(key for key in added if not covered(key)) == []


def test_training_logs_each_openmmlab_warning_once(tmp_path):
    cfg = load_config(OPENMMLAB_CONFIG, ["train_cfg.max_epochs=1", "val_cfg=None", "val_dataloader=None", "default_hooks.checkpoint=None"])
    cfg.work_dir = str(tmp_path)
    start_method = multiprocessing.get_start_method(allow_none=True)
    try:
        runner = Runner.from_cfg(cfg)  # env_cfg.mp_cfg sets the start method, for the whole process
        runner.train()
    finally:
        multiprocessing.set_start_method(start_method, force=True)
    log = (runner.run_dir / f"{runner.run_dir.name}.log").read_text()
    warnings = [line.split(" - WARNING - ", 1)[1] for line in log.splitlines() if " - WARNING - " in line]
    assert Counter(warned_key(line) for line in warnings) == Counter(WARNED)


def test_allow_failed_imports_skips_a_module_that_cannot_be_imported_and_names_it(tmp_path):
    config = tmp_path / "cfg.py"
    config.write_text("custom_imports = dict(imports=['toy_components', 'no_such_module_abc'], allow_failed_imports=True)\n")
    cfg = load_config(config)
    assert config_warnings(cfg) == [
        "custom_imports: module 'no_such_module_abc' cannot be found on sys.path and is skipped (allow_failed_imports=True)"]
    config.write_text("custom_imports = dict(imports=['no_such_module_abc'], allow_failed_imports=False)\n")
    with pytest.raises(ConfigError, match="no_such_module_abc"):
        load_config(config)


def test_mp_cfg_sets_the_start_method_and_opencv_threads(monkeypatch):
    opencv_threads = []
    monkeypatch.setitem(sys.modules, "cv2", SimpleNamespace(setNumThreads=opencv_threads.append))
    before = multiprocessing.get_start_method(allow_none=True)
    try:
        setup_backends(dict(mp_cfg=dict(mp_start_method="spawn", opencv_num_threads=0)))
        assert multiprocessing.get_start_method(allow_none=True) == "spawn"
    finally:
        multiprocessing.set_start_method(before, force=True)
    assert opencv_threads == [0]
    with pytest.raises(ConfigError, match=r"mp_cfg has unknown keys \['start_method'\]"):
        setup_backends(dict(mp_cfg=dict(start_method="spawn")))


def test_model_wrapper_cfg_gives_ddp_only_what_it_takes(tmp_path):
    """MMEngine's wrapper name and its own options would make DistributedDataParallel raise a TypeError."""
    import torch
    import torch.distributed as torch_dist
    from torch import nn

    options = ddp_arguments(dict(type="MMDistributedDataParallel", detect_anomalous_params=True, find_unused_parameters=True, sync_bn=True))
    assert options == dict(find_unused_parameters=True, sync_bn=True)
    options.pop("sync_bn")
    torch_dist.init_process_group("gloo", store=torch_dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    try:
        wrapped = nn.parallel.DistributedDataParallel(nn.Linear(2, 1), **options)
        assert wrapped(torch.ones(1, 2)).shape == (1, 1)
    finally:
        torch_dist.destroy_process_group()


def test_another_model_wrapper_and_unknown_env_keys_are_named(tmp_path):
    cfg = tiny_cfg(tmp_path, model_wrapper_cfg=dict(type="MMFullyShardedDataParallel", bucket_size=4),
                   env_cfg=dict(dist_cfg=dict(backend="gloo", init_method="env://"), cudnn_benchmarks=True))
    assert config_warnings(cfg) == [
        "env_cfg.cudnn_benchmarks is not used by trainyard: env_cfg takes cudnn_benchmark, device, dist_cfg, mp_cfg, num_threads, timeout",
        "env_cfg.dist_cfg.init_method is not used by trainyard: dist_cfg takes backend (the collective timeout is env_cfg.timeout)",
        "model_wrapper_cfg.type='MMFullyShardedDataParallel' is not available in trainyard: with world size > 1 the model "
        "is wrapped in torch's DistributedDataParallel",
        "model_wrapper_cfg.bucket_size is not used by trainyard: DistributedDataParallel does not take it (trainyard adds sync_bn)",
    ]


def test_the_docs_table_shows_every_key_of_the_code_table():
    page = (REPO / "docs" / "config.md").read_text()
    assert [item.key for item in OPENMMLAB_KEYS if f"`{item.key}`" not in page] == []
