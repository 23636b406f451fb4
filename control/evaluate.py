"""Evaluate a sensors-to-volts controller on the batched simulator (one episode per env, in parallel).

The task decides where episodes start and what success is (:class:`sensorimotor.sim.task.SuccessTracker`):
balance = upright for the whole episode; swingup = upright within ``reach_s`` and held
``hold_s``. In every task the arm must stay within its cable limit. Physics are randomized as
in training unless ``randomize=False``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sensorimotor.control.export import chain_inputs
from sensorimotor.hardware.model import INPUT_NAMES, STATE_SUFFIX
from sensorimotor.perception.config import OBS_NAMES
from sensorimotor.perception.models import FrameCache, Perception
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import FurutaSim
from sensorimotor.sim.task import SuccessTracker, TaskConfig, make_task

Policy = Callable[[dict[str, np.ndarray]], np.ndarray]  # raw batch (+ "state", the truth) -> volts (N,)
# inputs (raw batch + states by name) -> volts (N,), the estimates (N, len(estimate_names)) or None, next states
Step = Callable[[dict[str, np.ndarray]], tuple[np.ndarray, np.ndarray | None, list[np.ndarray]]]
ANGLE_ESTIMATES = {"imu": ("imu_sin", "imu_cos"), "image": ("img_sin", "img_cos"), "fused": ("fused_sin", "fused_cos")}


@dataclass
class EvalResult:
    success_rate: float
    episodes: int
    episode_s: float
    arm_limit_rate: float  # fraction of episodes that wound the arm past its cable limit
    time_to_upright_s: float  # mean over successful episodes (nan: none)
    rms_alpha_deg: float  # pendulum angle while balancing (after the successful run began)
    rms_theta_deg: float  # arm angle while balancing
    rms_volts: float  # control effort over whole episodes
    samples: dict[str, np.ndarray]  # raw sensor inputs collected along the way (for parity)
    # pendulum-angle error of the policy's own estimates along these closed-loop episodes, per estimate
    # (imu: filtered when the IMU filter is on; image: every frame, faults included); empty for a policy without
    estimate_rmse_deg: dict[str, float] = field(default_factory=dict)
    success: np.ndarray | None = None  # (episodes,) bool: each episode's outcome

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("samples", "success")}


class RecurrentPolicy:
    """A batch policy over a model with recurrent state inputs: zeros at :meth:`reset`, fed back each call.

    ``step`` maps the raw batch plus the current states (by name) to volts, the model's
    estimates (columns ``estimate_names``; None if it has none) and the next states (in
    ``states`` order). One call = one control step of every episode; :func:`evaluate` resets
    it before its episodes start. With no states it is a plain policy.
    """

    def __init__(self, step: Step, states: Sequence[tuple[str, int]], estimate_names: Sequence[str] = ()) -> None:
        self.step, self.states, self.estimate_names = step, list(states), tuple(estimate_names)
        self.values: dict[str, np.ndarray] = {}
        self.estimates: np.ndarray | None = None  # of the last call

    def reset(self) -> None:
        self.values = {}

    def state_inputs(self, n: int) -> dict[str, np.ndarray]:
        """The states the next call feeds the model, (n, size) each (zeros before the first call)."""
        return {name: self.values.get(name, np.zeros((n, size), np.float32)) for name, size in self.states}

    def __call__(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        volts, self.estimates, nxt = self.step({**raw, **self.state_inputs(len(raw["imu"]))})
        self.values = dict(zip((name for name, _ in self.states), nxt, strict=True))
        return volts


def torch_policy(chain: torch.nn.Module) -> RecurrentPolicy:
    """Wrap a PolicyChain (raw tensors (+ states) -> volts, estimates (+ next states)) as a numpy batch policy.

    The chain's image encoder runs only on the frames that changed since the previous call
    (:class:`~sensorimotor.perception.models.FrameCache`): the same outputs up to float rounding, about half the work.
    """
    names = chain_inputs(chain)
    perception = next((m for m in chain.modules() if isinstance(m, Perception)), None)
    frames = FrameCache()

    @torch.no_grad()
    def step(inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None, list[np.ndarray]]:
        with perception.cached(frames) if perception is not None else contextlib.nullcontext():
            volts, estimates, *nxt = chain(*(torch.from_numpy(inputs[k]) for k in names))
        return volts.numpy()[:, 0], estimates.numpy(), [t.numpy() for t in nxt]

    return RecurrentPolicy(step, getattr(chain, "states", []), OBS_NAMES)


def evaluate(
    policy: Policy, device: DeviceConfig, task: TaskConfig, episodes: int, episode_s: float | None, seed: int,
    collect: int = 0, randomize: bool = True, setup: Callable[[FurutaSim], None] | None = None,
    sensors: bool = True,
) -> EvalResult:  # fmt: skip
    """Run ``episodes`` parallel episodes (``episode_s`` None: the task's evaluation length).

    ``sensors`` False: the IMU and camera are not simulated (their windows read zeros), for a
    reference controller on the true state; the physics is the same draw for draw.

    ``collect``: also keep that many raw inputs met along the way, for parity checks (with the
    recurrent state each met, for a :class:`RecurrentPolicy`).
    """
    recurrent = policy if isinstance(policy, RecurrentPolicy) else None
    if recurrent:
        recurrent.reset()
    errors = AngleErrors(recurrent.estimate_names if recurrent else ())
    the_task = make_task(task)
    length_s = the_task.eval_episode_s() if episode_s is None else episode_s
    sim = the_task.sim(device, episodes, seed=seed, randomize=randomize, imu=sensors, camera=sensors)
    sim.reset()
    if setup is not None:  # per-episode changes after the reset (e.g. a different device in each row)
        setup(sim)
    steps = round(length_s * device.stream_rate_hz)
    tracker = SuccessTracker(the_task, episodes, 1.0 / device.stream_rate_hz)
    rng = np.random.default_rng(seed)
    samples: list[dict[str, np.ndarray]] = []
    per_step = max(1, int(np.ceil(collect / steps))) if collect else 0
    for _ in range(steps):
        raw = sim.observation()
        if per_step:
            pick = rng.choice(episodes, size=min(per_step, episodes), replace=False)
            met = {**raw, **(recurrent.state_inputs(episodes) if recurrent else {})}
            samples.append({k: v[pick] for k, v in met.items()})
        raw["state"] = sim.state  # the true state, for reference controllers (a policy on sensors ignores it)
        volts = np.clip(np.asarray(policy(raw), np.float64), -device.v_max, device.v_max)
        if recurrent and recurrent.estimates is not None:
            errors.add(recurrent.estimates, sim.state[:, 1])
        sim.step(volts)
        tracker.update(sim.state, volts / device.v_max)
    merged = {k: np.concatenate([s[k] for s in samples])[:collect] for k in samples[0]} if samples else {}
    result = summarize(tracker, device.v_max, steps, merged)
    result.estimate_rmse_deg = errors.rmse_deg()
    result.success = tracker.success.copy()
    return result


class AngleErrors:
    """Running squared pendulum-angle error of each sin/cos estimate a model outputs (:data:`ANGLE_ESTIMATES`)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.cols = {k: (names.index(s), names.index(c)) for k, (s, c) in ANGLE_ESTIMATES.items()
                     if s in names and c in names}  # fmt: skip
        self.sq = dict.fromkeys(self.cols, 0.0)
        self.n = 0

    def add(self, estimates: np.ndarray, alpha: np.ndarray) -> None:
        for k, (s, c) in self.cols.items():
            err = np.arctan2(estimates[:, s], estimates[:, c]) - alpha
            self.sq[k] += float(np.sum(np.arctan2(np.sin(err), np.cos(err)) ** 2))
        self.n += len(alpha)

    def rmse_deg(self) -> dict[str, float]:
        return {k: float(np.degrees(np.sqrt(v / self.n))) for k, v in self.sq.items()} if self.n else {}


def summarize(tracker: SuccessTracker, v_max: float, steps: int, samples: dict[str, np.ndarray]) -> EvalResult:
    """The figures of a finished set of episodes."""
    ok = tracker.success
    bal = tracker.balancing_steps
    has = bal > 0
    return EvalResult(
        success_rate=float(ok.mean()),
        episodes=tracker.n,
        episode_s=steps * tracker.dt,
        arm_limit_rate=float(tracker.failed_arm.mean()),
        time_to_upright_s=float(np.mean(tracker.time_to_upright[ok])) if ok.any() else float("nan"),
        rms_alpha_deg=float(np.rad2deg(np.sqrt(tracker.sq_alpha[has].sum() / bal[has].sum()))) if has.any() else float("nan"),
        rms_theta_deg=float(np.rad2deg(np.sqrt(tracker.sq_theta[has].sum() / bal[has].sum()))) if has.any() else float("nan"),
        rms_volts=float(v_max * np.sqrt(tracker.sq_action.sum() / (tracker.n * steps))),
        samples=samples,
    )  # fmt: skip


def onnx_policy(path: Path) -> RecurrentPolicy:
    """The volts of an exported model, batched, run by onnxruntime (its recurrent state carried per episode)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    states = [(i.name, int(i.shape[1])) for i in sess.get_inputs() if i.name not in INPUT_NAMES]
    outputs = ["volts", "estimates", *(name + STATE_SUFFIX for name, _ in states)]
    meta = json.loads(sess.get_modelmeta().custom_metadata_map.get("sensorimotor", "{}"))

    def step(inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None, list[np.ndarray]]:
        volts, estimates, *nxt = sess.run(outputs, {k: inputs[k] for k in names})
        return volts[:, 0], estimates, nxt

    return RecurrentPolicy(step, states, meta.get("estimates", ()))
