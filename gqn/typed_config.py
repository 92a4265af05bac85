"""Typed configs: dataclasses that load from and save to YAML, with ``key=value`` overrides.

Every config in the project is a (nested) dataclass. :func:`from_dict` checks each key and type
and names the offending key with a "did you mean" suggestion; :func:`apply_overrides` takes
command-line strings like ``model.num_steps=8`` whose values are parsed as YAML scalars.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from gqn.io import atomic_write

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ConfigError(ValueError):
    """A config key, value or file that cannot be used; the message says which and why."""


def _suggest(key: str, options: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _concrete(tp: Any, value: Any) -> Any:
    """The dataclass a mapping ``value`` builds for field type ``tp``: ``tp`` itself, or, for a
    polymorphic config (a class with ``config_class_for``, e.g. the model config chosen by
    ``model.name``), the class the mapping names."""
    if isinstance(value, dict) and hasattr(tp, "config_class_for"):
        try:
            return tp.config_class_for(value)
        except ValueError as e:
            raise ConfigError(str(e)) from e
    return tp


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: cannot be {value!r}")
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{where}: {value!r} is not one of {list(allowed)}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        tp = _concrete(tp, value)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, prefix=f"{where}.")
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            pairs = enumerate(zip(args, value, strict=True))
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (a, v) in pairs)
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported config type {tp!r}")


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, checking every key and type."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in names:
            raise ConfigError(f"unknown config key '{prefix}{key}'{_suggest(key, names)}")
    kwargs = {k: _coerce(v, hints[k], f"{prefix}{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {e}") from e


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain YAML-ready dict of a (nested) dataclass; tuples become lists."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        return v

    return plain(cfg)


def apply_overrides(cfg: T, overrides: typing.Sequence[str]) -> T:
    """Return a copy of ``cfg`` with ``dotted.key=value`` overrides (values read as YAML)."""
    data = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key=value, e.g. model.num_steps=8")
        dotted, raw = item.split("=", 1)
        node, tp = data, type(cfg)
        parts = dotted.split(".")
        for depth, part in enumerate(parts):
            where = ".".join(parts[: depth + 1])
            parent = concrete = None
            if dataclasses.is_dataclass(tp):
                parent, tp = tp, _concrete(tp, node)
                concrete = tp
                hints = typing.get_type_hints(tp)
                if part not in hints:
                    raise ConfigError(f"unknown config key '{where}'{_suggest(part, hints)}")
                tp = hints[part]
            elif not isinstance(node, dict):
                raise ConfigError(f"config key '{where}': its parent is not a mapping")
            # below a free-form mapping field (dict / Any) new keys are allowed
            if depth == len(parts) - 1:
                node[part] = _parse_value(dotted, raw)
                if parent is not None and _concrete(parent, node) is not concrete:
                    _retype(node, concrete, _concrete(parent, node), dotted)
            else:
                node = node.setdefault(part, {})
    return from_dict(type(cfg), data)


def _retype(node: dict, old: type, new: type, dotted: str) -> None:
    """An override that switches a polymorphic config (``model.name=gqn`` on a
    ``gqn-projective`` config) drops the old class's fields the new one lacks; those not at the
    old class's defaults are named in a warning (they were settings of the other model)."""
    keep = {f.name for f in dataclasses.fields(new)}
    defaults = to_dict(old())
    where = dotted.rsplit(".", 1)[0]
    dropped = [
        f"{where}.{key} = {node[key]!r}"
        for key in node
        if key not in keep and node[key] != defaults.get(key)
    ]
    for key in [k for k in node if k not in keep]:
        del node[key]
    if dropped:
        logger.warning("'%s' drops %s (not keys of %s)", dotted, ", ".join(dropped), new.__name__)


def _parse_value(key: str, raw: str) -> Any:
    """The YAML value of override ``key=raw``; ConfigError (one line) if it is not YAML."""
    if raw == "":
        return ""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(
            f"'{key}={raw}': the value is not valid YAML ({problem}); quote it or fix it, "
            "e.g. model.num_steps=8 or 'key=[1, 2]'"
        ) from e


def load_yaml(cls: type[T], path: str | os.PathLike[str]) -> T:
    """Load dataclass ``cls`` from a YAML file; missing keys take their defaults."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {path} is a directory; pass a YAML file")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        problem = " ".join(str(e).split())
        raise ConfigError(f"config file {path} is not valid YAML: {problem}") from e
    try:
        return from_dict(cls, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


def save_yaml(cfg: Any, path: str | os.PathLike[str]) -> None:
    """Write ``cfg`` to ``path`` atomically (:func:`gqn.io.atomic_write`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        f.write(yaml.safe_dump(to_dict(cfg), sort_keys=False).encode())
