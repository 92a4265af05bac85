"""Training threads and the step-pace warning (gqn.train.pace)."""

from __future__ import annotations

import torch

from gqn.train.pace import StepPace, choose_threads


def test_a_fixed_thread_count_is_taken_and_auto_never_exceeds_torch():
    assert choose_threads(3) == 3
    assert 1 <= choose_threads("auto") <= torch.get_num_threads()


def run(pace: StepPace, clock: list[float], seconds: list[float]) -> list[str]:
    out = []
    for s in seconds:
        clock[0] += s
        if (message := pace.tick()) is not None:
            out.append(message)
    return out


def test_pace_warns_once_when_steps_collapse():
    clock = [0.0]
    pace = StepPace(window=4, factor=2.0, skip=1, clock=lambda: clock[0])
    assert run(pace, clock, [5.0] + [0.15] * 4 + [0.25] * 8) == []  # 1.7x: no warning
    warnings = run(pace, clock, [0.5] * 8)  # 3.3x the early median
    assert len(warnings) == 1 and "from 150 ms" in warnings[0] and "threads=1" in warnings[0]
    assert run(pace, clock, [0.5] * 8) == []  # once
