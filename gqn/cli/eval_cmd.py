"""``gqn eval`` (metrics of a checkpoint against baselines) and ``gqn sample`` (grid + orbit)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _positive(s: str) -> int:
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _ks(s: str) -> list[int]:
    try:
        return [int(x) for x in s.split(",") if x]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}") from e


DEVICE = dict(
    default="auto",
    choices=("auto", "cpu", "cuda"),
    help="where to run: auto (CUDA if available, else CPU; the default), cpu or cuda",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="ELBO terms and MSE/PSNR/SSIM/MS-SSIM vs context views, against baselines",
        description="Evaluate a checkpoint on a fixed, seeded held-out split: posterior "
        "reconstructions, the mean and the best of N prior samples, the nearest-context-view "
        "and mean-training-image baselines, for K = 1 ... V-1 context views. Writes eval.json, "
        "eval.md and PNG plots.",
    )
    p.add_argument(
        "checkpoint",
        help="checkpoint file, run directory (latest checkpoint) or pretrained:NAME",
    )
    p.add_argument("--data", required=True, help="scene store the model was trained on")
    p.add_argument("--split", default="test", choices=("train", "test", "all"))
    p.add_argument("--scenes", type=_positive, default=100, help="held-out scenes (default 100)")
    p.add_argument("--samples", type=_positive, default=8, help="prior samples per query (N)")
    p.add_argument("--ks", type=_ks, default=None, help="context sizes, e.g. 1,2,4 (default all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the views and prior samples")
    p.add_argument("--out", type=Path, default=None, help="output folder (default <run>/eval)")
    p.add_argument("--device", **DEVICE)
    p.set_defaults(handler=_eval)

    s = sub.add_parser(
        "sample",
        help="render a scene's query views: grid PNG and orbit GIF",
        description="Render query viewpoints of one scene: samples.png (context views on top; "
        "then per query: ground truth | samples) and orbit.gif (the camera circling the scene "
        "at the data's radius). For a multi-scale model with --data also layers_prior.png and "
        "layers_reconstruction.png: what each layer drew, for several scenes.",
    )
    s.add_argument(
        "checkpoint",
        help="checkpoint file, run directory (latest checkpoint) or pretrained:NAME",
    )
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="scene store (use with --scene)")
    src.add_argument("--images", type=Path, help="folder of PNG/JPEG views (use with --poses)")
    s.add_argument("--scene", type=int, default=None, help="scene index within --split")
    s.add_argument("--split", default="test", choices=("train", "test", "all"))
    s.add_argument("--poses", type=Path, help="CSV or .npy of N x 5 raw poses x,y,z,yaw,pitch")
    s.add_argument("--context", type=_positive, default=None, help="context views K")
    s.add_argument("--queries", type=_positive, default=4, help="query views in the grid")
    s.add_argument("--samples", type=_positive, default=4, help="samples per query")
    s.add_argument("--frames", type=_positive, default=36, help="orbit frames")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--layer-scenes",
        type=_positive,
        default=6,
        help="multi-scale models with --data: scenes (columns) of the per-layer figures",
    )
    s.add_argument("--out", type=Path, default=None, help="output folder (default <run>/samples)")
    s.add_argument("--device", **DEVICE)
    s.set_defaults(handler=_sample, parser=s)


def _run_dir(checkpoint: str) -> Path:
    p = Path(checkpoint)
    if p.is_dir():
        return p
    return p.parent.parent if p.parent.name == "checkpoints" else p.parent


def _eval(args: argparse.Namespace) -> int:
    from gqn.eval.evaluate import evaluate_checkpoint
    from gqn.viz.eval_report import metrics_table

    out = args.out or _run_dir(args.checkpoint) / "eval"
    result = evaluate_checkpoint(
        args.checkpoint,
        args.data,
        out,
        split=args.split,
        num_scenes=args.scenes,
        num_samples=args.samples,
        seed=args.seed,
        ks=args.ks,
        device=args.device,
    )
    ks = sorted({result["rows"][0]["k"], result["rows"][-1]["k"]})
    print(metrics_table(result, ks))
    print(f"wrote {out}/eval.json, eval.md, metrics_vs_k.png, elbo_vs_k.png")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from gqn.device import pick_device
    from gqn.eval.inputs import load_dataset_scene, load_image_folder
    from gqn.eval.sample import sample_scene
    from gqn.models.loading import load_model
    from gqn.viewpoint import check_viewpoint_kinds

    if args.data is not None and args.scene is None:
        args.parser.error("--data needs --scene")
    if args.images is not None and args.poses is None:
        args.parser.error("--images needs --poses")
    model, config = load_model(args.checkpoint, device=pick_device(args.device))
    check_viewpoint_kinds(config.model.viewpoint, "camera", "gqn sample (camera poses, orbits)")
    if args.data is not None:
        images, poses = load_dataset_scene(
            args.data, args.scene, args.split, config.data.test_fraction, config.data.split_seed
        )
    else:
        images, poses = load_image_folder(args.images, args.poses, model.image_size)
    if images.shape[-1] != model.image_size:
        raise ValueError(
            f"scene images are {images.shape[-1]}x{images.shape[-1]}, the model needs "
            f"{model.image_size}x{model.image_size}"
        )
    out = args.out or _run_dir(args.checkpoint) / "samples"
    paths = sample_scene(
        model,
        images,
        poses,
        out,
        context=args.context,
        num_samples=args.samples,
        num_queries=args.queries,
        orbit_frames=args.frames,
        seed=args.seed,
    )
    print(f"wrote {paths['grid']} and {paths['orbit']}")
    if hasattr(model, "layer_images") and args.data is not None:
        from gqn.data.dataset import open_split
        from gqn.eval.layers import write_layer_figures

        dataset = open_split(
            args.data, args.split, config.data.test_fraction, config.data.split_seed
        )
        written = write_layer_figures(model, dataset, out, args.layer_scenes, seed=args.seed)
        print("wrote " + ", ".join(str(p) for p in written))
    return 0
