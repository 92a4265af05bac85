"""``gqn export``: a checkpoint reduced to a small model-only file (fp16 weights by default)."""

from __future__ import annotations

import argparse

from gqn.models.pretrained import export_weights


def _export(args: argparse.Namespace) -> int:
    path = export_weights(args.checkpoint, args.out, fp16=not args.fp32)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) and its .sha256")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a small model-only copy of a checkpoint (for sharing; cannot be resumed)",
        description="Write the config and weights of a checkpoint (file or run directory: its "
        "latest) to OUT, without optimiser/schedule/RNG state, weights in fp16 unless --fp32. "
        "Loads everywhere a checkpoint does (gqn eval, gqn sample, load_model).",
    )
    p.add_argument("checkpoint", help="checkpoint file or run directory (latest checkpoint)")
    p.add_argument("out", help="output file, e.g. sm-32.pt (a .sha256 sidecar is written too)")
    p.add_argument("--fp32", action="store_true", help="keep fp32 weights (twice the size)")
    p.set_defaults(handler=_export)
