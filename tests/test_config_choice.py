"""A config section whose ``type`` key picks its class: registered, from an entry point, by module or file path."""

from __future__ import annotations

import importlib
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from sensorimotor.configs.schema import Choice, ConfigError, build, doc, to_dict

GROUP = "sensorimotor.test_gadgets"


@dataclass(frozen=True)
class Gadget(Choice, registry=GROUP, default="lamp"):
    name: str = doc("Its name.", "gadget")


@Gadget.register_subclass("lamp")
@dataclass(frozen=True)
class Lamp(Gadget):
    watts: float = doc("Power (W).", 5.0, gt=0)


@Gadget.register_subclass("fan")
@dataclass(frozen=True)
class Fan(Gadget):
    blades: int = doc("Blade count.", 3, ge=2)


def _module(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


PLUGIN = """
    from dataclasses import dataclass
    from sensorimotor.configs.schema import doc
    from test_config_choice import Gadget

    @dataclass(frozen=True)
    class Heater(Gadget):
        celsius: float = doc("Set point.", 20.0)
    """


def test_the_type_key_picks_the_class_and_the_default_applies_without_it() -> None:
    fan = build(Gadget, {"type": "fan", "blades": 5}, prefix="gadget")
    assert isinstance(fan, Fan) and fan.blades == 5 and fan.type_name == "fan"
    assert type(build(Gadget, {}, prefix="gadget")) is Lamp
    assert to_dict(fan) == {"type": "fan", "name": "gadget", "blades": 5}
    assert build(Gadget, to_dict(fan)) == fan  # a written config reads back as the same class


def test_a_field_of_another_choice_is_refused_by_its_own_name() -> None:
    with pytest.raises(ConfigError, match="gadget.watts: unknown field"):
        build(Gadget, {"type": "fan", "watts": 3}, prefix="gadget")


def test_an_unknown_type_names_the_known_ones_and_how_to_add_one() -> None:
    with pytest.raises(ConfigError) as exc:
        build(Gadget, {"type": "lmap"}, source="cfg.yaml", prefix="gadget")
    text = str(exc.value)
    assert text.startswith("cfg.yaml: gadget.type: unknown 'lmap' (did you mean 'lamp'?")
    assert "fan, lamp" in text and GROUP in text and "module:Class" in text


def test_a_module_path_loads_a_subclass_and_registers_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _module(tmp_path, "heater_plugin", PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    heater = build(Gadget, {"type": "heater_plugin:Heater", "celsius": 45}, prefix="gadget")
    assert type(heater).__name__ == "Heater" and heater.celsius == 45.0
    assert to_dict(heater)["type"] == "heater_plugin:Heater"


def test_a_file_path_loads_a_device_that_lives_in_a_folder(tmp_path: Path) -> None:
    path = _module(tmp_path, "my_heater", PLUGIN)
    heater = build(Gadget, {"type": f"{path}:Heater"}, prefix="gadget")
    assert type(heater).__name__ == "Heater" and heater.celsius == 20.0


def test_an_entry_point_of_an_installed_package_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real distribution's metadata on sys.path (what pip writes), declaring the plug-in in the group."""
    _module(tmp_path, "gadget_pkg", PLUGIN)
    info = tmp_path / "gadget_pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gadget-pkg\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\nheater = gadget_pkg:Heater\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert "heater" in Gadget.choices()
    heater = build(Gadget, {"type": "heater"}, prefix="gadget")
    assert type(heater).__name__ == "Heater" and heater.type_name == "heater"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("no_such_module_xyz:Thing", "cannot import no_such_module_xyz (ModuleNotFoundError"),
        ("sensorimotor.configs.schema:Nothing", "sensorimotor.configs.schema has no 'Nothing'"),
        ("sensorimotor.configs.schema:Section", "not a subclass of Gadget"),
        ("/nonexistent/dev.py:Thing", "no such file /nonexistent/dev.py"),
    ],
)
def test_a_plugin_that_cannot_be_loaded_is_named(target: str, expected: str) -> None:
    with pytest.raises(ConfigError, match="gadget.type: ") as exc:
        build(Gadget, {"type": target}, prefix="gadget")
    assert expected in str(exc.value)


def test_a_subclass_refuses_another_type_and_a_name_is_registered_once() -> None:
    with pytest.raises(ConfigError, match="gadget.type: 'fan' is not a 'lamp' section, the only kind read here"):
        build(Lamp, {"type": "fan"}, prefix="gadget")
    with pytest.raises(ConfigError, match="gadget.type: unknown 'fna' .did you mean 'fan'"):
        build(Lamp, {"type": "fna"}, prefix="gadget")
    assert type(build(Lamp, {"type": "lamp"})) is Lamp
    with pytest.raises(ValueError, match="'fan' is already registered"):
        Gadget.register_subclass("fan")(Lamp)
