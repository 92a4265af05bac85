"""The README's screenshot of ``gqn view`` (docs/img/viewer.png), taken by headless Chromium.

    python benchmarks/viewer_screenshot.py runs/demo/run --data runs/demo/data

Serves the checkpoint on a free loopback port in this process, opens the page, adds context
views, puts the camera at a held-out view (so that the ground truth shows) and saves the window.
Needs Debian's chromium and chromium-driver (``make browser``) and selenium (dev extra).
"""

from __future__ import annotations

import argparse
import shutil
import threading
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from gqn.viewer.server import LOOPBACK_HOSTS, bind, create_app, make_server
from gqn.viewer.sources import open_session

ROOT = Path(__file__).resolve().parent.parent


def wait_rendered(driver, after: str | None) -> str:
    def ready(d):
        img = d.find_element("id", "render")
        request = img.get_attribute("data-request")
        return request if img.get_attribute("data-state") == "ready" and request != after else False

    return WebDriverWait(driver, 60).until(ready)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--data", required=True)
    parser.add_argument("--scene", type=int, default=3)
    parser.add_argument("--context", default="0,4,9", help="views to add as context")
    parser.add_argument("--view", type=int, default=6, help="view to put the camera at")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "viewer.png")
    args = parser.parse_args()
    session, source = open_session(args.checkpoint, "cpu", args.data)
    sock = bind("127.0.0.1", 0)
    server = make_server(create_app(session, source, allowed_hosts=LOOPBACK_HOSTS))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,760"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(f"http://127.0.0.1:{sock.getsockname()[1]}/")
        request = wait_rendered(driver, None)
        driver.execute_script(
            "const s = document.getElementById('scene'); s.value = arguments[0];"
            "s.dispatchEvent(new Event('change'));",
            args.scene,
        )
        request = wait_rendered(driver, request)
        for view in [int(v) for v in args.context.split(",")]:
            if view != 0:  # view 0 is the page's first context view
                driver.find_element("css selector", f'.thumb[data-view="{view}"] img').click()
                request = wait_rendered(driver, request)
        driver.find_element("css selector", f'.thumb[data-view="{args.view}"] .snap').click()
        wait_rendered(driver, request)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.out))
        print(f"wrote {args.out}")
    finally:
        driver.quit()
        server.should_exit = True


if __name__ == "__main__":
    main()
