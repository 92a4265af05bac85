"""``gqn eval``: ELBO terms and image metrics of a model against two baselines, per K.

Protocol (fixed and seeded, so two checkpoints are compared on identical inputs): the first
``num_scenes`` scenes of the split; for scene i a permutation of its V views drawn from
``(seed, i)``: view ``perm[0]`` is the query and ``perm[1 : K + 1]`` the K context views. The
context sets are nested (K views are a subset of K + 1 views), and the scenes and query views are
the same for every K = 0 ... V - 1 (K = 0: no context view, r = 0; no nearest-view baseline).

Methods, each scored with :func:`gqn.eval.image_metrics.image_metrics` against the query image:

- ``reconstruction``: posterior mean image (the inference network sees the query image);
- ``prior_sample``: each of N prior samples scored on its own, the scores averaged over the N;
- ``prior_mean``: pixel-wise mean of N prior samples;
- ``best_of_n``: the prior sample with the lowest MSE to the query image (per query);
- ``prior_mean_other_pose``: a control, the pixel-wise mean of N prior samples rendered from the
  same r at the pose of another view of the scene (``perm[V - 1]``; a context view only at
  K = V - 1), scored against the query. A model that ignores the query pose scores as well here
  as in ``prior_mean``; the gap is what the pose adds. Its noise comes from its own generator.
  Each row reports the gap per query, paired (``pose_gap``: mean and standard error of
  ``prior_mean`` minus control, PSNR and SSIM), so that a gap can be told from noise;
- ``nearest_view`` and ``mean_image``: the baselines of :mod:`gqn.eval.baselines`.

The ELBO terms (NLL, KL) are evaluated at the final pixel sigma of training. All noise of a K's
row is seeded by ``(seed, K)``: a row is the same whichever other K are evaluated.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np
import torch

from gqn.accel import full_fp32
from gqn.batch import QueryBatch
from gqn.data.collate import frames_to_images
from gqn.data.dataset import SceneDataset, open_split
from gqn.eval import image_metrics
from gqn.eval.baselines import mean_image, nearest_view
from gqn.losses import nats_to_bits_per_dim
from gqn.models.base import SceneModel
from gqn.viewpoint import check_viewpoint_kinds, pose_to_viewpoint

log = logging.getLogger(__name__)

MODEL_METHODS = ("reconstruction", "prior_sample", "prior_mean", "best_of_n")
CONTROLS = ("prior_mean_other_pose",)
BASELINES = ("nearest_view", "mean_image")
METHODS = MODEL_METHODS + CONTROLS + BASELINES
POSE_PAIR = ("prior_mean", "prior_mean_other_pose")  # the pose gap: first minus second, per query
PROTOCOL = (
    "query = view perm[0], context = perm[1:K+1], perm seeded by (seed, scene); "
    "control pose = perm[V-1]; noise of row K seeded by (seed, K)"
)
MEAN_IMAGE_SCENES = 500  # training scenes (evenly spaced) averaged for the mean-image baseline


def view_orders(num_scenes: int, views: int, seed: int) -> np.ndarray:
    """(num_scenes, V) view permutations: column 0 is the query, then context views in order."""
    return np.stack(
        [np.random.default_rng([seed, i]).permutation(views) for i in range(num_scenes)]
    )


def load_scenes(
    dataset: SceneDataset, num_scenes: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (n, V, 3, s, s) in [0, 1] and viewpoints (n, V, 7) of the first ``num_scenes``
    scenes, views in :func:`view_orders` order (query first)."""
    n = min(num_scenes, len(dataset))
    if n < 1:
        raise ValueError("the evaluation split holds no scenes")
    orders = view_orders(n, dataset.views, seed)
    images, viewpoints = [], []
    for i in range(n):
        frames, poses = dataset[(i, orders[i].tolist())]
        images.append(frames_to_images(frames))
        viewpoints.append(pose_to_viewpoint(poses.float()))
    return torch.stack(images), torch.stack(viewpoints)


def best_of_n(samples: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(b, c, s, s): for each query the sample (b, n, c, s, s) with the lowest MSE to target."""
    err = (samples - target[:, None]).pow(2).flatten(2).mean(2)
    return samples[torch.arange(samples.shape[0]), err.argmin(1)]


class _Accumulator:
    """Running sums of per-image values, keyed by name."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, values: dict[str, torch.Tensor | None], n: int) -> None:
        for key, v in values.items():
            if v is not None:
                self.sums[key] = self.sums.get(key, 0.0) + float(v.double().sum())
        self.count += n

    def means(self, keys: tuple[str, ...]) -> dict[str, float | None]:
        return {k: (self.sums[k] / self.count if k in self.sums else None) for k in keys}


@torch.no_grad()
def _predictions(
    model: SceneModel,
    batch: QueryBatch,
    r: torch.Tensor,
    reconstruction: torch.Tensor,
    train_mean: torch.Tensor,
    other_viewpoint: torch.Tensor,
    num_samples: int,
    generators: tuple[torch.Generator, torch.Generator],
) -> dict[str, torch.Tensor | None]:
    """Every method's (b, c, s, s) prediction of the batch's (single) target images;
    ``prior_sample`` is all N samples, (b, N, c, s, s); ``nearest_view`` is None with no
    context views (K = 0). ``r`` is the batch's representation,
    shared with the ELBO; ``other_viewpoint`` (b, d) is the control's pose; ``generators`` the
    noise of the prior samples and of the control."""
    samples, other = (
        model.generate(r, viewpoint[:, None], num_samples, generator)[:, :, 0]
        for viewpoint, generator in zip(
            (batch.target_viewpoints[:, 0], other_viewpoint), generators, strict=True
        )
    )
    b, target = batch.num_scenes, batch.target_images[:, 0]
    return {
        "reconstruction": reconstruction,
        "prior_sample": samples,
        "prior_mean": samples.mean(1),
        "best_of_n": best_of_n(samples, target),
        "prior_mean_other_pose": other.mean(1),
        "nearest_view": None
        if batch.context_images.shape[1] == 0
        else nearest_view(
            batch.context_images, batch.context_viewpoints, batch.target_viewpoints[:, 0]
        ),
        "mean_image": train_mean.to(target)[None].expand(b, -1, -1, -1),
    }


def paired_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float | None]:
    """Mean of the paired differences ``a - b`` (n,) and its standard error s / sqrt(n), with s
    the sample standard deviation (n - 1 in the denominator); None for n < 2."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    se = float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else None
    return float(d.mean()), se


def _pose_gap(prior: dict[str, list], control: dict[str, list]) -> dict[str, float | None]:
    """The row's ``pose_gap``: per-query prior mean minus control, mean and standard error."""
    out: dict[str, float | None] = {}
    for metric, unit in (("psnr", "psnr_db"), ("ssim", "ssim")):
        mean, se = paired_difference(np.concatenate(prior[metric]), np.concatenate(control[metric]))
        out[unit], out[f"{unit}_se"] = mean, se
    return out


def _scores(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor | None]:
    """Per-query metrics (b,) of a prediction (b, c, s, s), or of each of n predictions
    (b, n, c, s, s) averaged over the n."""
    if pred.dim() == 4:
        return image_metrics.image_metrics(pred.clamp(0, 1), target)
    b, n = pred.shape[:2]
    flat_target = target[:, None].expand_as(pred).flatten(0, 1)
    scores = image_metrics.image_metrics(pred.flatten(0, 1).clamp(0, 1), flat_target)
    return {k: None if v is None else v.view(b, n).mean(1) for k, v in scores.items()}


@torch.no_grad()
def _evaluate_k(
    model: SceneModel,
    images: torch.Tensor,
    viewpoints: torch.Tensor,
    k: int,
    train_mean: torch.Tensor,
    sigma: float,
    num_samples: int,
    noise_seed: int,
    batch_size: int,
) -> dict[str, Any]:
    """One row of the result: ELBO terms and per-method metric means with K = ``k``.

    The noise of K's row (posterior draws, prior samples, the control's samples) is seeded by
    ``(noise_seed, k)``, so the row does not depend on which other K are evaluated."""
    device = next(model.parameters()).device
    state = np.random.SeedSequence([noise_seed, k]).generate_state(3).tolist()
    posterior_seed, *sample_seeds = state
    torch.manual_seed(posterior_seed)  # posterior draws use the global RNG
    generators = tuple(torch.Generator(device=device).manual_seed(s) for s in sample_seeds)
    n = images.shape[0]
    elbo = _Accumulator()
    per_method = {m: _Accumulator() for m in METHODS}
    paired: dict[str, dict[str, list]] = {m: {"psnr": [], "ssim": []} for m in POSE_PAIR}
    for lo in range(0, n, batch_size):
        x = images[lo : lo + batch_size].to(device)
        v = viewpoints[lo : lo + batch_size].to(device)
        batch = QueryBatch.full_context(x[:, 1 : k + 1], v[:, 1 : k + 1], x[:, :1], v[:, :1])
        r = model.represent(batch.context_images, batch.context_viewpoints, batch.context_mask)
        terms = model.elbo(batch, sigma, r)
        elbo.add({"nll_nats": terms.nll, "kl_nats": terms.kl}, batch.num_scenes)
        # the ELBO's posterior pass also gives the reconstruction (same z, no second pass)
        preds = _predictions(
            model, batch, r, terms.mean[:, 0], train_mean, v[:, -1], num_samples, generators
        )
        for name, pred in preds.items():
            if pred is None:  # the nearest view without context views
                continue
            scores = _scores(pred, batch.target_images[:, 0])
            per_method[name].add(scores, batch.num_scenes)
            if name in paired:
                for metric, values in paired[name].items():
                    values.append(scores[metric].double().cpu().numpy())
    dims = int(images[0, 0].numel())
    row: dict[str, Any] = {"k": k, **elbo.means(("nll_nats", "kl_nats"))}
    row["nll_bits_per_dim"] = nats_to_bits_per_dim(row["nll_nats"], dims)
    row["kl_bits_per_dim"] = nats_to_bits_per_dim(row["kl_nats"], dims)
    row["methods"] = {m: acc.means(image_metrics.METRICS) for m, acc in per_method.items()}
    row["pose_gap"] = _pose_gap(*(paired[m] for m in POSE_PAIR))
    nearest = row["methods"]["nearest_view"]["ssim"]
    log.info(
        "K=%d: nll %.1f kl %.2f nats; SSIM recon %.3f prior %.3f nearest %s",
        k,
        row["nll_nats"],
        row["kl_nats"],
        row["methods"]["reconstruction"]["ssim"],
        row["methods"]["prior_mean"]["ssim"],
        "n/a" if nearest is None else f"{nearest:.3f}",
    )
    return row


@torch.no_grad()
def evaluate(
    model: SceneModel,
    dataset: SceneDataset,
    train_mean: torch.Tensor,
    sigma: float,
    *,
    num_scenes: int = 100,
    num_samples: int = 8,
    seed: int = 0,
    batch_size: int = 32,
    ks: list[int] | None = None,
    noise_seed: int | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` on the first ``num_scenes`` scenes of ``dataset``.

    ``train_mean`` (3, s, s) is the mean training image; ``ks`` the context sizes (default
    1 ... V - 1; K = 0: no context, the nearest-view baseline None). ``seed`` fixes the views
    and, unless ``noise_seed`` is given, the noise: another ``noise_seed`` redraws only the
    noise of the same queries (how much a score owes to the samples). Returns the
    ``eval.json`` dict: settings and one row per K with the ELBO terms and, per method, the
    mean of each metric over the queries.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    model.eval()
    device = next(model.parameters()).device
    start = time.perf_counter()
    images, viewpoints = load_scenes(dataset, num_scenes, seed)
    n, views = images.shape[:2]
    if images.shape[-1] != model.image_size:
        raise ValueError(
            f"dataset images are {images.shape[-1]}x{images.shape[-1]}, the model expects "
            f"{model.image_size}x{model.image_size}"
        )
    if views < 2:
        raise ValueError(
            f"the dataset has {views} view per scene; evaluation needs at least 2 "
            "(1 context view + 1 query): use data with more views"
        )
    ks = list(range(1, views)) if ks is None else ks
    if not ks or min(ks) < 0 or max(ks) > views - 1:
        raise ValueError(f"context sizes must lie in 0..{views - 1}, got {ks}")
    with (
        torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
        full_fp32(device),
    ):
        rows = [
            _evaluate_k(
                model,
                images,
                viewpoints,
                k,
                train_mean,
                sigma,
                num_samples,
                seed if noise_seed is None else noise_seed,
                batch_size,
            )
            for k in ks
        ]
    size = int(images.shape[-1])
    return {
        "num_scenes": int(n),
        "views": int(views),
        "image_size": size,
        "num_samples": num_samples,
        "seed": seed,
        "noise_seed": seed if noise_seed is None else noise_seed,
        "sigma": sigma,
        "protocol": PROTOCOL,
        "metrics": image_metrics.settings(),
        "ms_ssim_available": image_metrics.ms_ssim_available(size),
        "methods": list(METHODS),
        "rows": rows,
        "wall_s": time.perf_counter() - start,
    }


def evaluate_checkpoint(
    checkpoint: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    split: str = "test",
    num_scenes: int = 100,
    num_samples: int = 8,
    seed: int = 0,
    mean_image_scenes: int | None = MEAN_IMAGE_SCENES,
    ks: list[int] | None = None,
    device: str = "cpu",
    record: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Load a checkpoint (file or run directory), evaluate it on ``split`` of the store ``data``
    (split as in training: the run's ``test_fraction`` and ``split_seed``) on ``device``
    (``"cpu"``, ``"cuda"`` or ``"auto"``), write the outputs to ``out`` and return the result
    dict, with ``record``'s entries added. Prior samples are drawn on the device, so CPU and
    GPU results differ in the samples."""
    from gqn.device import pick_device
    from gqn.models.loading import load_model
    from gqn.viz.eval_report import write_outputs

    model, config = load_model(checkpoint, device=pick_device(device))
    frac, split_seed = config.data.test_fraction, config.data.split_seed
    dataset = open_split(data, split, frac, split_seed)
    check_viewpoint_kinds(config.model.viewpoint, dataset.encoder.kind, f"store {data}")
    check_viewpoint_kinds(config.model.viewpoint, "camera", "gqn eval (camera-pose protocol)")
    train_mean = mean_image(open_split(data, "train", frac, split_seed), mean_image_scenes)
    result = evaluate(
        model,
        dataset,
        train_mean,
        config.optim.pixel_sigma().final,
        num_scenes=num_scenes,
        num_samples=num_samples,
        seed=seed,
        ks=ks,
    )
    device_used = str(next(model.parameters()).device)
    result.update(checkpoint=str(checkpoint), data=str(data), split=split, device=device_used)
    result.update(record or {})
    write_outputs(result, out)
    return result
