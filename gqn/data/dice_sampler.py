"""Hidden-face training batches of a stored MNIST-dice dataset (seed 003 §4.2).

The paper trains CGQN and GQN on splits where the context sees at most three sides of the die
and the targets show the fourth; :class:`HiddenFaceBatchSampler` draws such splits for every
scene of a step with :func:`gqn.data.scenes.dice_views.split_views` (``"hidden-face"``), in
place of :class:`~gqn.data.samplers.QueryBatchSampler`'s random views. Scenes, K and resuming
stay those of the random sampler (a pure function of ``(seed, step, rank)``).

Which faces each view sees is redrawn from the store's manifest (``faces_of``, ~30 ms a scene)
once per store and cached next to it (:data:`FACES_FILE`, when the directory is writable).
Only scenes where some side is hidden from ``max_context`` views and seen by ``num_targets``
others are trained on (:func:`hidden_face_dataset`); with 12 views that is nearly all.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from gqn.data.dataset import SceneDataset
from gqn.data.samplers import QueryBatchSampler, StepPlan
from gqn.data.scenes.dice_views import SIDES, DiceFaces, split_views
from gqn.data.scenes.mnist_dice import faces_of, mnist_digits
from gqn.io import atomic_write

log = logging.getLogger(__name__)

FACES_FILE = "dice_faces.npz"


def store_faces(dataset: SceneDataset) -> list[DiceFaces]:
    """:class:`DiceFaces` of every scene of ``dataset``'s store, by store index (cached)."""
    store = dataset.store
    path = Path(store.root) / FACES_FILE
    if path.exists():
        cached = np.load(path)
        if len(cached["area"]) == len(store):
            area, digits = cached["area"], cached["digits"]
            min_area = float(store.manifest.source["params"]["min_face_area"])
            labels = mnist_digits()[1]
            return [
                DiceFaces(d, labels[d], a, a >= min_area) for a, d in zip(area, digits, strict=True)
            ]
    faces = [faces_of(store, i) for i in range(len(store))]
    try:
        with atomic_write(path) as f:
            area, digits = np.stack([x.area for x in faces]), np.stack([x.digits for x in faces])
            np.savez(f, area=area, digits=digits)
    except OSError as e:
        log.warning("cannot cache the dice faces in %s (%s); recomputed next time", path, e)
    return faces


def admits_split(faces: DiceFaces, contexts: int, targets: int) -> bool:
    """Whether some side is hidden from ``contexts`` views and seen by ``targets`` others."""
    return any(
        faces.hidden[:, f].sum() >= contexts and faces.seen[:, f].sum() >= targets for f in SIDES
    )


def hidden_face_dataset(
    dataset: SceneDataset, max_context: int, num_targets: int
) -> tuple[SceneDataset, list[DiceFaces]]:
    """The scenes of ``dataset`` that admit a hidden-face split of ``max_context`` context and
    ``num_targets`` target views, and their faces (by position in the returned dataset)."""
    faces = store_faces(dataset)
    keep = [i for i in dataset.indices if admits_split(faces[i], max_context, num_targets)]
    if not keep:
        raise ValueError(
            f"no scene of {dataset.store.root} has a side hidden from {max_context} views and "
            f"seen by {num_targets} others; lower data.max_context or data.num_targets"
        )
    log.info("hidden-face splits: %d of %d scenes qualify", len(keep), len(dataset))
    return SceneDataset(dataset.store, keep), [faces[i] for i in keep]


class HiddenFaceBatchSampler(QueryBatchSampler):
    """:class:`QueryBatchSampler` whose views per scene are a hidden-face split: K context views
    that miss one side entirely, then ``num_targets`` views that all see it.

    ``faces[i]`` are the faces of dataset position i (:func:`hidden_face_dataset`); K and the
    scenes of a step are the random sampler's, the split is drawn from
    ``(seed, step, 3, rank, j)`` for the j-th scene of the step.
    """

    def __init__(self, faces: list[DiceFaces], views: int, plan: StepPlan):
        super().__init__(len(faces), views, plan)
        if self.min_context < 1:
            raise ValueError(
                "hidden-face splits need data.min_context >= 1 (the context must miss a face)"
            )
        self.faces = faces

    def step_items(self, step: int) -> list[tuple[int, tuple[int, ...]]]:
        items = []
        for j, (scene, views) in enumerate(super().step_items(step)):
            rng = np.random.default_rng([self.seed, step, 3, self.rank, j])
            k = len(views) - self.num_targets
            split = split_views(self.faces[scene], "hidden-face", k, self.num_targets, rng)
            items.append((scene, tuple(int(v) for v in (*split.context, *split.target))))
        return items
