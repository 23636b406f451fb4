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


MOST_LEFT = 0.5  # a fit that removes less than half the mismatch at the config's values misses something
MORE_FREE = ("kt", "km", "Lp", "mp", "coulomb_r")  # suggested next, in order: motor, pendulum, friction


def failure_advice(r: Identified) -> str | None:
    """None when the fit identified something; else one line: what went wrong and what to do."""
    if r.converged and any(v == "" for v in r.identifiable.values()):
        return None
    said = f"weighted RMS {r.rms_after:.3f}, at the config's values {r.rms_before:.3f}"
    if r.converged and r.rms_after > MOST_LEFT * r.rms_before:
        free = ",".join(r.values)
        wider = ",".join([*r.values, *(n for n in MORE_FREE if n not in r.values)])
        return (f"with {free} free the fit left most of the mismatch ({said}), so the device differs in values "
                f"that are not free; free more, e.g. --free {wider} (docs/sim-to-real.md says which the signals "
                "can tell apart); nothing written")  # fmt: skip
    return (f"the fit did not converge to anything this log identifies ({said}); nothing written. Record a "
            "longer excitation (hw excite --duration 60) with the pendulum hanging at rest at the start")  # fmt: skip


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
