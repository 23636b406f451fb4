"""``sim eval``: controllers compared on the same fixed seeds, nominal and under a perturbation set.

Controllers (all run as batch policies in the simulator, one episode per env):

* **RL runs** — each run folder's exported ``policy.onnx``, run by onnxruntime: exactly the
  artifact ``hw run`` loads, perception included.
* **RL, true state** — the same run's actor fed perfect estimates computed from the true state
  (what the policy would do with flawless perception).
* **classical, perception** — energy swing-up + LQR (:mod:`sensorimotor.control.classical`) on
  the first run's perception, exported through the same ONNX path (``classical.onnx``), so the
  comparison with the RL policy is on equal information.
* **classical, true state** — the reference.

Conditions: ``nominal`` (the training distribution, randomized physics); each physical parameter
at 0.7x and 1.3x its nominal value (randomization still on top); latency x2; sensor noise x2;
camera faults (occlusions and blackouts much more often). Every controller meets the same episodes
(same seeds) under each condition. Writes ``results.json``, ``results.md`` and ``comparison.png``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from sensorimotor.configs.schema import ConfigError
from sensorimotor.control.classical import ClassicalActor, EnergyLqrController, state_view
from sensorimotor.control.config import ExperimentConfig, load_experiment
from sensorimotor.control.evaluate import EvalResult, Policy, evaluate, onnx_policy
from sensorimotor.control.export import PolicyChain, export_onnx
from sensorimotor.control.train import observation_model, read_perception
from sensorimotor.perception.config import OBS_NAMES
from sensorimotor.perception.models import RATE_SCALE
from sensorimotor.sim.config import DeviceConfig

PERTURBED_PARAMS = ("Rm", "kt", "km", "mr", "Lr", "Dr", "mp", "Lp", "Dp", "coulomb_r", "static_r",
                    "coulomb_p", "static_p", "v_deadzone")  # fmt: skip
Condition = Callable[[DeviceConfig], DeviceConfig]


def _physics(name: str, factor: float) -> Condition:
    def apply(d: DeviceConfig) -> DeviceConfig:
        value = getattr(d.physics, name) * factor
        imu = d.imu
        if name == "Lp":  # the IMU is mounted on the pendulum: it moves with the link's length
            imu = dataclasses.replace(imu, position_m=imu.position_m * factor)
        return dataclasses.replace(d, physics=dataclasses.replace(d.physics, **{name: value}), imu=imu)

    return apply


def _latency_x2(d: DeviceConfig) -> DeviceConfig:
    r = d.randomization
    return dataclasses.replace(d, randomization=dataclasses.replace(
        r, action_delay_substeps=_twice(r.action_delay_substeps), imu_delay_substeps=_twice(r.imu_delay_substeps),
        camera_delay_substeps=_twice(r.camera_delay_substeps),
    ))  # fmt: skip


def _twice(span: tuple[int, int]) -> tuple[int, int]:
    return 2 * span[0], 2 * span[1]


def _noise_x2(d: DeviceConfig) -> DeviceConfig:
    cam = d.camera
    return dataclasses.replace(
        d, imu=dataclasses.replace(d.imu, noise_scale=2 * d.imu.noise_scale),
        camera=dataclasses.replace(cam, noise_sigma=(min(1.0, 2 * cam.noise_sigma[0]), min(1.0, 2 * cam.noise_sigma[1]))),
    )  # fmt: skip


def _camera_faults(d: DeviceConfig) -> DeviceConfig:
    return dataclasses.replace(d, camera=dataclasses.replace(d.camera, occlusion_prob=0.3, blackout_prob=0.2))


def conditions(perturb: bool = True) -> dict[str, Condition]:
    """Name -> device transform. ``perturb=False``: nominal only."""
    out: dict[str, Condition] = {"nominal": lambda d: d}
    if perturb:
        for name in PERTURBED_PARAMS:
            out[f"{name} x0.7"] = _physics(name, 0.7)
            out[f"{name} x1.3"] = _physics(name, 1.3)
        out["latency x2"] = _latency_x2
        out["sensor noise x2"] = _noise_x2
        out["camera faults (occl 30 %, blackout 20 %)"] = _camera_faults
    return out


def perfect_estimates(state: np.ndarray) -> np.ndarray:
    """The OBS_NAMES vector flawless perception would give for true states (N, 4)."""
    theta, alpha, theta_dot, alpha_dot = (np.asarray(state, np.float64)[:, i] for i in range(4))
    cols = {
        "imu_sin": np.sin(alpha), "imu_cos": np.cos(alpha), "imu_rate": alpha_dot / RATE_SCALE,
        "img_sin": np.sin(alpha), "img_cos": np.cos(alpha), "camera_ok": np.ones_like(alpha),
        "arm_angle": theta, "arm_rate": theta_dot / RATE_SCALE,
        "fused_sin": np.sin(alpha), "fused_cos": np.cos(alpha), "fused_rate": alpha_dot / RATE_SCALE,
    }  # fmt: skip
    return np.stack([cols[n] for n in OBS_NAMES], axis=1).astype(np.float32)


@dataclass
class Contender:
    name: str
    policy: Policy


def rl_contenders(run: Path, cfg: ExperimentConfig) -> list[Contender]:
    """A run's exported model, and its actor on perfect estimates (when its checkpoint is there)."""
    from sensorimotor.control.checkpoints import ResumeError, load_actor

    out = [Contender(f"{run.name} ({cfg.rl.algo}, perception)", onnx_policy(run / "policy.onnx"))]
    try:
        actor = load_actor(run, cfg.rl)
    except ResumeError:
        return out  # an older run without checkpoints: no true-state variant
    if cfg.rl.history:
        return out  # its actor needs the history of its own estimates: no true-state variant
    cols = [OBS_NAMES.index(o) for o in cfg.rl.observations]
    v_max = cfg.device.v_max

    @torch.no_grad()
    def on_state(raw: dict[str, np.ndarray]) -> np.ndarray:
        obs = torch.from_numpy(perfect_estimates(raw["state"])[:, cols])
        return (torch.clamp(actor(obs), -1, 1) * v_max).numpy()[:, 0]

    out.append(Contender(f"{run.name} ({cfg.rl.algo}, true state)", on_state))
    return out


def classical_contenders(run: Path, cfg: ExperimentConfig, out: Path) -> list[Contender]:
    """The classical baseline on the true state, and on ``run``'s perception through its own ONNX export."""
    controller = EnergyLqrController(cfg.device, cfg.classical).eval()
    v_max = cfg.device.v_max

    @torch.no_grad()
    def on_state(raw: dict[str, np.ndarray]) -> np.ndarray:
        return (controller(state_view(raw["state"])) * v_max).numpy()[:, 0]

    obs_model = observation_model(cfg, read_perception(cfg, run))
    chain = PolicyChain(obs_model, ClassicalActor(controller), v_max).eval()
    path = out / "classical.onnx"
    export_onnx(chain, cfg.device, path, {"controller": "energy swing-up + LQR", "perception_from": str(run)})
    return [Contender("classical (perception)", onnx_policy(path)), Contender("classical (true state)", on_state)]


def load_run(run: Path) -> ExperimentConfig:
    for name in ("config.yaml", "policy.onnx", "perception.pt"):
        if not (run / name).is_file():
            raise ConfigError(f"{run} is not a sim train run of the device: {run / name} is missing")
    return load_experiment(run / "config.yaml")


def compare(
    runs: list[Path], out: Path, episodes: int, seed: int, perturb: bool = True, classical: bool = True
) -> dict[str, Any]:
    """Evaluate every contender under every condition; write results.json, results.md, comparison.png."""
    cfgs = [load_run(r) for r in runs]
    base = cfgs[0]
    for r, c in zip(runs[1:], cfgs[1:], strict=True):
        if c.task != base.task or c.device.spec() != base.device.spec():
            raise ConfigError(f"{r} was trained for another task or device than {runs[0]}: compare like with like")
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    contenders = [c for r, cfg in zip(runs, cfgs, strict=True) for c in rl_contenders(r, cfg)]
    if classical:
        contenders += classical_contenders(runs[0], base, out)
    conds = conditions(perturb)
    table: dict[str, dict[str, dict[str, float]]] = {}
    t0 = time.time()
    bar = tqdm(total=len(conds) * len(contenders), desc="sim eval", unit="run", leave=False)
    for cname, transform in conds.items():
        device = transform(base.device)
        table[cname] = {}
        for who in contenders:
            bar.set_postfix_str(f"{cname}: {who.name}", refresh=False)
            res: EvalResult = evaluate(who.policy, device, base.task, episodes, None, seed=seed)
            table[cname][who.name] = res.as_dict()
            bar.update()
    bar.close()
    names = [who.name for who in contenders]
    perturbed = [k for k in table if k != "nominal"]
    summary = {
        n: {
            "nominal_success": table["nominal"][n]["success_rate"],
            "perturbed_mean_success": float(np.mean([table[k][n]["success_rate"] for k in perturbed])) if perturbed else None,
            "perturbed_worst_success": float(min(table[k][n]["success_rate"] for k in perturbed)) if perturbed else None,
        }
        for n in names
    }  # fmt: skip
    result = {
        "task": base.task.name, "episodes": episodes, "seed": seed, "runs": [str(r) for r in runs],
        "controllers": names, "conditions": list(conds), "summary": summary, "table": table,
        "seconds": time.time() - t0,
    }  # fmt: skip
    (out / "results.json").write_text(json.dumps(result, indent=2))
    (out / "results.md").write_text(markdown(result))
    plot(result, out / "comparison.png")
    return result


def _pct(x: float | None) -> str:
    return "–" if x is None or x != x else f"{100 * x:.0f} %"


def markdown(result: dict[str, Any]) -> str:
    names = result["controllers"]
    lines = [
        f"# sim eval: {result['task']}, {result['episodes']} episodes per cell, seed {result['seed']}",
        "",
        "Success rate (upright within reach_s and held hold_s, arm within its cable limit; docs/tasks.md).",
        "",
        "| condition | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for cond, row in result["table"].items():
        lines.append(f"| {cond} | " + " | ".join(_pct(row[n]["success_rate"]) for n in names) + " |")
    s = result["summary"]
    lines.append(
        "| **mean over perturbations** | " + " | ".join(_pct(s[n]["perturbed_mean_success"]) for n in names) + " |"
    )
    lines.append(
        "| **worst perturbation** | " + " | ".join(_pct(s[n]["perturbed_worst_success"]) for n in names) + " |"
    )
    nominal = result["table"]["nominal"]
    lines += [
        "",
        "Nominal condition, in detail:",
        "",
        "| controller | success | time to upright (s) | RMS alpha balancing (deg) | RMS theta balancing (deg) | RMS volts | arm past limit | angle estimate RMSE, IMU / fused (deg) |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for n in names:
        r = nominal[n]
        est = r.get("estimate_rmse_deg") or {}
        est_text = f"{est['imu']:.2f} / {est['fused']:.2f}" if "imu" in est and "fused" in est else "–"
        lines.append(
            f"| {n} | {_pct(r['success_rate'])} | {r['time_to_upright_s']:.2f} | {r['rms_alpha_deg']:.2f} | "
            f"{r['rms_theta_deg']:.1f} | {r['rms_volts']:.2f} | {_pct(r['arm_limit_rate'])} | {est_text} |"
        )
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    """A heat map: conditions (rows) x controllers (columns), success rate in each cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, conds = result["controllers"], result["conditions"]
    grid = np.array([[result["table"][c][n]["success_rate"] for n in names] for c in conds])
    fig, ax = plt.subplots(figsize=(3.0 + 1.7 * len(names), 1.2 + 0.28 * len(conds)))
    ax.imshow(grid, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
    for i in range(len(conds)):
        for j in range(len(names)):
            ax.text(j, i, f"{100 * grid[i, j]:.0f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(names)), [n.replace(" (", "\n(") for n in names], fontsize=8)
    ax.set_yticks(range(len(conds)), conds, fontsize=8)
    ax.xaxis.tick_top()
    ax.set_title(f"sim eval: {result['task']} success rate (%), {result['episodes']} episodes per cell", pad=30)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
