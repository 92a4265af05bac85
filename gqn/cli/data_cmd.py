"""``gqn data``: generate, convert, inspect and preview scene datasets."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

PARAM_PREFIX = "param_"
# Short aliases for family parameters (the command uses ``--size``).
ALIASES = {"image_size": ["--size"]}
SHORT_NAMES = {"image_size": "size"}


def _families() -> dict[str, type]:
    from gqn.data.scenes import FAMILIES

    return FAMILIES


def _make_family(name: str, **params: Any) -> Any:
    from gqn.data.scenes import make_family

    return make_family(name, **params)


def _parse_bool(s: str) -> bool:
    low = s.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {s!r}")


def _arg_type(tp: Any):
    """argparse ``type=`` for a dataclass field type (also given as a string annotation)."""
    name = tp if isinstance(tp, str) else getattr(tp, "__name__", str(tp))
    scalars = {"int": int, "float": float, "str": str, "bool": _parse_bool}
    if name in scalars:
        return scalars[name]
    text = str(tp)
    if text.startswith(("tuple[", "list[")):  # comma-separated items: --shapes cube,sphere
        item = scalars.get(text.split("[", 1)[1].split(",")[0].rstrip("]").strip(), str)
        return lambda s: tuple(item(x) for x in s.split(",") if x)
    return yaml.safe_load


def _family_fields(family: type) -> dict[str, dataclasses.Field]:
    """The parameters of one family: its dataclass init fields."""
    if not dataclasses.is_dataclass(family):
        return {}
    return {f.name: f for f in dataclasses.fields(family) if f.init and not f.name.startswith("_")}


class _IntermixedParser(argparse.ArgumentParser):
    """A parser whose positionals may follow its options, as in
    ``gqn data generate shepard-metzler --parts 7 data/sm7`` (plain argparse binds the optional
    ``out`` to nothing before the options and then rejects ``data/sm7``)."""

    _intermixing = False

    def parse_known_args(self, args=None, namespace=None):
        if self._intermixing:  # parse_known_intermixed_args calls back in here
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def _add_generate(sub: argparse._SubParsersAction) -> None:
    families = _families()
    p = sub.add_parser(
        "generate",
        help="render a procedural dataset (resumable)",
        description="Render scenes of a procedural family into a scene store. "
        "Re-running the same command resumes an interrupted run. "
        "`gqn data generate FAMILY --help` lists that family's parameters.",
    )
    by_family = p.add_subparsers(
        dest="family", required=True, metavar="FAMILY", parser_class=_IntermixedParser
    )
    for family_name, cls in sorted(families.items()):
        f_parser = by_family.add_parser(
            family_name,
            help=f"render {family_name} scenes",
            description=f"Render {family_name} scenes into a scene store (resumable).",
        )
        f_parser.add_argument(
            "out", nargs="?", help="output directory (default data/<family>-<params>)"
        )
        f_parser.add_argument("--scenes", type=int, default=1000, help="number of scenes")
        f_parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
        f_parser.add_argument("--shard-size", type=int, default=1000, help="scenes per shard")
        f_parser.add_argument("--batch", type=int, default=32, help="scenes rendered per call")
        f_parser.add_argument("--device", default=None, help="render device, e.g. cuda")
        f_parser.add_argument(
            "--workers",
            type=int,
            default=1,
            help="CPU processes rendering whole shards in parallel (the store is the same)",
        )
        g = f_parser.add_argument_group(f"{family_name} parameters")
        for name, f in _family_fields(cls).items():
            flags = [f"--{name.replace('_', '-')}", *ALIASES.get(name, [])]
            g.add_argument(
                *flags,
                dest=PARAM_PREFIX + name,
                type=_arg_type(f.type),
                default=None,
                metavar=name.upper(),
                help=f.metadata.get("help", ""),
            )
        f_parser.set_defaults(handler=_generate)


def default_out(family: str, params: dict[str, Any], seed: int) -> Path:
    """``data/<family>-<name><value>...`` from the explicitly given parameters."""
    named = sorted((SHORT_NAMES.get(k, k).replace("_", "-"), v) for k, v in params.items())
    parts = [f"{k}{v}" for k, v in named]
    if seed:
        parts.append(f"seed{seed}")
    return Path("data") / "-".join([family, *parts])


def _generate(args: argparse.Namespace) -> int:
    from gqn.data.generate import generate_dataset

    params = {
        k[len(PARAM_PREFIX) :]: v
        for k, v in vars(args).items()
        if k.startswith(PARAM_PREFIX) and v is not None
    }
    _positive(args, "scenes", "shard_size", "batch", "workers")
    device = _render_device(args.device)
    family = _make_family(args.family, **params)
    out = Path(args.out) if args.out else default_out(args.family, params, args.seed)
    generate_dataset(
        family,
        out,
        args.scenes,
        seed=args.seed,
        shard_scenes=args.shard_size,
        batch=args.batch,
        device=device,
        workers=args.workers,
    )
    print(f"wrote {out}")
    _print_info(out)
    return 0


def _positive(args: argparse.Namespace, *names: str) -> None:
    """Refuse a count option below 1, naming the flag."""
    for name in names:
        if getattr(args, name) < 1:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} must be >= 1, got {getattr(args, name)}")


def _render_device(name: str | None) -> str | None:
    """``--device`` checked: a torch CPU or CUDA device, CUDA only where there is a GPU."""
    if name is None:
        return None
    import torch

    try:
        kind = torch.device(name).type
    except RuntimeError:
        kind = None
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"--device {name!r}: scenes render on cpu or cuda (e.g. cuda:0)")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"--device {name}: no CUDA GPU is available; leave --device out to render on the CPU"
        )
    return name


def _add_convert(sub: argparse._SubParsersAction) -> None:
    from gqn.data.deepmind import DATASETS

    p = sub.add_parser(
        "convert-deepmind",
        help="convert DeepMind gqn-datasets TFRecords",
        description="Convert <dataset>/{train,test}/*.tfrecord (or one directory "
        "of *.tfrecord) to scene stores, keeping the JPEG bytes. "
        "Resumable per source file.",
    )
    p.add_argument("src", help="DeepMind dataset directory (or one split directory)")
    p.add_argument("dst", help="output directory (gets train/ and test/)")
    p.add_argument(
        "--dataset",
        choices=sorted(DATASETS),
        default=None,
        help="dataset name (default: inferred from SRC's name)",
    )
    p.add_argument("--workers", type=int, default=1, help="parallel processes (one per file)")
    p.add_argument("--shard-size", type=int, default=1000, help="max scenes per shard file")
    p.set_defaults(handler=_convert)


def _convert(args: argparse.Namespace) -> int:
    from gqn.data.deepmind import convert_deepmind

    _positive(args, "workers", "shard_size")
    out = convert_deepmind(
        args.src, args.dst, args.dataset, workers=args.workers, shard_scenes=args.shard_size
    )
    for path in out.values():
        _print_info(path)
    return 0


def _stores(path: Path) -> list[Path]:
    """The store(s) at ``path``: itself, or its train/test sub-stores."""
    from gqn.data.dataset import sub_stores
    from gqn.data.manifest import MANIFEST

    subs = list(sub_stores(path).values())
    return subs if subs and not (path / MANIFEST).exists() else [path]


def _print_info(path: Path, verify: bool = False) -> int:
    from gqn.data.manifest import bytes_per_image
    from gqn.data.store import SceneStore

    bad = 0
    for root in _stores(Path(path)):
        store = SceneStore(root, verify=False)
        m = store.manifest
        h, w = m.image_size
        bpi = bytes_per_image(m)
        raw = h * w * 3
        src = ", ".join(f"{k}={v}" for k, v in m.source.items())
        print(f"{root}:")
        print(f"  source       {src}")
        print(
            f"  scenes       {m.num_scenes}"
            + ("" if m.complete else f" (incomplete; target {m.target_scenes})")
        )
        print(f"  views        {m.views} per scene, {h}x{w} {m.codec}")
        print(f"  shards       {len(m.shards)}, format version {m.format_version}")
        print(f"  on disk      {store.bytes_on_disk() / 1e6:.2f} MB")
        print(f"  per image    {bpi:.0f} bytes (raw uint8 {raw}; ratio {bpi / raw:.3f})")
        if verify:
            errors = store.verify_all()
            for e in errors:
                print(f"  BAD          {e}")
            print(f"  verify       {'OK' if not errors else f'{len(errors)} bad shard(s)'}")
            bad += len(errors)
    return 1 if bad else 0


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="summarise a dataset (and verify checksums)")
    p.add_argument("path", help="dataset directory")
    p.add_argument(
        "--verify", action="store_true", help="check every shard's sha256 and record crc32c"
    )
    p.set_defaults(handler=lambda a: _print_info(Path(a.path), a.verify))


def _add_show(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="write a contact sheet PNG (rows scenes, columns views)")
    p.add_argument("path", help="dataset directory")
    p.add_argument("--scenes", type=int, default=4, help="rows (first N scenes)")
    p.add_argument("--views", type=int, default=8, help="columns (first N views)")
    p.add_argument("--first", type=int, default=0, help="index of the first scene")
    p.add_argument("--out", default="sheet.png", help="output PNG (default sheet.png)")
    p.set_defaults(handler=_show)


def _show(args: argparse.Namespace) -> int:
    from gqn.data.store import SceneStore
    from gqn.viz.contact_sheet import contact_sheet

    if args.first < 0:
        raise ValueError(f"--first must be >= 0 (a scene index), got {args.first}")
    _positive(args, "scenes", "views")
    store = SceneStore(_stores(Path(args.path))[0])
    last = min(len(store), args.first + args.scenes)
    if last <= args.first:
        raise ValueError(f"{args.path}: no scenes from index {args.first} (has {len(store)})")
    views = list(range(min(args.views, store.views)))
    rows = np.stack([store.read(i, views)[0] for i in range(args.first, last)])
    contact_sheet(rows).save(args.out)
    print(f"wrote {args.out} ({rows.shape[0]} scenes x {rows.shape[1]} views)", file=sys.stdout)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="datasets: generate, convert-deepmind, info, show")
    sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    _add_generate(sub)
    _add_convert(sub)
    _add_info(sub)
    _add_show(sub)
