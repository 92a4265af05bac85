import itertools

import pytest
import torch

from gqn.run_config import OptimConfig
from gqn.schedules import (
    LinearAnneal,
    PiecewiseConstant,
    apply_learning_rate,
    learning_rate_schedule,
    pixel_sigma_schedule,
    sigma_settings,
)


def test_paper_endpoints_exact():
    sigma, lr = pixel_sigma_schedule(), learning_rate_schedule()
    assert sigma.value_at(0) == 2.0 and sigma.value_at(200_000) == 0.7
    assert sigma.value_at(10**7) == 0.7
    assert lr.value_at(0) == 5e-4 and lr.value_at(1_600_000) == 5e-5
    assert lr.value_at(100_000) == pytest.approx(5e-5 + 4.5e-4 * (1 - 1 / 16))


@pytest.mark.parametrize("sched", [pixel_sigma_schedule(), learning_rate_schedule()])
def test_monotone_non_increasing(sched):
    values = [sched.value_at(t) for t in range(0, 2_000_000, 997)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert values[0] > values[-1]


def test_state_round_trip_continues():
    a = LinearAnneal(1.0, 0.0, 10)
    for _ in range(4):
        a.step_forward()
    b = LinearAnneal(5.0, 5.0, 1)
    b.load_state_dict(a.state_dict())
    assert b.value == a.value == pytest.approx(0.6)
    b.step_forward()
    assert b.value == pytest.approx(0.5)
    with pytest.raises(KeyError, match="step"):
        b.load_state_dict({"start": 1.0, "end": 0.0, "steps": 3})


def test_learning_rate_reaches_plain_adam():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=1.0)
    apply_learning_rate(opt, 5e-4)
    p.grad = torch.ones(1)
    opt.step()
    # Plain Adam's first step moves by exactly lr (bias corrections cancel).
    assert p.item() == pytest.approx(-5e-4, rel=1e-4)


def test_invalid_steps():
    with pytest.raises(ValueError, match="positive"):
        LinearAnneal(1.0, 0.0, 0)


def test_piecewise_constant_is_appendix_b_schedule_and_scales():
    paper = PiecewiseConstant([2.0, 0.2, 0.4, 0.9], [100_000, 50_000, 50_000])
    at = {0: 2.0, 99_999: 2.0, 100_000: 0.2, 149_999: 0.2, 150_000: 0.4, 200_000: 0.9}
    assert {t: paper.value_at(t) for t in at} == at
    assert paper.settle_step == 200_000 and paper.final == 0.9
    cpu = PiecewiseConstant([2.0, 0.2, 0.4, 0.9], [100_000, 50_000, 50_000], scale=0.01)
    assert [cpu.value_at(t) for t in (999, 1000, 1500, 2000)] == [2.0, 0.2, 0.4, 0.9]
    linear = LinearAnneal(2.0, 0.5, 100_000, scale=0.01)
    assert linear.value_at(500) == pytest.approx(1.25) and linear.settle_step == 1000


def test_piecewise_state_round_trips_and_bad_settings_are_refused():
    a = PiecewiseConstant([1.0, 0.5], [3], scale=2.0)
    for _ in range(5):
        a.step_forward()
    b = PiecewiseConstant([9.0], [])
    b.load_state_dict(a.state_dict())
    assert (b.value, b.step, b.settle_step) == (1.0, 5, 6)
    b.step_forward()
    assert b.value == 0.5
    assert sigma_settings(a.state_dict())["sigma_schedule"] == "piecewise"
    assert sigma_settings(LinearAnneal(1.0, 0.0, 10).state_dict())["sigma_steps"] == 10
    with pytest.raises(ValueError, match="one value more than durations"):
        PiecewiseConstant([1.0, 0.5], [3, 4])
    with pytest.raises(ValueError, match="scale must be positive"):
        LinearAnneal(1.0, 0.0, 10, scale=0)
    with pytest.raises(ValueError, match=r"optim\.sigma_"):
        OptimConfig(sigma_schedule="piecewise", sigma_values=[1.0], sigma_durations=[5])
