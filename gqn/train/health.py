"""Numerical health of a training run: non-finite steps, KL collapse/blow-up, blank samples.

:class:`HealthMonitor` keeps the counters; the trainer asks it after every step whether to go on
(:meth:`record_step`), feeds it the KL at log steps (:meth:`observe_kl`) and the prior samples at
image steps (:meth:`check_samples`). Warnings go to the ``gqn.train.health`` logger and are also
returned so the trainer can record them in the metrics file.
"""

from __future__ import annotations

import logging
import math

import torch

from gqn.run_config import HealthConfig

log = logging.getLogger(__name__)


class TooManyBadSteps(RuntimeError):
    """``max_bad_steps`` consecutive steps had a non-finite loss or gradient."""


class HealthMonitor:
    """Counts consecutive non-finite steps and watches the KL and the prior samples."""

    def __init__(self, config: HealthConfig, growth_start: int = 0):
        """``growth_start``: the step from which the KL's running minimum is tracked for the
        growth warning (the trainer passes the end of the pixel-sigma anneal: while sigma falls
        the KL rises by design)."""
        self.config = config
        self.growth_start = growth_start
        self.bad_in_a_row = 0
        self.bad_total = 0
        self._low_kl = 0
        self._high_kl = 0
        self._kl_min = math.inf
        self._collapse_warned_in_anneal = False

    def state_dict(self) -> dict[str, float]:
        """The counters and windows, so warnings keep counting across ``--resume``."""
        return {
            "bad_in_a_row": self.bad_in_a_row,
            "bad_total": self.bad_total,
            "low_kl": self._low_kl,
            "high_kl": self._high_kl,
            "kl_min": self._kl_min,
            "collapse_warned_in_anneal": self._collapse_warned_in_anneal,
        }

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.bad_in_a_row = int(state["bad_in_a_row"])
        self.bad_total = int(state["bad_total"])
        self._low_kl = int(state["low_kl"])
        self._high_kl = int(state["high_kl"])
        self._kl_min = float(state["kl_min"])
        self._collapse_warned_in_anneal = bool(state.get("collapse_warned_in_anneal", False))

    def record_step(
        self, step: int, finite: bool, loss: float = math.nan, grad_norm: float = math.nan
    ) -> None:
        """Note one step; raise :class:`TooManyBadSteps` after ``max_bad_steps`` bad in a row.

        ``loss`` and ``grad_norm`` are only read (for the message) when ``finite`` is False.
        """
        if finite:
            self.bad_in_a_row = 0
            return
        self.bad_in_a_row += 1
        self.bad_total += 1
        log.warning(
            "step %d: non-finite loss %s or gradient norm %s; step skipped "
            "(no parameter update), %d in a row",
            step,
            loss,
            grad_norm,
            self.bad_in_a_row,
        )
        if self.bad_in_a_row >= self.config.max_bad_steps:
            raise TooManyBadSteps(
                f"stopped at step {step}: {self.bad_in_a_row} consecutive steps had a non-finite "
                f"loss or gradient (last loss {loss}, gradient norm {grad_norm}). No update was "
                "applied on those steps; the last good checkpoint is kept. Try a lower "
                "optim.lr_start, optim.grad_clip, or accel.precision=fp32."
            )

    def observe_kl(self, step: int, kl_nats: float) -> str | None:
        """Feed the mean KL (nats/image) of a log window; a warning text when the KL has been
        below ``kl_collapse_nats`` or above ``kl_growth_factor`` x its running minimum since
        ``growth_start`` for ``window`` log points in a row (once per stretch). A collapse
        reported before ``growth_start`` (expected there) is reported again, as a failure, if it
        lasts ``window`` log points past ``growth_start``."""
        c = self.config
        if step < c.warmup_steps:
            return None
        if math.isfinite(kl_nats) and step >= self.growth_start:
            self._kl_min = min(self._kl_min, max(kl_nats, c.kl_collapse_nats))
        if self._collapse_warned_in_anneal and step >= self.growth_start:
            # the anneal is over: a collapse that lasts another window is now a failure
            self._collapse_warned_in_anneal = False
            self._low_kl = 0
        self._low_kl = self._low_kl + 1 if kl_nats < c.kl_collapse_nats else 0
        grown = not math.isfinite(kl_nats) or kl_nats > c.kl_growth_factor * self._kl_min
        self._high_kl = self._high_kl + 1 if grown else 0
        message = None
        if self._low_kl == c.window:
            message = (
                f"step {step}: KL below {c.kl_collapse_nats} nats/image for {c.window} "
                "log points: the posterior has collapsed onto the prior (latents unused)"
            )
            if step < self.growth_start:
                self._collapse_warned_in_anneal = True
                message += (
                    f"; pixel sigma is annealed until step {self.growth_start}, and while it is "
                    "large the latents are not worth their KL, so this is expected now and a "
                    "failure only if it lasts past the anneal"
                )
        elif self._high_kl == c.window:
            message = (
                f"step {step}: KL {kl_nats:.4g} nats/image has stayed above "
                f"{c.kl_growth_factor:g}x its minimum ({self._kl_min:.4g}) for "
                f"{c.window} log points: it is growing without bound"
            )
        if message:
            log.warning(message)
        return message

    def check_samples(self, step: int, samples: torch.Tensor) -> str | None:
        """Prior samples ``(n, c, h, w)``: a warning text when their mean per-image pixel
        standard deviation is below ``blank_std`` (near-constant, "black" images)."""
        if step < self.config.warmup_steps:
            return None
        std = float(samples.detach().float().flatten(1).std(dim=1).mean())
        if std < self.config.blank_std:
            message = (
                f"step {step}: prior samples are near-constant images (mean pixel std "
                f"{std:.4f} < {self.config.blank_std}): the 'blank image' failure"
            )
            log.warning(message)
            return message
        return None
