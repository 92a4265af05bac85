"""gqn view in a real browser: headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium) against the real server on a tiny checkpoint. Skipped when no browser is installed
(``apt-get install chromium chromium-driver``; .ci/run installs them)."""

import base64
import io
import json
import shutil
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image
from test_eval import make_checkpoint, make_store

from gqn.eval.inputs import load_dataset_scene
from gqn.viewer.server import LOOPBACK_HOSTS, bind, create_app, make_server
from gqn.viewer.sources import open_session
from gqn.viewpoint import look_at_origin, pose_to_viewpoint
from gqn.viz.grids import to_uint8

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="no chromium/chromedriver installed (apt-get install chromium chromium-driver)",
)
TIMEOUT_S = 30


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(url, data, session) of a viewer running in a thread on a free loopback port."""
    root = tmp_path_factory.mktemp("viewer_browser")
    data = make_store(root / "data", scenes=2, views=4)
    session, source = open_session(make_checkpoint(root / "run", data), "cpu", data, "all")
    sock = bind("127.0.0.1", 0)
    server = make_server(create_app(session, source, allowed_hosts=LOOPBACK_HOSTS))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT_S
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the viewer did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/", data, session
    server.should_exit = True
    thread.join(TIMEOUT_S)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(driver, condition, what):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, TIMEOUT_S).until(lambda d: condition(d), message=what)


def shown_render(driver, previous_request=None):
    """(request body, uint8 image) of the page's rendering once a new one has arrived."""

    def ready(d):
        img = d.find_element("id", "render")
        request = img.get_attribute("data-request")
        done = img.get_attribute("data-state") == "ready" and request not in (
            None,
            previous_request,
        )
        return (request, img.get_attribute("src")) if done else False

    request, src = wait_for(driver, ready, "a new rendering")
    png = base64.b64decode(src.split(",", 1)[1])
    return request, np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def library_render(session, data, request):
    """The model's own rendering for the page's request, straight from the library."""
    body = json.loads(request)
    images, poses = load_dataset_scene(data, body["scene"], "all")
    ctx, camera = body["context"], body["cameras"][0]
    yaw, pitch, d = (
        torch.tensor(camera[k], dtype=torch.float64) for k in ("yaw", "pitch", "distance")
    )
    position = torch.stack(
        [-d * pitch.cos() * yaw.cos(), d * pitch.cos() * yaw.sin(), -d * pitch.sin()]
    )
    query = pose_to_viewpoint(look_at_origin(position).float())
    r = session.model.represent(images[ctx][None], pose_to_viewpoint(poses[ctx])[None])
    generator = torch.Generator().manual_seed(body["seed"])
    with torch.no_grad():
        mean = session.model.generate(r, query[None, None], generator=generator)[0, 0, 0]
    return to_uint8(mean)


def test_add_a_view_move_the_camera_the_rendering_is_the_models(served, browser):
    url, data, session = served
    browser.get(url)
    first, image0 = shown_render(browser)
    assert image0.shape == (32, 32, 3)
    assert json.loads(first)["context"] == [0]
    assert browser.find_element("id", "truth").is_displayed()  # starts at view 1's pose
    assert not browser.find_element("id", "no-truth").is_displayed()

    browser.find_element("css selector", '.thumb[data-view="2"] img').click()
    added, image1 = shown_render(browser, first)
    assert json.loads(added)["context"] == [0, 2]

    browser.execute_script(
        "const s = document.getElementById('yaw'); s.value = 40;"
        "s.dispatchEvent(new Event('input'));"
    )
    moved, image2 = shown_render(browser, added)
    camera = json.loads(moved)["cameras"][0]
    assert camera["yaw"] == pytest.approx(np.radians(40))
    assert not np.array_equal(image1, image2), "moving the camera did not change the rendering"
    expected = library_render(session, data, moved)
    assert np.abs(image2.astype(int) - expected.astype(int)).max() <= 1
    assert not browser.find_element("id", "truth").is_displayed()
    assert browser.find_element("id", "no-truth").is_displayed()

    browser.find_element("id", "new-sample").click()
    resampled, image3 = shown_render(browser, moved)
    assert json.loads(resampled)["seed"] == 1
    expected = library_render(session, data, resampled)
    assert np.abs(image3.astype(int) - expected.astype(int)).max() <= 1


def test_a_bad_scene_shows_the_error_in_the_page_and_the_viewer_goes_on(served, browser):
    url, _, _ = served
    browser.get(url)
    first, _ = shown_render(browser)
    browser.execute_script(
        "const s = document.getElementById('scene'); s.value = 7;"
        "s.dispatchEvent(new Event('change'));"
    )
    error = wait_for(browser, lambda d: d.find_element("id", "error").text, "an error message")
    assert "scene 7 out of range" in error
    browser.find_element("css selector", '.thumb[data-view="3"] img').click()
    request, _ = shown_render(browser, first)
    assert json.loads(request)["context"] == [0, 3]
    assert not browser.find_element("id", "error").is_displayed()
