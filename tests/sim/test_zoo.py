"""The held-out zoo: fixed by its file and seed, outside the training ranges, and the same device everywhere."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sensorimotor.configs.schema import ConfigError, load_section
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.zoo import devices, load_zoo, training_span, with_values


@pytest.fixture(scope="module")
def base() -> DeviceConfig:
    return load_section(None, "device", DeviceConfig)


def test_same_devices_every_call(base: DeviceConfig) -> None:
    spec = load_zoo()
    assert devices(spec, base) == devices(spec, base)


def test_count_names_and_outside(base: DeviceConfig) -> None:
    spec = load_zoo()
    zoo = devices(spec, base)
    assert len(zoo) == spec.count + len(spec.named) >= 20
    assert len({d.name for d in zoo}) == len(zoo)
    assert {"damping-x4", "vendor-damping", "identified-motor"} <= {d.name for d in zoo}
    for d in zoo[len(spec.named) :]:
        assert len(d.outside) >= spec.min_outside, d.name
    # the published disagreement is covered: damping over a decade, motor constants +-50 %
    dp = [d.factors["device.physics.Dp"] for d in zoo if "device.physics.Dp" in d.values]
    assert max(dp) / min(dp) > 10


def test_outside_means_outside_the_randomization(base: DeviceConfig) -> None:
    lo, hi = training_span(base, "device.physics.Dp")
    assert lo == pytest.approx(base.physics.Dp * (1 - base.randomization.damping))
    assert hi == pytest.approx(base.physics.Dp * (1 + base.randomization.damping))
    assert training_span(base, "device.randomization.action_delay_substeps") == (0, 8)
    for d in devices(load_zoo(), base):
        for path in d.outside:
            applied = d.apply(base)
            node = applied
            for k in path.split(".")[1:]:
                node = getattr(node, k)
            value = (min(node), max(node)) if isinstance(node, tuple) else (node, node)
            t_lo, t_hi = training_span(base, path)
            assert value[0] < t_lo or value[1] > t_hi, (d.name, path)


def test_set_args_make_the_same_device(base: DeviceConfig) -> None:
    """The twin gets the device through --set: the config it builds equals the one the simulator runs."""
    for d in devices(load_zoo(), base)[:6]:
        via_set = load_section(None, "device", DeviceConfig, overrides=d.set_args())
        assert via_set == d.apply(base), d.name


def test_bad_zoo_files_are_refused(tmp_path, base: DeviceConfig) -> None:
    bad = tmp_path / "zoo.yaml"
    bad.write_text("seed: 1\ncount: 2\ndraw:\n  device.physics.Dq: {factor: [0.5, 2]}\n")
    with pytest.raises(ConfigError, match="Dq"):
        devices(load_zoo(bad), base)
    bad.write_text("seed: 1\ndraw:\n  device.physics.Dp: {factor: [0, 2]}\n")
    with pytest.raises(ConfigError, match="low must be > 0"):
        load_zoo(bad)
    bad.write_text("seed: 1\ncuont: 3\n")
    with pytest.raises(ConfigError, match="cuont"):
        load_zoo(bad)
    with pytest.raises(ConfigError, match="did you mean 'Dp'"):
        with_values(base, {"device.physics.Dpp": 1.0})


def test_values_are_validated_like_a_config(base: DeviceConfig) -> None:
    with pytest.raises(ConfigError, match="device.physics.Rm"):
        with_values(base, {"device.physics.Rm": -1.0})
    assert with_values(base, {"device.physics.Dp": 0.0002}) == dataclasses.replace(
        base, physics=dataclasses.replace(base.physics, Dp=0.0002)
    )


def test_widening_the_training_does_not_move_the_zoo(base: DeviceConfig) -> None:
    """The draws depend on the nominal values only; what is outside follows the run's ranges."""
    wide = dataclasses.replace(base, randomization=dataclasses.replace(base.randomization, damping=0.99, motor=0.9))
    a, b = devices(load_zoo(), base), devices(load_zoo(), wide)
    assert [d.values for d in a] == [d.values for d in b]
    assert sum(len(d.outside) for d in b) < sum(len(d.outside) for d in a)
    adapted = devices(load_zoo(), base, training=wide)  # a run adapted from base's: base's zoo, its own ranges
    assert [d.values for d in adapted] == [d.values for d in a] and [d.outside for d in adapted] == [
        d.outside for d in b
    ]


def test_wide_groups_draw_log_uniformly_and_a_narrow_spread_past_1_is_refused() -> None:
    from sensorimotor.configs.schema import ConfigError
    from sensorimotor.sim.config import DeviceConfig
    from sensorimotor.sim.device import FurutaSim
    from sensorimotor.sim.zoo import training_span, with_values

    base = DeviceConfig()
    wide = with_values(base, {"device.randomization.damping": 11.0, "device.randomization.wide": ["damping"]})
    sim = FurutaSim(wide, 4000, seed=3, camera=False)
    sim.reset()
    factor = np.log(sim.params.Dp / base.physics.Dp)
    assert factor.min() >= np.log(1 / 12) - 1e-9 and factor.max() <= np.log(12) + 1e-9
    assert abs(np.median(factor)) < 0.15 and np.mean(factor < np.log(1 / 4)) > 0.2  # log-uniform, not uniform
    lo, hi = training_span(wide, "device.physics.Dp")
    assert lo == pytest.approx(base.physics.Dp / 12) and hi == pytest.approx(base.physics.Dp * 12)
    narrow = FurutaSim(base, 8, seed=3, camera=False)
    narrow.reset()
    assert np.all(np.abs(narrow.params.Dp / base.physics.Dp - 1) <= 0.5)
    with pytest.raises(ConfigError, match="list 'damping' under wide"):
        with_values(base, {"device.randomization.damping": 3.0})
    with pytest.raises(ConfigError, match="'dampin' is not a group"):
        with_values(base, {"device.randomization.wide": ["dampin"]})
    assert dataclasses.replace(base.randomization, wide=()) == base.randomization
