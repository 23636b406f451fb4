"""``sim train --from RUN --device device.yaml``: a run's controller fine-tuned on an identified device.

The run's config with the device file's values (and any ``--set``) applied is the new centre.
The run's randomization spreads are multipliers of the nominal values, so training now draws
devices around the identified one. Perception is the run's (frozen; re-measured on the new
device); the controller continues from the run's last checkpoint for ``steps`` more steps; then
evaluation, export, ONNX parity and the held-out zoo, as for any run (:func:`control.train.run`).

Everything here is checked before anything is written: a run that is not a device run, a
device file made for another device, a ``--set`` that changes the task or what the device
reports (sensor shapes, rates, actuator range) is refused with :class:`AdaptError`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sensorimotor.control.checkpoints import Checkpoint, ResumeError, find, identity
from sensorimotor.control.config import DEVICE_ENV, ExperimentConfig, load_experiment
from sensorimotor.sim.device_file import identified_device, read_device_file
from sensorimotor.sim.zoo import with_values

DEFAULT_STEPS = 1_000_000  # about 2-3 min of PPO on 2 cores: the adapted run stays within 5 min in all


class AdaptError(Exception):
    """A run cannot be adapted as asked; the message names the mismatch and what to do."""


@dataclass(frozen=True)
class Adaptation:
    """What ``sim train --from`` trains: the adapted config, the checkpoint it starts from, where it came from."""

    source: Path
    cfg: ExperimentConfig
    checkpoint: Checkpoint
    values: dict[str, Any]  # the device file's values by path
    provenance: str


def prepare(run: Path, device_file: Path | None, overrides: list[str], steps: int) -> Adaptation:
    """The adaptation of ``run`` to ``device_file`` (and ``overrides``); AdaptError, or ConfigError for a bad file."""
    if steps <= 0:
        raise AdaptError(f"--steps {steps}: give a positive number of training steps (default {DEFAULT_STEPS})")
    for name in ("config.yaml", "perception.pt"):
        if not (run / name).is_file():
            raise AdaptError(f"--from {run}: not a sim train run folder of a device ({name} missing)")
    base = load_experiment(run / "config.yaml")
    if base.rl.env != DEVICE_ENV:
        raise AdaptError(f"--from {run}: a Gymnasium run (rl.env={base.rl.env}) has no device to adapt to")
    values = read_device_file(device_file) if device_file is not None else {}
    if device_file is not None:
        made_for = identified_device(device_file)
        if made_for is not None and made_for != base.device.name:
            raise AdaptError(
                f"{device_file} was identified for device {made_for!r}, but {run} drives {base.device.name!r}: "
                "identify a log of this device, or adapt a run of that one"
            )
    cfg = load_experiment(run / "config.yaml", None, overrides)
    cfg = dataclasses.replace(cfg, device=with_values(cfg.device, values, source=str(device_file)))
    if cfg.task.name != base.task.name:
        raise AdaptError(
            f"--from {run}: the run was trained for task {base.task.name!r}, not {cfg.task.name!r}; "
            "adapt it to its own task, or train a new run for that one"
        )
    if cfg.device.spec() != base.device.spec():
        raise AdaptError(
            f"the adapted device reports other sensors, rates or actuator range than {run}'s "
            "(its DESCRIBE would differ): a run adapts to new physics only; train a new run for that device"
        )
    have, want = identity(base.rl), identity(cfg.rl)
    changed = [f"{k}: checkpoint {have[k]!r}, config {v!r}" for k, v in want.items() if have[k] != v]
    if changed:  # the --set's fault, told apart from a run whose checkpoint does not match its own config
        raise AdaptError(
            f"cannot adapt {run} with these --set: they change its policy ({'; '.join(changed)}); drop them"
        )
    try:
        ckpt = find(run, cfg.rl)
    except ResumeError as exc:
        raise AdaptError(f"cannot adapt {run}: {exc}") from None
    cfg = dataclasses.replace(cfg, rl=dataclasses.replace(cfg.rl, total_timesteps=ckpt.steps + steps))
    provenance = (
        f"Adapted by `sim train --from {run}`" + (f" --device {device_file}" if device_file else "")
        + "".join(f" --set {o}" for o in overrides)
        + f": {run}'s controller after {ckpt.steps} steps, {steps} more on this device.\n"
        "Trains from scratch as it is: sim train --config THIS_FILE (without the checkpoint it started from)."
    )  # fmt: skip
    return Adaptation(run, cfg, ckpt, values, provenance)
