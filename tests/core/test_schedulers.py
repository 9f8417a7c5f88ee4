"""Learning-rate and momentum schedules: values at chosen points of training."""

import math

import pytest
import torch

from trainyard.schedulers import CosineAnnealingLR, CosineAnnealingMomentum, LinearLR, MultiStepLR, PolyLR, apply_schedules


def sgd(lr=1.0, momentum=0.9):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=momentum)


def lr_at(optimizer, schedulers, epoch=0, iteration=0, iters_per_epoch=10):
    apply_schedules(schedulers, epoch, iteration, iters_per_epoch)
    return optimizer.param_groups[0]["lr"]


def test_linear_warmup_then_cosine_by_iteration():
    optimizer = sgd(lr=0.1)
    schedulers = [
        LinearLR(optimizer, start_factor=0.01, by_epoch=False, begin=0, end=10),
        CosineAnnealingLR(optimizer, eta_min=0.0, by_epoch=False, begin=10, end=110),
    ]
    assert lr_at(optimizer, schedulers, iteration=0) == pytest.approx(0.001)
    assert lr_at(optimizer, schedulers, iteration=5) == pytest.approx(0.1 * (0.01 + 0.99 * 0.5))
    assert lr_at(optimizer, schedulers, iteration=10) == pytest.approx(0.1)
    assert lr_at(optimizer, schedulers, iteration=60) == pytest.approx(0.05)
    assert lr_at(optimizer, schedulers, iteration=85) == pytest.approx(0.1 * (1 + math.cos(math.pi * 0.75)) / 2)
    assert lr_at(optimizer, schedulers, iteration=500) == pytest.approx(0.0)


def test_linear_warmup_then_poly_by_iteration():
    optimizer = sgd(lr=0.01)
    schedulers = [
        LinearLR(optimizer, start_factor=0.1, by_epoch=False, begin=0, end=100),
        PolyLR(optimizer, power=0.9, eta_min=1e-4, by_epoch=False, begin=100, end=1100),
    ]
    assert lr_at(optimizer, schedulers, iteration=50) == pytest.approx(0.01 * 0.55)
    assert lr_at(optimizer, schedulers, iteration=600) == pytest.approx(1e-4 + (0.01 - 1e-4) * 0.5**0.9)
    assert lr_at(optimizer, schedulers, iteration=1100) == pytest.approx(1e-4)


def test_schedules_by_epoch_and_converted_to_iterations():
    optimizer = sgd(lr=1.0)
    by_epoch = [CosineAnnealingLR(optimizer, by_epoch=True, begin=0, end=4)]
    assert lr_at(optimizer, by_epoch, epoch=2, iteration=25) == pytest.approx(0.5)
    assert lr_at(optimizer, by_epoch, epoch=2, iteration=29) == pytest.approx(0.5)
    fractional = [CosineAnnealingLR(optimizer, by_epoch=True, begin=0, end=4, convert_to_iter_based=True)]
    assert lr_at(optimizer, fractional, epoch=2, iteration=25) == pytest.approx((1 + math.cos(math.pi * 2.5 / 4)) / 2)


def test_multistep_by_epoch():
    optimizer = sgd(lr=1.0)
    schedulers = [MultiStepLR(optimizer, milestones=[2, 4], gamma=0.1)]
    assert [lr_at(optimizer, schedulers, epoch=e) for e in range(6)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_momentum_schedule_also_drives_adam_betas():
    sgd_optimizer = sgd(momentum=0.9)
    apply_schedules([CosineAnnealingMomentum(sgd_optimizer, eta_min=0.5, by_epoch=False, begin=0, end=10)], 0, 10, 1)
    assert sgd_optimizer.param_groups[0]["momentum"] == pytest.approx(0.5)
    adam = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], betas=(0.9, 0.999))
    apply_schedules([CosineAnnealingMomentum(adam, eta_min=0.5, by_epoch=False, begin=0, end=10)], 0, 5, 1)
    assert adam.param_groups[0]["betas"] == pytest.approx((0.7, 0.999))


def test_value_depends_only_on_progress_not_on_call_history():
    optimizer = sgd(lr=0.1)
    schedulers = [LinearLR(optimizer, start_factor=0.1, by_epoch=False, begin=0, end=10)]
    for iteration in range(7):
        lr_at(optimizer, schedulers, iteration=iteration)
    fresh = sgd(lr=0.1)
    assert lr_at(fresh, [LinearLR(fresh, start_factor=0.1, by_epoch=False, begin=0, end=10)], iteration=6) == lr_at(optimizer, schedulers, iteration=6)


def test_window_must_be_ordered():
    with pytest.raises(ValueError, match="end .* must be greater than begin"):
        LinearLR(sgd(), begin=5, end=5)
