"""Which of a zoo device's values break a run's controller: each group alone, and all but each group.

For every named zoo device (``--devices``, default: those the run fails), the run's
``policy.onnx`` is scored in simulation on the device, on each group of its values alone
(motor, damping, inertia, friction, latency, sensors) with the rest at the config's values, and
on the device with one group reset. Every variant runs in one batched simulation, as ``sim
train`` scores the zoo. A group that fails alone, or whose reset makes the device pass, is
where the policy breaks.

    python -m benchmarks.bench_zoo_ablate runs/quick [--devices zoo-23,zoo-14] [--episodes 10]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.common import zoo_selection
from sensorimotor.control.config import load_experiment
from sensorimotor.control.evaluate import onnx_policy
from sensorimotor.control.heldout import PASS_RATE, score_device, score_devices
from sensorimotor.sim.zoo import ZooDevice, devices, load_zoo, with_values

# a value's group, by the last part of its config path
GROUPS: dict[str, tuple[str, ...]] = {
    "motor": ("Rm", "kt", "km"),
    "damping": ("Dr", "Dp"),
    "inertia": ("mr", "mp", "Lr", "Lp"),
    "friction": ("coulomb_r", "static_r", "coulomb_p", "static_p", "v_deadzone"),
    "latency": ("action_delay_substeps", "imu_delay_substeps", "camera_delay_substeps"),
    "sensors": ("noise_scale", "noise_sigma"),
}


def group_of(path: str) -> str:
    leaf = path.rsplit(".", 1)[-1]
    return next((g for g, leaves in GROUPS.items() if leaf in leaves), "other")


def variants(zd: ZooDevice) -> dict[str, dict[str, object]]:
    """Label -> the values applied: the device, each of its groups alone, and the device without each."""
    present = sorted({group_of(p) for p in zd.values}, key=list(GROUPS).index)
    out: dict[str, dict[str, object]] = {"all": dict(zd.values)}
    for g in present:
        out[f"only {g}"] = {p: v for p, v in zd.values.items() if group_of(p) == g}
    for g in present:
        out[f"all but {g}"] = {p: v for p, v in zd.values.items() if group_of(p) != g}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a sim train run folder (config.yaml, policy.onnx, report.json)")
    ap.add_argument("--devices", default=None, help="zoo device names, comma-separated (default: the run's failures)")
    ap.add_argument("--episodes", type=int, default=10, help="simulated episodes per variant (default: %(default)s)")
    ap.add_argument("--json", type=Path, default=None, help="write every row here")
    args = ap.parse_args()
    if not (args.run / "policy.onnx").is_file():
        ap.error(f"{args.run} is not a run folder (no policy.onnx); pass one sim train wrote")
    cfg = load_experiment(args.run / "config.yaml")
    zoo = {zd.name: zd for zd in devices(load_zoo(), cfg.device, training=cfg.trained_device())}
    failures: list[str] = []
    if not args.devices:
        if not (args.run / "report.json").is_file():
            ap.error(f"{args.run} has no report.json to take its failures from; name them with --devices")
        report = json.loads((args.run / "report.json").read_text())
        failures = [r["name"] for r in report.get("heldout", []) if r["feasible"] and not r["passed"]]
    names = zoo_selection(ap, list(zoo), args.devices, failures)
    policy = onnx_policy(args.run / "policy.onnx")
    labelled = [(n, label, with_values(cfg.device, vals)) for n in names for label, vals in variants(zoo[n]).items()]
    rates = score_devices(policy, cfg, [d for _, _, d in labelled], args.episodes, seed=cfg.seed + 30_000)
    if rates is None:  # variants that cannot share one batched simulation: one by one
        rates = [score_device(policy, cfg, d, args.episodes, seed=cfg.seed + 30_000) for _, _, d in labelled]
    rows = [
        {"device": n, "variant": label, "success_rate": r} for (n, label, _), r in zip(labelled, rates, strict=True)
    ]
    print(f"{args.run}: success over {args.episodes} episodes; a device passes at >= {PASS_RATE:.0%}")
    for row in rows:
        mark = "" if row["variant"] == "all" else "  "
        print(f"{row['device']:18s} {mark}{row['variant']:20s} {row['success_rate']:5.0%}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
