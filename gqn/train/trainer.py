"""The training loop of ``gqn train``: resumable, observable, distributed.

:func:`train` runs one job from a :class:`RunConfig`. Per step: forward (optionally under bf16
autocast), backward, gradient norm (clipped if ``optim.grad_clip``), a health check that skips
non-finite steps, Adam update, schedules forward. One small host sync per step decides the skip
and the stop flag (agreed across ranks by one all-reduce); metrics stay on the device until a log
step. Checkpoints every ``log.checkpoint_every`` steps and on exit (end, Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import gc
import logging
import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from gqn import accel as accel_lib
from gqn.models.loading import load_model_state
from gqn.models.registry import build_model
from gqn.run_config import RunConfig
from gqn.schedules import apply_learning_rate, learning_rate_schedule
from gqn.train import distributed
from gqn.train.checkpoint import (
    checkpoint_path,
    load_resumable,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from gqn.train.data import (
    open_source,
    preview_batch,
    rng_neutral,
    source_encoder,
    training_loader,
)
from gqn.train.health import HealthMonitor, TooManyBadSteps
from gqn.train.pace import StepPace, choose_threads
from gqn.train.resume import check_resumable, prepare_run_dir
from gqn.train.run_log import MetricWindow, RunLog, preview_images
from gqn.train.stop_request import StopRequest
from gqn.typed_config import save_yaml, to_dict
from gqn.viewpoint import check_viewpoint_kinds

log = logging.getLogger(__name__)

# When stderr is a file or pipe (a background run logging to a file) the progress bar redraws
# every 30 s instead of ~10 times a second; maxinterval too, or tqdm's monitor thread forces a
# redraw every 10 s.
PIPED_PROGRESS = {"mininterval": 30.0, "maxinterval": 30.0}

Status = Literal["finished", "interrupted", "unhealthy"]


@dataclass
class TrainResult:
    """How a run ended: ``step`` reached, ``status``, the last checkpoint written (if any)."""

    step: int
    status: Status
    message: str
    checkpoint: Path | None


class Trainer:
    """Owns the model, optimiser, schedules, data and logs of one run on one rank."""

    def __init__(self, config: RunConfig, info: distributed.DistInfo, resume: bool):
        self.config, self.info = config, info
        self.run_dir = Path(config.out_dir)
        self.device = info.device
        if info.is_main:
            prepare_run_dir(self.run_dir, resume)
        distributed.barrier(info)
        state = load_resumable(self.run_dir) if resume else None
        if state is not None:
            check_resumable(config, state)
        self.source = open_source(config.data, config.model.image_size)

        torch.manual_seed(config.seed)
        self.model = build_model(config.model.name, config.model)
        encoder = source_encoder(self.source)
        check_viewpoint_kinds(
            config.model.viewpoint, encoder.kind, f"data {config.data.path or config.data.family}"
        )
        if self.model.viewpoint_dim != encoder.dim:
            raise ValueError(
                f"the data's {encoder.kind!r} viewpoints have d={encoder.dim} but the model "
                f"expects d={self.model.viewpoint_dim}; set model.viewpoint_dim={encoder.dim}"
            )
        self.accel = accel_lib.resolve(config.accel, self.device)
        o = config.optim
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=o.lr_start, betas=o.betas, eps=o.eps
        )
        self.sigma = o.pixel_sigma()
        self.lr = learning_rate_schedule(o.lr_start, o.lr_end, o.lr_steps)
        self.health = HealthMonitor(config.health, growth_start=self.sigma.settle_step)
        self.step = 0
        torch.manual_seed(config.seed + 1 + info.rank)  # per-rank posterior noise
        if state is not None:
            self._restore(state)
        self.module = accel_lib.prepare_model(self.model, self.accel, self.device)
        if info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # a parameter left out of a step's graph (e.g. a representation network at
            # K = 0) makes DDP's next step wait for its gradient unless DDP looks for it
            unused = self.model.ddp_find_unused_parameters(config.data.min_context)
            self.module = DistributedDataParallel(
                self.module, device_ids=ids, find_unused_parameters=unused
            )
        self.last_checkpoint: Path | None = Path(state["path"]) if state else None
        self.checkpoint_step = self.step if state else -1
        self.log: RunLog | None = None
        self.preview = None
        if info.is_main:
            save_yaml(config, self.run_dir / "config.yaml")
            self.log = RunLog(self.run_dir, self.step, config.log.tensorboard)
            self.preview = accel_lib.prepare_batch(
                preview_batch(config.data, self.source), self.accel, self.device
            )

    def _restore(self, state: dict) -> None:
        load_model_state(self.model, state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.sigma.load_state_dict(state["schedules"]["sigma"])
        self.lr.load_state_dict(state["schedules"]["lr"])
        self.step = int(state["step"])
        if "health" in state:  # absent in checkpoints of gqn <= 0.1: counters start afresh
            self.health.load_state_dict(state["health"])
        per_rank = state.get("rng_per_rank") or [state["rng"]]
        if len(per_rank) == self.info.world_size:
            set_rng_state(per_rank[self.info.rank])
        else:
            log.warning(
                "checkpoint has RNG states of %d rank(s), this job has %d: reseeding",
                len(per_rank),
                self.info.world_size,
            )
        log.info("resumed %s at step %d", state["path"], self.step)

    def checkpoint(self) -> None:
        """Write a checkpoint of the current step on rank 0 (all ranks take part)."""
        states = [rng_state()]
        if self.info.enabled:
            states = [None] * self.info.world_size
            torch.distributed.all_gather_object(states, rng_state())
        distributed.barrier(self.info)
        if self.info.is_main:
            state = {
                "config": to_dict(self.config),
                "model_class": type(self.model).__name__,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "schedules": {"sigma": self.sigma.state_dict(), "lr": self.lr.state_dict()},
                "health": self.health.state_dict(),
                "step": self.step,
                "data_position": self.step,
                "rng": states[0],
                "rng_per_rank": states,
            }
            self.last_checkpoint = save_checkpoint(
                checkpoint_path(self.run_dir, self.step), state, keep_last=self.config.log.keep_last
            )
        self.checkpoint_step = self.step
        distributed.barrier(self.info)

    def _train_step(self, batch, stop: StopRequest) -> tuple[bool, bool, dict]:
        """One optimisation step; returns (finite, stop requested on any rank, 0-d metrics)."""
        sigma, lr = self.sigma.value, self.lr.value
        apply_learning_rate(self.optimizer, lr)
        with accel_lib.autocast(self.accel, self.device):
            terms = self.module(batch, sigma)
        loss = terms.loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        clip = self.config.optim.grad_clip
        if clip is None:
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        else:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, clip)
        bad = ~(torch.isfinite(loss.detach()) & torch.isfinite(grad_norm))
        flags = torch.stack([bad.float(), torch.tensor(float(stop.requested), device=bad.device)])
        flags = distributed.all_max(self.info, flags).tolist()  # the per-step host sync
        finite = flags[0] == 0.0
        if finite:
            self.optimizer.step()
        metrics = {**terms.summary(), "loss": loss.detach(), "grad_norm": grad_norm}
        return finite, flags[1] > 0.0, metrics

    def _log_scalars(self, window: MetricWindow, bar: tqdm) -> None:
        values = window.means()
        seconds = window.seconds()
        images = window.count + window.skipped
        values.update(
            lr=self.lr.value,
            sigma=self.sigma.value,
            skipped_steps=window.skipped,
            images_per_s=images
            * self.config.data.batch_size
            * self.info.world_size
            / max(seconds, 1e-9),
        )
        if "kl_nats" in values:
            message = self.health.observe_kl(self.step, values["kl_nats"])
            if message:
                values["warning"] = message
        self.log.scalars(self.step, values)
        if "loss" in values:
            bar.set_postfix(
                loss=f"{values['loss']:.1f}", kl=f"{values['kl_nats']:.2f}", refresh=False
            )

    def _log_images(self) -> None:
        grid, prior = preview_images(self.model, self.preview)
        self.log.image(self.step, "preview", grid)
        message = self.health.check_samples(self.step, prior)
        if message:
            self.log.scalars(self.step, {"warning": message})

    def run(self) -> TrainResult:
        cfg = self.config
        max_steps = cfg.optim.max_steps
        loader = training_loader(
            cfg.data,
            self.source,
            cfg.seed,
            self.step,
            max_steps,
            self.info.rank,
            self.info.world_size,
        )
        pool = cfg.data.scene_pool()
        if pool is not None and pool.active(self.step) and self.info.is_main:
            log.info(
                "scene pool: steps before %d draw from the first %d training scenes",
                pool.steps,
                pool.scenes,
            )
            if pool.steps >= max_steps:
                log.warning(
                    "data.pool_steps (%d) >= optim.max_steps (%d): the whole run trains on "
                    "%d scenes; lower data.pool_steps to train on every scene afterwards",
                    pool.steps,
                    max_steps,
                    pool.scenes,
                )
        bar = tqdm(
            total=max_steps,
            initial=self.step,
            unit="step",
            dynamic_ncols=True,
            **({} if sys.stderr.isatty() else PIPED_PROGRESS),
            disable=not (self.info.is_main and cfg.log.progress),
        )
        window = MetricWindow()
        pace = StepPace()
        status: Status = "finished"
        message = ""
        self.model.train()
        with StopRequest() as stop, closing(loader):
            try:
                for batch in rng_neutral(loader):
                    if self.step >= max_steps:
                        break
                    batch = accel_lib.prepare_batch(batch, self.accel, self.device, True)
                    finite, stopping, metrics = self._train_step(batch, stop)
                    if finite:
                        window.add(metrics)
                        self.health.record_step(self.step + 1, True)
                    else:
                        window.skipped += 1
                        loss, grad_norm = float(metrics["loss"]), float(metrics["grad_norm"])
                        self.health.record_step(self.step + 1, False, loss, grad_norm)
                    self.step += 1
                    self.sigma.step_forward()
                    self.lr.step_forward()
                    bar.update(1)
                    self._periodic(window, bar)
                    self._check_pace(pace)
                    if self.step % cfg.log.every == 0:
                        window = MetricWindow()
                    if stopping:
                        status = "interrupted"
                        break
            except TooManyBadSteps as e:
                status, message = "unhealthy", str(e)
            if status != "unhealthy" and self.checkpoint_step != self.step:
                self.checkpoint()
        bar.close()
        if self.log is not None:
            self.log.close()
        if status == "interrupted":
            message = (
                f"interrupted by {stop.signal_name or 'a signal on another rank'} at "
                f"step {self.step}; checkpoint {self.last_checkpoint}; continue with "
                f"`gqn train --resume --out {self.run_dir}`"
            )
        elif status == "finished":
            message = f"finished at step {self.step}; checkpoint {self.last_checkpoint}"
        return TrainResult(self.step, status, message, self.last_checkpoint)

    def _check_pace(self, pace: StepPace) -> None:
        message = pace.tick()
        if message and self.info.is_main:
            log.warning(message)
            self.log.scalars(self.step, {"warning": message})

    def _periodic(self, window: MetricWindow, bar: tqdm) -> None:
        cfg = self.config.log
        if self.info.is_main and self.step % cfg.every == 0:
            self._log_scalars(window, bar)
        if self.info.is_main and self.step % cfg.image_every == 0:
            self._log_images()
        if self.step % cfg.checkpoint_every == 0 and self.health.bad_in_a_row == 0:
            self.checkpoint()


def train(config: RunConfig, resume: bool = False) -> TrainResult:
    """Run (or with ``resume`` continue) the training job ``config`` describes."""
    info = distributed.init(config.device)
    threads = torch.get_num_threads()
    torch.set_num_threads(choose_threads(config.threads))
    log.info("torch threads: %d (threads=%s)", torch.get_num_threads(), config.threads)
    try:
        result = Trainer(config, info, resume).run()
    finally:
        gc.collect()  # the Trainer's DDP wrapper holds the process group: free it first
        distributed.shutdown(info)
        torch.set_num_threads(threads)
    (log.error if result.status == "unhealthy" else log.info)(result.message)
    return result
