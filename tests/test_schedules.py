import itertools

import pytest
import torch

from gqn.schedules import (
    LinearAnneal,
    apply_learning_rate,
    learning_rate_schedule,
    pixel_sigma_schedule,
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
