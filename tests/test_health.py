"""Health monitor: bad-step counting, KL collapse/blow-up warnings, blank prior samples."""

from __future__ import annotations

import pytest
import torch

from gqn.run_config import HealthConfig
from gqn.train.health import HealthMonitor, TooManyBadSteps


def test_bad_steps_in_a_row_stop_the_run_and_a_good_step_resets():
    h = HealthMonitor(HealthConfig(max_bad_steps=3))
    h.record_step(1, False)
    h.record_step(2, False)
    h.record_step(3, True)
    h.record_step(4, False)
    h.record_step(5, False)
    with pytest.raises(TooManyBadSteps, match="3 consecutive steps"):
        h.record_step(6, False, float("nan"), float("inf"))
    assert h.bad_total == 5


def test_kl_collapse_and_growth_warn_after_a_window():
    h = HealthMonitor(HealthConfig(window=3, warmup_steps=10, kl_collapse_nats=0.01))
    assert h.observe_kl(5, 0.0) is None  # warm-up
    assert [h.observe_kl(s, 0.001) for s in (10, 11)] == [None, None]
    message = h.observe_kl(12, 0.001)
    assert "collapsed" in message and "anneal" not in message  # no anneal: a plain failure
    # during the sigma anneal the same warning says that a collapse is expected there
    h = HealthMonitor(HealthConfig(window=2, warmup_steps=0, kl_collapse_nats=0.01), growth_start=9)
    assert h.observe_kl(1, 0.001) is None
    assert "expected now" in h.observe_kl(2, 0.001)
    assert [h.observe_kl(s, 1.0) for s in (3, 4)] == [None, None]
    assert h.observe_kl(9, 0.001) is None
    after = h.observe_kl(10, 0.001)  # past the anneal: a plain failure again
    assert "collapsed" in after and "expected" not in after
    # a collapse that starts in the anneal and never ends: expected, then a failure after it
    h = HealthMonitor(HealthConfig(window=2, warmup_steps=0, kl_collapse_nats=0.01), growth_start=5)
    messages = [h.observe_kl(s, 0.001) for s in range(1, 10)]
    assert "expected now" in messages[1]
    assert [m for m in messages[2:] if m] == [messages[5]]  # step 6: window 2 past step 5
    assert "collapsed" in messages[5] and "expected" not in messages[5]
    h = HealthMonitor(HealthConfig(window=2, warmup_steps=0, kl_growth_factor=10))
    assert h.observe_kl(1, 5.0) is None
    assert h.observe_kl(2, 60.0) is None
    assert "growing without bound" in h.observe_kl(3, 600.0)
    assert h.observe_kl(4, 6.0) is None
    # a KL rising while sigma anneals (before growth_start) sets no minimum to grow from
    h = HealthMonitor(HealthConfig(window=2, warmup_steps=0, kl_growth_factor=10), growth_start=5)
    assert [h.observe_kl(s, kl) for s, kl in ((1, 0.01), (2, 1.0), (3, 5.0), (4, 9.0))] == [
        None
    ] * 4
    assert [h.observe_kl(s, 9.0) for s in (5, 6, 7)] == [None] * 3
    assert h.observe_kl(8, 95.0) is None
    assert "growing without bound" in h.observe_kl(9, 120.0)


def test_blank_prior_samples_warn():
    h = HealthMonitor(HealthConfig(warmup_steps=0, blank_std=0.02))
    assert "near-constant" in h.check_samples(1, torch.full((4, 3, 8, 8), 0.01))
    g = torch.Generator().manual_seed(0)
    assert h.check_samples(1, torch.rand(4, 3, 8, 8, generator=g)) is None


def test_state_dict_carries_a_kl_window_across_a_resume():
    config = HealthConfig(window=3, warmup_steps=0, kl_collapse_nats=0.01)
    h = HealthMonitor(config)
    h.record_step(1, False)
    assert [h.observe_kl(s, 0.001) for s in (1, 2)] == [None, None]
    resumed = HealthMonitor(config)
    resumed.load_state_dict(h.state_dict())
    assert resumed.bad_total == 1 and resumed.bad_in_a_row == 1
    assert "collapsed" in resumed.observe_kl(3, 0.001)  # the third low point, not the first
    fresh = HealthMonitor(config)
    assert fresh.observe_kl(3, 0.001) is None
