"""Training loader: query never in context, K range, determinism/resume, K=0, online mode,
warm-up on a pool of scenes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_format import FakeFamily, make_store

from gqn.batch import QueryBatch
from gqn.data.dataset import OnlineSceneDataset, open_split, split_scenes
from gqn.data.loader import make_loader
from gqn.data.samplers import QueryBatchSampler, ScenePool, StepPlan, draw_views
from gqn.viewpoint import pose_to_viewpoint


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds") / "d"
    make_store(root, scenes=12, shard=5, views=6)
    return root


def test_query_never_in_context_and_k_range():
    for step in range(200):
        v = draw_views(3, step, 0, 8, 6, 2, 4)
        assert 3 <= v.shape[1] <= 5
        assert all(len(set(row)) == len(row) for row in v.tolist())  # query distinct from context


def test_k_range_covers_bounds_and_k_zero():
    ks = {draw_views(0, s, 0, 1, 15, 0, 14).shape[1] - 1 for s in range(400)}
    assert ks == set(range(15))
    ks = {draw_views(0, s, 0, 1, 15, 0, 0).shape[1] - 1 for s in range(20)}
    assert ks == {0}
    with pytest.raises(ValueError, match="context range"):
        QueryBatchSampler(10, 6, StepPlan(2, max_context=6))


def test_batches_match_the_store(store):
    fam = FakeFamily(views=6)
    frames, poses = fam.render_scenes(1, range(12))
    loader = make_loader(store, StepPlan(3, seed=5, num_steps=4), split="all", num_workers=0)
    sampler = loader.loader.batch_sampler
    for step, batch in enumerate(loader):
        assert isinstance(batch, QueryBatch)
        items = sampler.step_items(step)
        k = len(items[0][1]) - 1
        assert batch.context_images.shape == (3, k, 3, 16, 16) and batch.context_mask.all()
        for b, (scene, views) in enumerate(items):
            q = views[-1]
            assert q not in views[:-1]
            expect = torch.from_numpy(frames[scene, q]).permute(2, 0, 1).float() / 255
            torch.testing.assert_close(batch.target_images[b, 0], expect)
            vp = pose_to_viewpoint(torch.from_numpy(poses[scene, list(views[:-1])]))
            torch.testing.assert_close(batch.context_viewpoints[b], vp)
        assert batch.target_images.min() >= 0.0 and batch.target_images.max() <= 1.0


def _collect(loader):
    return [(b.target_images.sum().item(), b.context_images.shape[1]) for b in loader]


def test_determinism_and_resume(store):
    full = _collect(
        make_loader(store, StepPlan(2, seed=7, num_steps=9), split="all", num_workers=0)
    )
    again = _collect(
        make_loader(store, StepPlan(2, seed=7, num_steps=9), split="all", num_workers=2)
    )
    resumed = _collect(
        make_loader(
            store, StepPlan(2, seed=7, start_step=4, num_steps=9), split="all", num_workers=0
        )
    )
    other = _collect(
        make_loader(store, StepPlan(2, seed=8, num_steps=9), split="all", num_workers=0)
    )
    assert full == again and resumed == full[4:] and other != full


def test_epochs_visit_every_scene_once_and_ranks_disjoint():
    s0 = QueryBatchSampler(12, 6, StepPlan(3, seed=1, world_size=2, rank=0))
    s1 = QueryBatchSampler(12, 6, StepPlan(3, seed=1, world_size=2, rank=1))
    seen = [i for step in range(2) for s in (s0, s1) for i, _ in s.step_items(step)]
    assert sorted(seen) == list(range(12))
    assert len(s0.step_items(0)[0][1]) == len(s1.step_items(0)[0][1])  # same K on all ranks


def test_seeded_split_is_stable_and_disjoint(store):
    train, test = split_scenes(1000, "train", 0.1, 0), split_scenes(1000, "test", 0.1, 0)
    assert not set(train) & set(test) and len(train) + len(test) == 1000
    assert 50 < len(test) < 150
    assert list(split_scenes(500, "test", 0.1, 0)) == [i for i in test if i < 500]
    assert (
        len(open_split(store, "test", test_fraction=0.5))
        + len(open_split(store, "train", test_fraction=0.5))
        == 12
    )


def test_online_mode_yields_valid_batches():
    fam = FakeFamily(views=5)
    loader = make_loader(fam, StepPlan(4, seed=2, num_steps=4, max_context=3), num_workers=2)
    batches = list(loader)
    assert len(batches) == 4
    for b in batches:
        assert b.target_images.shape == (4, 1, 3, 16, 16) and b.context_images.shape[1] <= 3
    ds = OnlineSceneDataset(fam, StepPlan(4, seed=2, max_context=3))
    first = ds.render_step(0)
    torch.testing.assert_close(first[3], batches[0].target_images)
    # rank 1 of 2 renders other scenes than rank 0
    other = OnlineSceneDataset(fam, StepPlan(4, seed=2, max_context=3, rank=1, world_size=2))
    assert not torch.equal(other.render_step(0)[3], ds.render_step(0)[3])
    frames, _ = fam.render_scenes(2, range(4))
    views = draw_views(2, 0, 0, 4, 5, 0, 3)
    expect = torch.from_numpy(frames[np.arange(4), views[:, -1]]).permute(0, 3, 1, 2) / 255
    torch.testing.assert_close(first[3], expect.float()[:, None])  # (b, n=1, c, h, w)
    with pytest.raises(ValueError, match="rank 2 outside world_size 2"):
        OnlineSceneDataset(fam, StepPlan(4, rank=2, world_size=2))


def test_scene_pool_draws_from_the_pool_then_from_every_scene():
    warm = QueryBatchSampler(40, 6, StepPlan(2, seed=3, pool=ScenePool(scenes=8, steps=12)))
    plain = QueryBatchSampler(40, 6, StepPlan(2, seed=3))
    per_epoch = [sorted(i for s in range(e, e + 4) for i, _ in warm.step_items(s)) for e in (0, 4)]
    assert per_epoch == [list(range(8))] * 2  # each warm-up epoch visits the pool once
    assert {i for s in range(12) for i, _ in warm.step_items(s)} == set(range(8))
    after = [i for s in range(20, 40) for i, _ in warm.step_items(s)]
    assert max(after) >= 8  # past the warm-up every scene is drawn, as without one
    assert [warm.step_items(s) for s in range(12, 40)] == [
        plain.step_items(s) for s in range(12, 40)
    ]
    assert warm.step_items(0) != plain.step_items(0)


def test_scene_pool_resumes_mid_pool_and_splits_ranks():
    def sampler(start):
        plan = StepPlan(3, seed=1, start_step=start, num_steps=10, pool=ScenePool(12, 7))
        return QueryBatchSampler(30, 6, plan)

    assert list(sampler(5)) == list(sampler(0))[5:]
    ranks = [
        QueryBatchSampler(24, 6, StepPlan(3, seed=1, world_size=2, rank=r, pool=ScenePool(12, 4)))
        for r in (0, 1)
    ]
    for steps, scenes in (((0, 1), 12), ((2, 3), 12), ((4, 5, 6, 7), 24)):
        seen = [i for step in steps for r in ranks for i, _ in r.step_items(step)]
        assert sorted(seen) == list(range(scenes))  # an epoch of both ranks: each scene once


def test_a_pool_of_every_scene_ends_on_time():
    """Past the pool the permutation is the no-pool one even when the pool has every scene."""
    pooled = QueryBatchSampler(
        8, 6, StepPlan(2, seed=4, pool=ScenePool(scenes=8, steps=2), num_steps=8)
    )
    plain = QueryBatchSampler(8, 6, StepPlan(2, seed=4, num_steps=8))
    resumed = QueryBatchSampler(
        8, 6, StepPlan(2, seed=4, pool=ScenePool(8, 2), start_step=2, num_steps=8)
    )
    assert list(pooled)[2:] == list(plain)[2:] == list(resumed)


def test_scene_pool_pool_must_fit_the_data():
    with pytest.raises(ValueError, match="larger than the 12 training scenes"):
        QueryBatchSampler(12, 6, StepPlan(2, pool=ScenePool(scenes=13, steps=5)))
    with pytest.raises(ValueError, match="cannot fill one step of 4 x 2"):
        QueryBatchSampler(40, 6, StepPlan(4, world_size=2, pool=ScenePool(scenes=7, steps=5)))
    with pytest.raises(ValueError, match="scene pool needs scenes >= 1"):
        ScenePool(scenes=8, steps=0)


def test_online_scene_pool_cycles_through_the_pool():
    fam = FakeFamily(views=5)
    ds = OnlineSceneDataset(
        fam, StepPlan(4, seed=2, max_context=3, pool=ScenePool(scenes=6, steps=3))
    )
    frames, _ = fam.render_scenes(2, range(6))
    for step, scenes in ((1, [4, 5, 0, 1]), (2, [2, 3, 4, 5])):
        views = draw_views(2, step, 0, 4, 5, 0, 3)
        expect = frames[scenes, views[:, -1]]
        got = ds.render_step(step)[3]
        want = torch.from_numpy(expect).permute(0, 3, 1, 2).float() / 255
        torch.testing.assert_close(got, want[:, None])  # (b, n=1, c, h, w)
    plain = OnlineSceneDataset(fam, StepPlan(4, seed=2, max_context=3))
    torch.testing.assert_close(ds.render_step(3)[3], plain.render_step(3)[3])
