"""The classical baseline (control/classical.py): LQR from the linearization, energy swing-up, both in the simulator."""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

from sensorimotor.control.classical import ClassicalActor, ClassicalConfig, EnergyLqrController, lqr_gain, state_view
from sensorimotor.control.config import load_experiment
from sensorimotor.control.evaluate import evaluate
from sensorimotor.perception.config import OBS_NAMES
from sensorimotor.perception.models import RATE_SCALE
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import nominal_params
from sensorimotor.sim.furuta import linearize


def _on_true_state(ctrl: EnergyLqrController, v_max: float):
    def policy(raw: dict[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            return ctrl(state_view(raw["state"])).numpy()[:, 0] * v_max

    return policy


def test_lqr_gain_stabilizes_the_discretized_linearization() -> None:
    device = load_experiment().device
    k = lqr_gain(device, ClassicalConfig())
    a_c, b_c = linearize(nominal_params(device))
    dt = 1.0 / device.stream_rate_hz
    m = np.zeros((5, 5))
    m[:4, :4], m[:4, 4:] = a_c, b_c
    e = scipy.linalg.expm(m * dt)
    closed = e[:4, :4] - e[:4, 4:] @ k
    assert np.max(np.abs(np.linalg.eigvals(e[:4, :4]))) > 1.0  # upright is unstable open loop
    assert np.max(np.abs(np.linalg.eigvals(closed))) < 1.0


def test_lqr_balances_every_randomized_episode_from_near_upright() -> None:
    cfg = load_experiment()
    ev = evaluate(_on_true_state(EnergyLqrController(cfg.device), cfg.device.v_max), cfg.device, cfg.task,
                  100, None, seed=5, sensors=False)  # fmt: skip
    assert ev.success_rate == 1.0 and ev.rms_alpha_deg < 2.0


def test_energy_swingup_then_lqr_swings_up_and_holds_from_hanging() -> None:
    cfg = load_experiment(overrides=["task.name=swingup"])
    ev = evaluate(_on_true_state(EnergyLqrController(cfg.device), cfg.device.v_max), cfg.device, cfg.task,
                  100, None, seed=5, sensors=False)  # fmt: skip
    assert ev.success_rate >= 0.9, ev.as_dict()
    assert ev.time_to_upright_s < 5.0


def test_pendulum_energy_alone_stalls_short_of_upright() -> None:
    """Why the default uses the whole device's energy: the light arm takes energy from the rising pendulum."""
    cfg = load_experiment(overrides=["task.name=swingup"])
    ctrl = EnergyLqrController(cfg.device, ClassicalConfig(total_energy=False, energy_target=0.0))
    ev = evaluate(_on_true_state(ctrl, cfg.device.v_max), cfg.device, cfg.task, 50, None, seed=5, randomize=False,
                  sensors=False)  # fmt: skip
    assert ev.success_rate == 0.0


def test_on_perception_estimates_it_reads_the_state_the_estimates_describe() -> None:
    """ClassicalActor maps the perception outputs (OBS_NAMES) onto the controller's state, the camera weighted by camera_ok."""
    device = load_experiment().device
    ctrl = EnergyLqrController(device)
    rng = np.random.default_rng(0)
    state = np.column_stack(
        [rng.uniform(-1, 1, 64), rng.uniform(-np.pi, np.pi, 64), rng.normal(0, 2, 64), rng.normal(0, 5, 64)]
    )
    est = {"imu_sin": np.sin(state[:, 1]), "imu_cos": np.cos(state[:, 1]), "imu_rate": state[:, 3] / RATE_SCALE,
           "img_sin": np.sin(state[:, 1] + 1.0), "img_cos": np.cos(state[:, 1] + 1.0), "camera_ok": np.zeros(64),
           "arm_angle": state[:, 0], "arm_rate": state[:, 2] / RATE_SCALE, "fused_sin": np.zeros(64),
           "fused_cos": np.ones(64), "fused_rate": np.zeros(64)}  # fmt: skip
    obs = torch.tensor(np.column_stack([est[n] for n in OBS_NAMES]), dtype=torch.float32)
    actor = ClassicalActor(ctrl)
    with torch.no_grad():
        expected = ctrl(state_view(state))
        torch.testing.assert_close(actor(obs), expected, atol=1e-5, rtol=0)  # a camera marked faulty is ignored
        obs[:, OBS_NAMES.index("camera_ok")] = 1.0  # a sound camera 1 rad off moves the angle half-way
        assert not torch.allclose(actor(obs), expected, atol=1e-3)


def test_the_classical_baseline_exports_through_the_same_onnx_path(tmp_path) -> None:
    """Perception + ClassicalActor as one ONNX model: runnable by `hw run`, equal to torch within 1e-5."""
    from sensorimotor.control.export import PolicyChain, export_onnx, parity
    from sensorimotor.hardware.model import OnnxPolicy
    from sensorimotor.perception.models import ObservationModel, Perception
    from sensorimotor.sim.device import FurutaSim

    dev = DeviceConfig()
    torch.manual_seed(0)
    obs_model = ObservationModel(Perception(), dev.encoder_cpr, dev.imu.rate_hz)
    chain = PolicyChain(obs_model, ClassicalActor(EnergyLqrController(dev)), dev.v_max).eval()
    path = tmp_path / "classical.onnx"
    export_onnx(chain, dev, path)
    sim = FurutaSim(dev, 256, seed=3)
    sim.reset()
    sim.step(np.random.default_rng(3).uniform(-5, 5, 256))
    ort_diff, ref_diff = parity(chain, path, sim.observation())
    assert ort_diff <= 1e-5 and ref_diff <= 1e-5, (ort_diff, ref_diff)
    assert OnnxPolicy(path).spec == dev.spec()
