"""The wheel's package list covers every package in the source tree.

pyproject.toml lists the packages by hand (the product's folders install under the
``sensorimotor`` namespace through ``package-dir``); a subpackage missing from the list works in
an editable checkout and is absent from the wheel. ``control/sweep`` was, for one stop.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_source_package_is_in_the_wheel() -> None:
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    roots = {folder: name for name, folder in setup["package-dir"].items()}
    found = set()
    for folder, name in roots.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]))
    assert found == set(setup["packages"]), (
        f"add to [tool.setuptools] packages: {sorted(found - set(setup['packages']))}"
    )
