"""What ``sim identify`` prints and writes: a table of the fit, device.yaml and its JSON record."""

from __future__ import annotations

import json
from pathlib import Path

from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device_file import write_device_file
from sensorimotor.sim.identify import Identified


def report_lines(r: Identified) -> list[str]:
    """One line per parameter (value, x config, uncertainty, identifiable or why not) and the fit's figures."""
    lines = [f"  {'parameter':<20} {'identified':>12} {'x config':>9} {'+-1 sigma':>10}  "]
    for name, value in r.values.items():
        why = r.identifiable[name]
        lines.append(
            f"  device.physics.{name:<5} {value:12.4g} {value / r.nominal[name]:8.2f}x {r.rel_std[name]:9.1%}  "
            + ("identified" if not why else f"NOT identifiable: {why}")
        )
    lines.append(
        f"  actuator delay {r.delay_substeps} substeps; weighted RMS residual {r.rms_after:.4f} "
        f"(config's values {r.rms_before:.4f}); {r.evaluations} simulations in {r.seconds:.0f} s"
    )
    return lines


def write_result(r: Identified, out: Path, log: Path, device: DeviceConfig) -> None:
    """device.yaml (identifiable values only) and device.json (everything)."""
    values = {f"device.physics.{n}": float(f"{v:.6g}") for n, v in r.values.items() if not r.identifiable[n]}
    header = (
        f"Identified by `sim identify {log}` from an excitation log, in the model of device {device.name!r}.\n"
        "Only the parameters the log identifies are set; the rest stay at the config's values.\n"
        "Use: sim robustness RUN --device THIS_FILE"
    )
    record = {
        "log": str(log),
        "device": device.name,  # sim train --from refuses a run of another device
        "rel_std": {n: round(s, 4) for n, s in r.rel_std.items()},
        "not_identifiable": {n: why for n, why in r.identifiable.items() if why},
        "actuator_delay_substeps": r.delay_substeps,
        "rms_residual": round(r.rms_after, 5),
        "rms_residual_config": round(r.rms_before, 5),
    }
    write_device_file(out, values, record, header)
    out.with_suffix(".json").write_text(json.dumps(r.as_dict(), indent=2))
