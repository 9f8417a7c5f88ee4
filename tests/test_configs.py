"""Every shipped experiment config resolves and names only registered components."""

from pathlib import Path

import pytest

from trainyard.config import load_config, validate_config

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p.relative_to(REPO) for p in (REPO / "configs").rglob("*.py") if "_base_" not in p.parts)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=str)
def test_config_resolves_and_every_type_is_registered(path):
    cfg = load_config(REPO / path)
    validate_config(cfg, mode="train", check_types=True)
    assert cfg.model and cfg.train_dataloader and cfg.val_evaluator


def test_every_task_has_configs():
    assert {p.parts[1] for p in EXPERIMENTS} == {"cls", "det", "seg", "migrated"}
