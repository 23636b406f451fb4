"""The command lines' shared parts: shortcut flags become `--set` items, after the user's own."""

from __future__ import annotations

import pytest

from sensorimotor.cli.common import overrides
from sensorimotor.cli.sim import build_parser


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["train", "--set", "rl.gamma=0.9", "--seed", "0", "--algo", "sac"], ["rl.gamma=0.9", "seed=0", "rl.algo=sac"]),
        (["train", "--env", "Pendulum-v1", "--init", "scratch"], ["rl.env=Pendulum-v1", "perception.init=scratch"]),
        (["train"], []),
        (["pretrain", "--objective", "forecast", "--seed", "2"], ["seed=2", "pretrain.imu_objective=forecast"]),
        (["finetune", "--freeze", "linear", "--seed", "1"], ["perception.freeze=linear", "seed=1"]),
    ],
)
def test_shortcut_flags_are_set_items_after_the_users_own(argv: list[str], expected: list[str]) -> None:
    assert overrides(build_parser().parse_args(argv)) == expected


def test_every_shortcut_says_which_field_it_sets() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():  # type: ignore[union-attr]
        for dest, path in (command.get_default("shortcuts") or {}).items():
            action = next(a for a in command._actions if a.dest == dest)
            assert f"--set {path}=" in (action.help or ""), (name, dest)
