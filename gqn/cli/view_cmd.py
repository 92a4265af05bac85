"""``gqn view``: the interactive viewer (a local web app; :mod:`gqn.viewer`, docs/viewer.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gqn.cli.eval_cmd import DEVICE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "view",
        help="interactive viewer: fly a camera around a scene in the browser",
        description="Serve a local web page where you pick a scene, click its views to add or "
        "remove context views, and drag the camera (yaw, pitch, distance) while the model "
        "renders the view live, next to the ground truth when the camera sits at one of the "
        "scene's views. Listens on 127.0.0.1 only unless --allow-remote is given.",
    )
    p.add_argument("checkpoint", help="checkpoint file or run directory (latest checkpoint)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="scene store (its --split scenes are offered)")
    src.add_argument("--images", type=Path, help="folder of PNG/JPEG views (use with --poses)")
    p.add_argument("--poses", type=Path, help="CSV or .npy of N x 5 raw poses x,y,z,yaw,pitch")
    p.add_argument("--split", default="test", choices=("train", "test", "all"))
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free one)")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other than a loopback address: anyone who can reach it can use "
        "the viewer (no authentication)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", **DEVICE)
    p.set_defaults(handler=_view, parser=p)


def _view(args: argparse.Namespace) -> int:
    import torch

    from gqn.device import pick_device
    from gqn.viewer.server import LOOPBACK_HOSTS, bind, create_app, make_server
    from gqn.viewer.sources import open_session

    if args.images is not None and args.poses is None:
        args.parser.error("--images needs --poses")
    if args.threads is not None and args.threads < 1:
        args.parser.error(f"--threads must be >= 1, got {args.threads}")
    loopback = args.host in LOOPBACK_HOSTS
    if not loopback and not args.allow_remote:
        raise ValueError(
            f"--host {args.host} would expose the viewer beyond this machine; add "
            "--allow-remote to do so on purpose (docs/viewer.md, security)"
        )
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    session, source = open_session(
        args.checkpoint, pick_device(args.device), args.data, args.split, args.images, args.poses
    )
    sock = bind(args.host, args.port)
    app = create_app(session, source, allowed_hosts=LOOPBACK_HOSTS if loopback else None)
    host, port = sock.getsockname()[:2]
    url_host = f"[{host}]" if ":" in host else host
    print(f"gqn view: http://{url_host}:{port}/ ({session.model.name}, {source}); Ctrl-C stops")
    make_server(app).run(sockets=[sock])
    return 0
