"""The simulated device's sensors and delays: noise statistics, FIFO delays, camera timing and rendering."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sensorimotor.sim.config import CameraConfig, DeviceConfig, ImuConfig, RandomizationConfig
from sensorimotor.sim.device import FurutaSim, nominal_params
from sensorimotor.sim.sensors import CAMERA_OK, imu_ideal, render_clean

HANGING = np.array([0.0, np.pi, 0.0, 0.0])


def _device(imu: dict | None = None, camera: dict | None = None, **delays: tuple[int, int]) -> DeviceConfig:
    base = DeviceConfig()
    r = {"action_delay_substeps": (0, 0), "imu_delay_substeps": (0, 0), "camera_delay_substeps": (0, 0), **delays}
    return dataclasses.replace(
        base, imu=dataclasses.replace(ImuConfig(), **(imu or {})), camera=dataclasses.replace(CameraConfig(), **(camera or {})),
        randomization=dataclasses.replace(RandomizationConfig(), **r),
    )  # fmt: skip


def _hanging_still(cfg: DeviceConfig, n: int, steps: int, seed: int = 0) -> np.ndarray:
    """IMU samples (n, steps * substeps, 6) of pendulums hanging still with the motor off."""
    sim = FurutaSim(cfg, n, seed=seed, randomize=False, camera=False)
    sim.reset(state=np.tile(HANGING, (n, 1)))
    k = cfg.substeps_per_control
    out = []
    for _ in range(steps):
        sim.step(np.zeros(n))
        out.append(sim.latest_samples(k)[0])
    return np.concatenate(out, axis=1).astype(np.float64)


QUIET = {"gyro_random_walk": 0.0, "accel_random_walk": 0.0, "gyro_turn_on_sigma": 0.0, "accel_turn_on_sigma": 0.0}


def test_white_noise_sigma_is_density_over_sqrt_dt() -> None:
    cfg = _device(imu=QUIET)
    samples = _hanging_still(cfg, 16, 50)
    ideal = np.array([0, 0, 0, 0, 0, -cfg.physics.g])
    dt = 1.0 / cfg.imu.rate_hz
    expected = np.array([cfg.imu.gyro_noise_density] * 3 + [cfg.imu.accel_noise_density] * 3) / np.sqrt(dt)
    assert np.allclose((samples - ideal).reshape(-1, 6).std(0), expected, rtol=0.04)
    assert np.allclose((samples - ideal).reshape(-1, 6).mean(0), 0.0, atol=4 * expected / np.sqrt(16 * 500))


def test_imu_noise_level_is_drawn_per_episode_within_its_spread() -> None:
    """randomization.imu_noise = s: each episode's white noise is density / sqrt(dt) times one U(1 - s, 1 + s)."""
    dt = 1.0 / DeviceConfig().imu.rate_hz
    expected = DeviceConfig().imu.gyro_noise_density / np.sqrt(dt)

    def ratios(spread: float) -> np.ndarray:
        cfg = dataclasses.replace(_device(imu=QUIET), randomization=dataclasses.replace(
            _device().randomization, imu_noise=spread, damping=0.0, friction=0.0))  # fmt: skip
        sim = FurutaSim(cfg, 64, seed=3, randomize=True, camera=False)
        sim.reset(state=np.tile(HANGING, (64, 1)))
        k = cfg.substeps_per_control
        gyro = np.concatenate([(sim.step(np.zeros(64)), sim.latest_samples(k)[0])[1] for _ in range(40)], axis=1)
        return gyro[..., 0].astype(np.float64).std(1) / expected  # roll gyro reads noise only

    fixed, spread = ratios(0.0), ratios(0.5)
    assert np.allclose(fixed, 1.0, atol=0.12)  # 400 samples per env: ~4 % sampling error
    assert spread.min() > 0.5 - 0.1 and spread.max() < 1.5 + 0.1
    assert spread.max() - spread.min() > 0.7  # 64 draws of U(0.5, 1.5) span most of it


def test_turn_on_bias_is_drawn_per_episode_and_the_bias_walks() -> None:
    on = _device(imu={"gyro_noise_density": 0.0, "accel_noise_density": 0.0, "gyro_random_walk": 0.0,
                      "accel_random_walk": 0.0})  # fmt: skip
    first = _hanging_still(on, 400, 1)[:, 0]
    assert np.allclose(first[:, :3].std(0), on.imu.gyro_turn_on_sigma, rtol=0.15)
    assert np.allclose(first[:, 3:].std(0), on.imu.accel_turn_on_sigma, rtol=0.15)
    walk = _device(imu={"gyro_noise_density": 0.0, "accel_noise_density": 0.0, "gyro_turn_on_sigma": 0.0,
                        "accel_turn_on_sigma": 0.0, "gyro_random_walk": 0.01})  # fmt: skip
    samples = _hanging_still(walk, 200, 100)  # 1 s after the warm-up
    drift = samples[:, -1, 0] - samples[:, 0, 0]
    assert np.isclose(drift.std(), 0.01 * np.sqrt(1.0), rtol=0.15)  # random walk: sigma * sqrt(t)


def test_saturation_and_scale_error() -> None:
    clipped = _hanging_still(_device(imu={"accel_range": 5.0, "noise": True, **QUIET}), 2, 2)
    assert clipped[..., 5].min() >= -5.0 and clipped[..., 5].max() <= -5.0 + 1e-6  # -g clipped at -5
    scaled = _hanging_still(_device(imu={"scale_error": 0.05, "gyro_noise_density": 0.0, "accel_noise_density": 0.0,
                                         **QUIET}), 300, 1)  # fmt: skip
    z = scaled[:, 0, 5] / -9.81 - 1.0  # accel z reads -g (1 + e)
    assert np.isclose(z.std(), 0.05, rtol=0.15)


def test_accelerometer_sees_gravity_and_the_links_own_acceleration() -> None:
    """Noise off: the core's samples are the numpy reference model at the true state, to float32."""
    cfg = _device(imu={"noise": False})
    sim = FurutaSim(cfg, 3, seed=1, randomize=False, camera=False)
    sim.reset(state=np.array([[0.0, 0.5, 2.0, -3.0], [0.2, 2.5, -1.0, 4.0], [0.0, np.pi, 0.0, 0.0]]))
    p = nominal_params(cfg)
    for k in range(20):
        v = np.full(3, 4.0 * np.sin(k))
        sim.step(v)
        got = sim.latest_samples(1)[0][:, 0]
        want = imu_ideal(sim.state, np.asarray(sim.volts), p, cfg.imu.position_m)
        assert np.allclose(got, want, rtol=1e-5, atol=1e-4)
    assert np.abs(got[:2, 3:5]).max() > 0.5  # the link's own acceleration shows, not only gravity


def test_encoder_is_quantized() -> None:
    cfg = _device()
    sim = FurutaSim(cfg, 1, seed=0, randomize=False, camera=False)
    sim.reset(state=np.array([[0.3, np.pi, 1.5, 0.0]]))
    for _ in range(5):
        sim.step(np.array([2.0]))
    counts = sim.latest_samples(1)[1][0, 0]
    assert counts == np.floor(sim.state[0, 0] * cfg.encoder_cpr / (2 * np.pi))


def test_actuator_delay_longer_than_a_control_period_loses_no_command() -> None:
    """A FIFO: at 25 substeps of delay (2.5 control periods) every command reaches the motor, in order."""
    cfg = _device(action_delay_substeps=(25, 25))
    sim = FurutaSim(cfg, 1, seed=0, randomize=False, imu=False, camera=False)
    sim.reset()
    commands = np.arange(1, 11) / 4.0
    seen = []
    for c in [*commands, 0, 0, 0]:
        sim.command(np.array([c]))
        for _ in range(cfg.substeps_per_control):
            sim.substep()
            seen.append(float(sim.volts[0]))
    assert seen[:25] == [0.0] * 25  # nothing lands before the delay
    landed = seen[25 : 25 + 10 * cfg.substeps_per_control : cfg.substeps_per_control]
    assert landed == commands.tolist()
    assert sim.buffers.dropped[0] == 0


def test_sensor_to_host_delay_shifts_the_window() -> None:
    """Same seed, same physics and noise; a 3-substep IMU delay shows the same samples 3 substeps later.

    (Both configs allow up to 3 substeps, so both buffer and warm up alike; unrandomized, each takes its minimum.)
    """
    now = FurutaSim(_device(imu_delay_substeps=(0, 3)), 1, seed=3, randomize=False, camera=False)  # 0: the minimum
    late = FurutaSim(_device(imu_delay_substeps=(3, 3)), 1, seed=3, randomize=False, camera=False)
    for sim in (now, late):
        sim.reset()
    for k in range(10):
        for sim in (now, late):
            sim.step(np.array([np.sin(k)]))
        a, b = now.observation(), late.observation()
        assert np.array_equal(b["imu"][..., 3:], a["imu"][..., :-3])
        assert np.array_equal(b["encoder"][..., 3:], a["encoder"][..., :-3])


def test_camera_frames_come_at_the_frame_rate_after_the_latency() -> None:
    cfg = _device(camera={"randomize": False, "occlusion_prob": 0.0, "blackout_prob": 0.0},
                  camera_delay_substeps=(7, 7))  # fmt: skip
    sim = FurutaSim(cfg, 1, seed=0, randomize=False)
    sim.reset()
    spf = cfg.substeps_per_frame
    captures = set()
    for _ in range(100):
        sim.substep()
        r = sim.received(1)
        f = sim.buffers.frame_tick[0]
        newest = f[(f >= 0) & (f <= sim.tick[0] - 7)].max()
        captures.add(int(newest))
        assert np.array_equal(r["image_state"][0], sim.buffers.frame_state[0][f == newest][0])
    gaps = np.diff(sorted(captures))
    assert set(gaps.tolist()) == {spf}  # one frame per 1 / camera.rate_hz, none skipped


def test_still_frame_matches_the_numpy_renderer() -> None:
    """Randomization off, no motion: the core's frame is background + rod, as render_clean draws it."""
    cfg = _device(camera={"randomize": False, "occlusion_prob": 0.0, "blackout_prob": 0.0})
    sim = FurutaSim(cfg, 2, seed=0, randomize=False)
    sim.reset(state=np.array([[0.0, 0.4, 0.0, 0.0], [0.0, -2.0, 0.0, 0.0]]))
    r = sim.received()
    clean = render_clean(r["image_state"], nominal_params(cfg))
    want = np.clip(0.2 + clean * (0.9 - 0.2), 0, 1) * 255 + 0.5
    assert np.abs(r["image"][:, 0].astype(int) - want.astype(int)).max() <= 1
    assert (r["camera_class"] == CAMERA_OK).all()


def test_exposure_blurs_a_moving_pendulum() -> None:
    sharp_cfg = _device(camera={"randomize": False, "occlusion_prob": 0.0, "blackout_prob": 0.0})
    blur_cfg = _device(camera={"occlusion_prob": 0.0, "blackout_prob": 0.0, "exposure_ms": (8.0, 8.0),
                               "noise_sigma": (0.0, 0.0), "background": (0.2, 0.2), "brightness": (0.9, 0.9),
                               "gradient": 0.0, "texture": 0.0, "shift_px": 0.0, "roll_deg": 0.0})  # fmt: skip
    images = []
    for cfg in (sharp_cfg, blur_cfg):
        sim = FurutaSim(cfg, 1, seed=0, randomize=False)
        sim.reset(state=np.array([[0.0, 0.0, 0.0, 0.0]]))
        sim.buffers.state[0, 3] = 40.0  # fast swing (rad/s): 0.32 rad during an 8 ms exposure
        for _ in range(cfg.substeps_per_frame):
            sim.substep()
        newest = int(np.argmax(sim.buffers.frame_tick[0]))
        images.append(sim.buffers.frames[0, newest].astype(float))
    sharp, blurred = images
    lit = lambda img: int((img > 0.2 * 255 + 5).sum())  # noqa: E731
    assert lit(blurred) > 1.5 * lit(sharp)  # smeared over more pixels ...
    excess = lambda img: float((img - 0.2 * 255).sum())  # noqa: E731
    assert abs(excess(blurred) - excess(sharp)) < 0.1 * excess(sharp)  # ... with the same light: an average of poses


def test_a_blurred_frame_is_labelled_with_the_angle_at_mid_exposure() -> None:
    """The smear of a fast swing is centred on the frame's label, not on the end of the exposure."""
    cfg = _device(camera={"occlusion_prob": 0.0, "blackout_prob": 0.0, "exposure_ms": (8.0, 8.0),
                          "noise_sigma": (0.0, 0.0), "background": (0.2, 0.2), "brightness": (0.9, 0.9),
                          "gradient": 0.0, "texture": 0.0, "shift_px": 0.0, "roll_deg": 0.0})  # fmt: skip
    sim = FurutaSim(cfg, 1, seed=0, randomize=False)
    sim.reset(state=np.array([[0.0, 0.0, 0.0, 0.0]]))
    sim.buffers.state[0, 3] = 40.0  # 0.32 rad swept during the 8 ms exposure
    captured = int(sim.buffers.frame_tick[0].max())
    while int(sim.buffers.frame_tick[0].max()) == captured:  # until the next frame is captured
        sim.substep()
    end_alpha = float(sim.buffers.state[0, 1])  # the capture follows the substep: this is the exposure's end
    newest = int(np.argmax(sim.buffers.frame_tick[0]))
    label = sim.buffers.frame_state[0, newest]
    rate = float(sim.buffers.state[0, 3])
    assert label[3] == rate  # the rate is the one at capture
    assert label[1] == pytest.approx(end_alpha - rate * 0.004, abs=1e-12)  # half the 8 ms exposure back
    # Intensity-weighted angle of the smear's pixels outside the hub, about the pivot at the centre.
    img = sim.buffers.frames[0, newest].astype(float) - 0.2 * 255
    h, w = img.shape
    rows, cols = np.mgrid[0:h, 0:w]
    dx, dy = cols + 0.5 - w / 2, h / 2 - (rows + 0.5)
    weight = np.where((np.hypot(dx, dy) > 6) & (img > 5), img, 0.0)
    centre = np.arctan2((weight * np.sin(np.arctan2(dx, dy))).sum(), (weight * np.cos(np.arctan2(dx, dy))).sum())
    assert abs(centre - label[1]) < np.deg2rad(1.0)  # the label sits in the smear's middle ...
    assert abs(centre - end_alpha) > np.deg2rad(7.0)  # ... half a sweep (9 deg) from the exposure's end


def test_imu_state_is_the_true_state_at_the_newest_received_sample() -> None:
    """Perception's IMU label lags the true state by exactly the IMU delay."""
    cfg = _device(imu={"noise": False}, imu_delay_substeps=(3, 3))
    sim = FurutaSim(cfg, 2, seed=0, randomize=True, camera=False)
    sim.reset(state=np.array([[0.0, 2.0, 0.0, 3.0], [0.1, -1.0, 1.0, -4.0]]))
    history = [sim.state.copy()]
    for _ in range(12):
        sim.substep(1)
        history.append(sim.state.copy())
    got = sim.received()["imu_state"]
    assert np.array_equal(got, history[-1 - 3])
    assert not np.allclose(got, history[-1])  # the pendulum moved during the delay
