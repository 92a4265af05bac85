from dataclasses import dataclass, field
from typing import Any

import pytest

from gqn.models import GQNConfig
from gqn.typed_config import ConfigError, apply_overrides, from_dict, load_yaml, save_yaml, to_dict


@dataclass
class Inner:
    steps: int = 3
    rate: float = 0.5
    names: tuple[str, ...] = ("a",)


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    model: GQNConfig = field(default_factory=GQNConfig)
    path: str | None = None
    flag: bool = False
    extra: Any = field(default_factory=dict)


def test_yaml_round_trip(tmp_path):
    cfg = Outer(inner=Inner(steps=7, names=("x", "y")), path="runs", flag=True)
    save_yaml(cfg, tmp_path / "c.yaml")
    assert load_yaml(Outer, tmp_path / "c.yaml") == cfg
    assert not list(tmp_path.glob(".*tmp"))


def test_unknown_key_suggests():
    with pytest.raises(
        ConfigError, match=r"unknown config key 'inner.stpes'.*did you mean 'steps'"
    ):
        from_dict(Outer, {"inner": {"stpes": 3}})
    with pytest.raises(ConfigError, match="did you mean 'num_steps'"):
        apply_overrides(Outer(), ["model.num_step=4"])


def test_wrong_types_named():
    with pytest.raises(ConfigError, match=r"inner\.steps: expected an integer"):
        from_dict(Outer, {"inner": {"steps": "many"}})
    with pytest.raises(ConfigError, match="flag: expected true/false"):
        from_dict(Outer, {"flag": "yes please"})
    with pytest.raises(ConfigError, match="not one of"):
        apply_overrides(Outer(), ["model.representation=transformer"])


def test_overrides_parse_yaml_scalars():
    cfg = apply_overrides(
        Outer(),
        ["inner.rate=1e-3", "flag=true", "model.num_steps=4", "path=null", "inner.names=[p, q]"],
    )
    assert cfg.inner.rate == 1e-3 and cfg.flag is True and cfg.model.num_steps == 4
    assert cfg.path is None and cfg.inner.names == ("p", "q")
    assert to_dict(cfg)["inner"]["names"] == ["p", "q"]


def test_overrides_may_add_keys_below_free_form_mappings():
    cfg = apply_overrides(Outer(), ["extra.parts=3", "extra.camera.radius=2.5"])
    assert cfg.extra == {"parts": 3, "camera": {"radius": 2.5}}
    with pytest.raises(ConfigError, match=r"unknown config key 'inner\.parts'"):
        apply_overrides(Outer(), ["inner.parts=3"])
    with pytest.raises(ConfigError, match="parent is not a mapping"):
        apply_overrides(Outer(), ["inner.steps.deeper=3"])


def test_invalid_values_reach_dataclass_validation():
    with pytest.raises(ConfigError, match="multiple of 8"):
        apply_overrides(Outer(), ["model.image_size=50"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(Outer(), ["model.image_size"])


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(Outer, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("inner: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(Outer, bad)


def test_switching_model_name_drops_the_old_models_fields_and_names_its_settings(caplog):
    from gqn.models import ProjectiveGQNConfig
    from gqn.run_config import RunConfig

    cfg = apply_overrides(RunConfig(), ["model.name=gqn-projective", "model.r_channels=32"])
    assert isinstance(cfg.model, ProjectiveGQNConfig)
    back = apply_overrides(cfg, ["model.name=gqn"])  # num_depths etc. held their defaults
    assert type(back.model) is GQNConfig and back.model.r_channels == 32
    assert not caplog.records
    tuned = apply_overrides(cfg, ["model.num_depths=8"])
    back = apply_overrides(tuned, ["model.name=gqn"])  # e.g. configs/demo.yaml's paper twin
    assert type(back.model) is GQNConfig and back.model.r_channels == 32
    assert "'model.name' drops model.num_depths = 8 (not keys of GQNConfig)" in caplog.text
    with pytest.raises(ConfigError, match=r"unknown config key 'model\.num_depths'"):
        apply_overrides(tuned, ["model.name=gqn", "model.num_depths=8"])
