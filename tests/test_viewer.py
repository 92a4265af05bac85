"""gqn view: the rendering session (r once per context, batched renders, seeded prior noise), the
HTTP API (renders, ground truth, 4xx errors) and the command's refusals."""

import base64
import io
import math
import re
import socket

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from test_eval import make_checkpoint, make_store
from test_sample import write_folder

from gqn.cli import main
from gqn.data.generate import generate_dataset
from gqn.data.scenes import make_family
from gqn.eval.inputs import load_dataset_scene
from gqn.models.registry import MODELS
from gqn.viewer.server import LOOPBACK_HOSTS, STATIC, create_app
from gqn.viewer.session import OrbitCamera, ViewerSession
from gqn.viewer.sources import open_session
from gqn.viewpoint import look_at_origin, pose_to_viewpoint
from gqn.viz.grids import to_uint8


@pytest.fixture(scope="module")
def store_and_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("viewer")
    data = make_store(root / "data", scenes=4, views=4)
    return data, make_checkpoint(root / "run", data)


@pytest.fixture
def session(store_and_checkpoint):
    data, ckpt = store_and_checkpoint
    return open_session(ckpt, "cpu", data=data, split="all")[0]


@pytest.fixture
def client(session):
    return TestClient(create_app(session, "test store"))


def decode(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def library_render(model, images, poses, context, pose, seed):
    """The model's own prior mean at ``pose`` (5,), straight from the library."""
    r = model.represent(images[context][None], pose_to_viewpoint(poses[context])[None])
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return model.generate(r, pose_to_viewpoint(pose.float())[None, None], generator=g)[0, 0, 0]


def orbit_pose(yaw, pitch, distance):
    cp = math.cos(pitch)
    xyz = torch.tensor([-distance * cp * math.cos(yaw), distance * cp * math.sin(yaw)])
    return look_at_origin(torch.cat([xyz, torch.tensor([-distance * math.sin(pitch)])]))


def test_orbit_camera_looks_at_origin_from_its_distance():
    camera = OrbitCamera(yaw=2.5, pitch=-0.4, distance=3.0)
    pose = camera.pose()
    assert torch.allclose(pose, look_at_origin(pose[:3]), atol=1e-9)
    assert torch.allclose(pose, orbit_pose(2.5, -0.4, 3.0).double(), atol=1e-6)
    back = OrbitCamera.of_pose(pose)
    assert back.yaw == pytest.approx(2.5) and back.pitch == pytest.approx(-0.4)
    assert back.distance == pytest.approx(3.0)


def test_api_render_is_the_models_rendering_at_that_pose(client, session, store_and_checkpoint):
    data, _ = store_and_checkpoint
    body = {
        "scene": 1,
        "context": [0, 2],
        "cameras": [{"yaw": 0.7, "pitch": 0.3, "distance": 3.1}],
        "seed": 5,
    }
    out = client.post("/api/render", json=body)
    assert out.status_code == 200, out.text
    images, poses = load_dataset_scene(data, 1, "all")
    expected = library_render(session.model, images, poses, [0, 2], orbit_pose(0.7, 0.3, 3.1), 5)
    got = decode(out.json()["images"][0]).astype(int)
    assert np.abs(got - to_uint8(expected).astype(int)).max() <= 1
    assert out.json()["truth"] == [None]


def test_r_once_per_context_and_one_generate_call_per_render(session, monkeypatch):
    calls = {"represent": 0, "generate": 0}
    model = session.model
    for name in calls:
        original = getattr(model, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(model, name, counted)
    cameras = [OrbitCamera(0.1 * i, 0.2, 3.0) for i in range(3)]
    out = session.render(0, (1,), cameras, seed=0)
    session.render(0, (1,), [OrbitCamera(1.0, 0.0, 3.5), 2], seed=1)
    assert out.images.shape == (3, 3, 32, 32)
    assert calls == {"represent": 1, "generate": 2}
    session.render(0, (1, 3), cameras[:1], seed=0)
    session.render(1, (1, 3), cameras[:1], seed=0)
    assert calls == {"represent": 3, "generate": 4}


def test_seed_holds_the_sample_and_a_new_seed_draws_another(session):
    cameras = [OrbitCamera(0.5, 0.1, 3.0)]
    a = session.render(0, (0,), cameras, seed=3).images
    assert torch.equal(a, session.render(0, (0,), cameras, seed=3).images)
    assert not torch.equal(a, session.render(0, (0,), cameras, seed=4).images)


def test_consistent_model_keeps_its_scene_latent_while_the_camera_moves():
    """A CGQN draws one z per render from the seed, whatever the cameras: the view from B is the
    same rendered alone or after A (a GQN's would not be: its per-view noise follows A's)."""
    cls = MODELS["cgqn"]
    torch.manual_seed(0)
    model = cls(cls.tiny_config())
    s = model.image_size
    poses = torch.stack([OrbitCamera(y, 0.2, 3.0).pose().float() for y in (0.0, 2.0, 4.0)])
    scene = (torch.rand(3, 3, s, s, generator=torch.Generator().manual_seed(1)), poses)
    session = ViewerSession(model, lambda index: scene, 1)
    a, b = OrbitCamera(0.3, 0.1, 3.0), OrbitCamera(1.9, -0.2, 2.5)
    alone = session.render(0, (0,), [b], seed=7).images[0]
    after_a = session.render(0, (0,), [a, b], seed=7).images[1]
    assert torch.allclose(alone, after_a, atol=1e-6)  # batch size changes float rounding only
    other_sample = session.render(0, (0,), [b], seed=8).images[0]
    assert (alone - other_sample).abs().max() > 1e-3


def test_ground_truth_where_the_camera_sits_at_a_view(client):
    views = client.get("/api/scenes/0").json()["views"]
    v = views[2]
    at_view = {"yaw": v["yaw"], "pitch": v["pitch"], "distance": v["distance"]}
    off = {"yaw": v["yaw"] + 0.1, "pitch": v["pitch"], "distance": v["distance"]}
    body = {"scene": 0, "context": [0], "cameras": [{"view": 3}, at_view, off]}
    out = client.post("/api/render", json=body).json()
    assert out["truth"] == [3, 2, None]
    assert decode(views[3]["image"]).shape == (32, 32, 3)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"scene": 99, "cameras": [{"view": 0}]}, 404, "scene 99 out of range"),
        ({"scene": 0, "cameras": [{"yaw": 0, "pitch": 2.0, "distance": 3}]}, 422, "pitch"),
        ({"scene": 0, "cameras": [{"yaw": 0, "pitch": 0, "distance": 50}]}, 422, "distance"),
        ({"scene": 0, "cameras": [{"view": 4}]}, 422, "view 4 out of range"),
        ({"scene": 0, "context": [0, 9], "cameras": [{"view": 0}]}, 422, "context views"),
        ({"scene": 0, "context": [1, 1], "cameras": [{"view": 0}]}, 422, "distinct"),
        ({"scene": 0, "cameras": []}, 422, "cameras"),
        ({"scene": "x", "cameras": [{"view": 0}]}, 422, "scene"),
    ],
)
def test_bad_requests_get_a_json_error_and_the_server_keeps_going(client, body, status, message):
    out = client.post("/api/render", json=body)
    assert out.status_code == status
    assert message in out.json()["error"]
    good = {"scene": 0, "context": [1], "cameras": [{"view": 0}]}
    assert client.post("/api/render", json=good).status_code == 200


def test_scene_out_of_range_and_the_page_without_external_resources(client):
    assert client.get("/api/scenes/4").status_code == 404
    page = client.get("/")
    assert page.status_code == 200 and "app.js" in page.text
    assert client.get("/static/app.js").status_code == 200
    for f in STATIC.iterdir():
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", f.read_text()), f.name


def test_loopback_server_refuses_other_host_names(session):
    app = create_app(session, "s", allowed_hosts=LOOPBACK_HOSTS)
    assert TestClient(app, base_url="http://evil.example").get("/api/info").status_code == 400
    info = TestClient(app, base_url="http://127.0.0.1:8765").get("/api/info")
    assert info.status_code == 200 and info.json()["num_scenes"] == 4


def test_a_folder_of_own_images_is_one_scene(store_and_checkpoint, tmp_path):
    _, ckpt = store_and_checkpoint
    np.save(tmp_path / "poses.npy", write_folder(tmp_path / "own", n=3))
    session, source = open_session(
        ckpt, "cpu", images=tmp_path / "own", poses=tmp_path / "poses.npy"
    )
    assert session.num_scenes == 1 and "own" in source
    out = session.render(0, (0, 2), [1, OrbitCamera(0.3, 0.0, 3.1)], seed=0)
    assert out.images.shape == (2, 3, 32, 32) and out.truth == [1, None]
    np.save(tmp_path / "two.npy", np.load(tmp_path / "poses.npy")[:2])
    with pytest.raises(ValueError, match="need one pose row per image"):
        open_session(ckpt, "cpu", images=tmp_path / "own", poses=tmp_path / "two.npy")


def _run_view(args, capsys):
    rc = main(["view", *args])
    err = capsys.readouterr().err.strip()
    return rc, err


def test_cli_refuses_bad_input_with_one_line_and_exit_2(
    store_and_checkpoint, tmp_path, capsys, monkeypatch
):
    def no_serving(app):
        raise AssertionError("gqn view started serving instead of refusing")

    monkeypatch.setattr("gqn.viewer.server.make_server", no_serving)
    data, ckpt = store_and_checkpoint
    rc, err = _run_view([str(tmp_path / "nothing"), "--data", str(data)], capsys)
    assert rc == 2 and "does not exist" in err and "\n" not in err
    family = make_family("shepard-metzler", image_size=16, views=2)
    small = generate_dataset(family, tmp_path / "small", 2, progress=False)
    rc, err = _run_view([str(ckpt), "--data", str(small), "--split", "all"], capsys)
    assert rc == 2 and "16x16 images, the model needs 32x32" in err and "\n" not in err
    rc, err = _run_view([str(ckpt), "--data", str(data), "--host", "0.0.0.0"], capsys)
    assert rc == 2 and "--allow-remote" in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        rc, err = _run_view([str(ckpt), "--data", str(data), "--port", str(port)], capsys)
    assert rc == 2 and f"cannot listen on 127.0.0.1:{port}" in err and "\n" not in err
