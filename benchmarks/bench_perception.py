"""Perception benchmark: label efficiency, robustness, the classical IMU filters, and latency.

1. **Label efficiency.** Fine-tune every head (IMU, image, fused) with N labelled samples,
   from the shipped pretrained encoders and from scratch, over seeds; score on a held-out
   test set drawn from physical parameters and sensor conditions *outside* the fine-tuning
   set (:func:`held_out_device`). Prints a table and writes ``label_efficiency.png``.
2. **Robustness** of the pretrained model fine-tuned with all labels: RMSE under doubled
   sensor noise, a gyro bias, an exposure (brightness) shift, motion blur (long exposures)
   and physical parameters outside the training ranges; and the image estimate without the
   camera's per-episode roll offset, which no single frame can see; and the image estimate with
   that roll calibrated per rig from 1 s of frames of the pendulum hanging at rest.
3. **Against the classical filters**: the learned IMU estimate and VQF / Madgwick (tuned on
   separate episodes) on the same swing-up and balance episodes, with and without a gyro bias.
4. **Latency** of each encoder + head at batch 1, onnxruntime against torch in the same run.

    python benchmarks/bench_perception.py [--seeds 0 1 2] [--sizes 100 300 1000 3000 10000] [--out runs/bench-perception]
    python benchmarks/bench_perception.py --quick      # a smoke run: small sizes, one seed, few steps
    python benchmarks/bench_perception.py --run runs/full   # parts 2-4 on a sim train run's perception
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GYRO_BIAS = 0.05  # rad/s on every gyro axis: ~6x the simulator's turn-on sigma
CALIBRATED = "camera roll calibrated at rest (image alone)"  # robustness's entry for roll_calibration
KEYS = (("imu_angle_rmse_deg", "IMU"), ("image_angle_rmse_deg", "image"), ("fused_angle_rmse_deg", "fused"))


def held_out_device(device: Any) -> Any:
    """The device outside the fine-tuning ranges: heavier, longer pendulum, shorter arm, noisier sensors, darker scene."""
    from sensorimotor.sim.config import CameraConfig, ImuConfig, PhysicsConfig, RandomizationConfig

    p: PhysicsConfig = device.physics
    r: RandomizationConfig = device.randomization
    c: CameraConfig = device.camera
    i: ImuConfig = device.imu
    return dataclasses.replace(
        device,
        physics=dataclasses.replace(p, mp=p.mp * 1.2, Lp=p.Lp * 1.08, mr=p.mr * 1.15, Lr=p.Lr * 0.93),
        randomization=dataclasses.replace(r, mass=0.03, length=0.01, imu_noise=0.05),
        imu=dataclasses.replace(i, noise_scale=i.noise_scale * 1.7),
        camera=dataclasses.replace(c, noise_sigma=(0.07, 0.1), background=(0.36, 0.5)),
    )


def conditions(device: Any) -> dict[str, Any]:
    """Robustness conditions: name -> device (the gyro bias is added to the windows instead)."""
    c, i, p = device.camera, device.imu, device.physics
    return {
        "nominal (test seeds)": device,
        "sensor noise x2": dataclasses.replace(
            device, imu=dataclasses.replace(i, noise_scale=2.0 * i.noise_scale),
            camera=dataclasses.replace(c, noise_sigma=(2 * c.noise_sigma[0], 2 * c.noise_sigma[1])),
        ),
        f"gyro bias {GYRO_BIAS} rad/s": device,
        "exposure shift (darker rod)": dataclasses.replace(device, camera=dataclasses.replace(c, brightness=(0.3, 0.55))),
        "motion blur (8-16 ms exposure)": dataclasses.replace(device, camera=dataclasses.replace(c, exposure_ms=(8.0, 16.0))),
        # Not a fault: the camera's per-episode roll (+-roll_deg) offsets every frame's angle alike, a floor of
        # roll_deg / sqrt(3) RMS for any one-frame estimate. This row shows the image estimate without it.
        "camera roll 0 (a calibrated camera)": dataclasses.replace(device, camera=dataclasses.replace(c, roll_deg=0.0)),
        "physics outside training (mp x1.3, Lp x0.85)": dataclasses.replace(
            device, physics=dataclasses.replace(p, mp=p.mp * 1.3, Lp=p.Lp * 0.85)
        ),
        "held-out set (all of the above shifts)": held_out_device(device),
    }  # fmt: skip


def add_gyro_bias(data: Any, bias: float) -> Any:
    out = dataclasses.replace(data, imu=data.imu.clone())
    out.imu[:, :3, :] += bias
    return out


def label_efficiency(
    cfg: Any, sizes: list[int], seeds: list[int], steps: int, test: Any, pool: Any, val: Any
) -> list[dict]:
    import torch

    from sensorimotor.control.finetuning import limit_labels
    from sensorimotor.control.train import perception_model
    from sensorimotor.perception.train import evaluate, finetune, init_encoders

    rows = []
    pc = dataclasses.replace(cfg.perception, finetune_steps=steps, eval_every=max(50, steps // 15), patience=4)
    for n in sizes:
        for init in ("shipped", "scratch"):
            for seed in seeds:
                torch.manual_seed(seed)
                model = perception_model(cfg)
                init_encoders(model, init)
                train = limit_labels(pool, n)
                bs = min(pc.batch_size, len(train))
                t0 = time.time()
                result = finetune(
                    model,
                    train,
                    val,
                    dataclasses.replace(pc, batch_size=bs),
                    seed,
                    progress=False,
                    pretrained=init == "shipped",
                )
                m = evaluate(model, test)
                rows.append({"n": len(train), "init": "pretrained" if init == "shipped" else "scratch", "seed": seed,
                             **{k: m[k] for k, _ in KEYS}, "steps": len(result.train), "seconds": time.time() - t0})  # fmt: skip
                print(f"  N={len(train):>6} {rows[-1]['init']:<10} seed {seed}: " + ", ".join(
                    f"{label} {m[k]:.2f}" for k, label in KEYS) + f" deg ({time.time() - t0:.0f} s)", flush=True)  # fmt: skip
                if n == sizes[-1] and init == "shipped" and seed == seeds[0]:
                    rows[-1]["model"] = model
    return rows


def summarize(rows: list[dict]) -> dict[str, dict[str, dict[int, tuple[float, float]]]]:
    """key -> init -> N -> (mean, std over seeds)."""
    out: dict[str, dict[str, dict[int, tuple[float, float]]]] = {}
    for key, _ in KEYS:
        for init in ("pretrained", "scratch"):
            for n in sorted({r["n"] for r in rows}):
                vals = [r[key] for r in rows if r["init"] == init and r["n"] == n]
                out.setdefault(key, {}).setdefault(init, {})[n] = (float(np.mean(vals)), float(np.std(vals)))
    return out


def labels_to_match(curve: dict[int, tuple[float, float]], target: float) -> int | None:
    """Smallest N whose mean RMSE is at most ``target`` (None: none)."""
    hits = [n for n, (mean, _) in sorted(curve.items()) if mean <= target]
    return hits[0] if hits else None


def plot_efficiency(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(KEYS), figsize=(5 * len(KEYS), 3.8))
    for ax, (key, label) in zip(axes, KEYS, strict=True):
        for init, style in (("pretrained", "-o"), ("scratch", "--s")):
            curve = summary[key][init]
            ns = sorted(curve)
            mean = np.array([curve[n][0] for n in ns])
            std = np.array([curve[n][1] for n in ns])
            ax.errorbar(ns, mean, yerr=std, fmt=style, capsize=3, label=init)
        ax.set(xscale="log", yscale="log", xlabel="labelled samples", ylabel="angle RMSE (deg)",
               title=f"{label} (held-out conditions)")  # fmt: skip
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def robustness(cfg: Any, model: Any, n: int, seed: int) -> dict[str, dict[str, float]]:
    """Each condition's RMSE (deg) per estimate, and :data:`CALIBRATED`: the nominal episodes' image with the roll calibrated."""
    from sensorimotor.control.motions import swingup_scenarios
    from sensorimotor.perception.data import generate
    from sensorimotor.perception.train import evaluate

    out, calibrated = {}, {}
    for i, (name, device) in enumerate(conditions(cfg.device).items()):
        nominal = i == 0  # its episodes also record each rig at rest, for the roll calibration
        data = generate(
            device, n, seed=seed, seq_len=20, every=5, scenarios=swingup_scenarios(), clean=False, rest=nominal
        )
        if name.startswith("gyro bias"):
            data = add_gyro_bias(data, GYRO_BIAS)
        m = evaluate(model, data)
        out[name] = {k: m[k] for k, _ in KEYS}
        if nominal:
            calibrated = roll_calibration(model, data)
    out[CALIBRATED] = calibrated
    return out


def roll_calibration(model: Any, data: Any) -> dict[str, float]:
    """The image head alone, one frame, before and after subtracting each rig's camera roll calibrated at rest.

    ``data``: episodes generated with ``rest=True``, which also hold, for each, 1 s of the same
    rig's frames with the pendulum hanging still (``generate(rest=True)``): the roll is the median
    image angle there minus pi (hardware/calibration.py, as `hw calibrate` does on a rig). No IMU, label or state.
    The model's own image estimate (mirror-averaged when ``model.mirror``), and, as the reference in
    the same run, the single frame's (keys ``single_frame_*``).
    """
    import torch

    from sensorimotor.hardware.calibration import mount_roll, subtract_roll
    from sensorimotor.perception.baselines import wrap
    from sensorimotor.perception.models import angle_from_sincos
    from sensorimotor.perception.train import predict
    from sensorimotor.sim.sensors import CAMERA_OK

    shape = (data.n_sequences, data.seq_len)
    truth = data.image_state[:, 1].view(shape).numpy()
    out: dict[str, float] = {"rigs": int(data.n_sequences)}
    for prefix, single in (("", False), ("single_frame_", True)):
        with model.single_frames() if single else contextlib.nullcontext():
            moving = predict(model, data)
            still = predict(model, dataclasses.replace(data, image=data.rest_image))
        roll = mount_roll(angle_from_sincos(still.image).view(shape).numpy(),
                          torch.softmax(still.camera_logits, -1)[:, 0].view(shape).numpy())  # fmt: skip
        angle = angle_from_sincos(moving.image).view(shape).numpy()
        ok = (data.camera_class == CAMERA_OK).view(shape).numpy() & np.isfinite(roll)[:, None]
        before = np.degrees(wrap(angle - truth))[ok]
        after = np.degrees(wrap(subtract_roll(angle, roll) - truth))[ok]
        # the roll each rig's moving frames show (their median offset from the truth) against the one measured at rest
        shown = np.array(
            [np.median(wrap(angle[i] - truth[i])[ok[i]]) if ok[i].any() else np.nan for i in range(shape[0])]
        )
        out |= {
            f"{prefix}image_uncalibrated_deg": float(np.sqrt(np.mean(before**2))),
            f"{prefix}image_calibrated_deg": float(np.sqrt(np.mean(after**2))),
            f"{prefix}calibrated_roll_rms_deg": float(np.degrees(np.sqrt(np.nanmean(roll**2)))),
            f"{prefix}rest_roll_error_rms_deg": float(np.degrees(np.sqrt(np.nanmean((roll - shown) ** 2)))),
            f"{prefix}rigs_without_a_usable_rest_frame": int(np.isnan(roll).sum()),
        }
    return out


def against_filters(cfg: Any, model: Any, episodes: int, seed: int, seq_len: int = 300) -> dict[str, dict[str, float]]:
    """RMSE (deg) of the learned IMU estimate and the tuned filters, per scenario, with and without gyro bias."""
    import torch

    from sensorimotor.control.motions import swingup_scenarios
    from sensorimotor.perception.baselines import filter_alpha, wrap
    from sensorimotor.perception.data import generate
    from sensorimotor.perception.filter import (
        GYRO_AXIS,
        FusedFilter,
        ImuFilter,
        frame_signature,
        run_fused_sequences,
        run_sequences,
    )  # fmt: skip
    from sensorimotor.perception.models import RATE_SCALE, angle_from_sincos
    from sensorimotor.perception.train import predict

    scen = {s.name: s for s in swingup_scenarios()}
    sub, rate = cfg.device.substeps_per_control, float(cfg.device.imu.rate_hz)
    settle = round(cfg.device.stream_rate_hz)  # control steps in the first second
    grids = {"vqf": (0.3, 0.5, 1.0, 2.0, 3.0), "madgwick": (0.03, 0.1, 0.3)}
    tune = generate(cfg.device, 8 * seq_len, seed=seed + 99, seq_len=seq_len, every=1,
                    scenarios=[scen["swing-up and balance"]], envs=8, clean=False)  # fmt: skip
    tw, ta = tune.imu.view(8, seq_len, 6, -1).numpy(), tune.state.view(8, seq_len, 4)[..., 1].numpy()

    def rmse(name: str, p: float, w: np.ndarray, a: np.ndarray) -> float:
        err = np.concatenate([wrap(filter_alpha(name, w[i], sub, rate, p) - a[i]) for i in range(len(w))])
        return float(np.degrees(np.sqrt(np.mean(err**2))))

    best = {f: min(grid, key=lambda p, f=f: rmse(f, p, tw, ta)) for f, grid in grids.items()}
    out: dict[str, dict[str, float]] = {"tuned": {f"{f} parameter": p for f, p in best.items()}}
    for name in ("swing-up and balance", "balance"):
        data = generate(cfg.device, episodes * seq_len, seed=seed, seq_len=seq_len, every=1, scenarios=[scen[name]],
                        envs=episodes, clean=False)  # fmt: skip
        for biased in (False, True):
            d = add_gyro_bias(data, GYRO_BIAS) if biased else data
            w, a = d.imu.view(episodes, seq_len, 6, -1).numpy(), d.state.view(episodes, seq_len, 4)[..., 1].numpy()
            both = predict(model, d)
            est = both.imu
            angle = angle_from_sincos(est)
            learned = wrap(angle.numpy() - d.state[:, 1].numpy())
            filt = ImuFilter(cfg.perception.imu_filter, rate, cfg.device.stream_rate_hz)
            alpha, alpha_dot = run_sequences(
                filt, angle.view(episodes, seq_len), d.imu[:, GYRO_AXIS].view(episodes, seq_len, -1)
            )
            filtered = wrap(alpha.numpy() - a)
            image_angle = angle_from_sincos(both.image)
            fused, _, roll = run_fused_sequences(
                FusedFilter(cfg.perception.imu_filter, rate, cfg.device.stream_rate_hz),
                *(v.view(episodes, seq_len) for v in (angle, image_angle,
                  torch.softmax(both.camera_logits, dim=-1)[:, 0], frame_signature(d.image))),
                d.imu[:, GYRO_AXIS].view(episodes, seq_len, -1),
            )  # fmt: skip
            fused_err = wrap(fused.numpy() - a)
            # The image estimate against its own label (the angle at mid-exposure), alone and with the camera
            # roll the fused filter has calibrated subtracted: what a calibrated camera would read.
            image_err = wrap(
                image_angle.view(episodes, seq_len).numpy() - d.image_state[:, 1].view(episodes, seq_len).numpy()
            )
            frame_ok = (d.camera_class == 0).view(episodes, seq_len).numpy()
            calibrated_err = wrap(image_err - roll.numpy())
            true_rate = d.state[:, 3].view(episodes, seq_len).numpy()
            learned_rate = est[:, 2].view(episodes, seq_len).numpy() * RATE_SCALE
            row = {
                "learned (stateless)": float(np.degrees(np.sqrt(np.mean(learned**2)))),
                "learned + bias filter": float(np.degrees(np.sqrt(np.mean(filtered**2)))),
                "learned + bias filter, after 1 s": float(np.degrees(np.sqrt(np.mean(filtered[:, settle:] ** 2)))),
                "fused filter (IMU + image)": float(np.degrees(np.sqrt(np.mean(fused_err**2)))),
                "fused filter, after 1 s": float(np.degrees(np.sqrt(np.mean(fused_err[:, settle:] ** 2)))),
                "image (one frame)": float(np.degrees(np.sqrt(np.mean(image_err[frame_ok] ** 2)))),
                "image - fused filter's roll, after 1 s": float(
                    np.degrees(np.sqrt(np.mean(calibrated_err[:, settle:][frame_ok[:, settle:]] ** 2)))
                ),
                "rate rad/s: learned": float(np.sqrt(np.mean((learned_rate - true_rate) ** 2))),
                "rate rad/s: filter": float(np.sqrt(np.mean((alpha_dot.numpy() - true_rate) ** 2))),
            }
            for f, p in best.items():
                row[f] = rmse(f, p, w, a)
            out[f"{name}{', gyro bias' if biased else ''}"] = row
    return out


def latency(cfg: Any, model: Any) -> dict[str, dict[str, float]]:
    import onnxruntime as ort
    import torch
    from torch import nn

    from benchmarks.common import median_s

    w, (h, wd) = cfg.device.imu.window, cfg.device.image_shape
    imu, image = torch.zeros(1, 6, w), torch.zeros(1, 1, h, wd, dtype=torch.uint8)

    class Head(nn.Module):
        """One estimate of ``model`` as a module of its own (the model registered, so its weights export)."""

        def __init__(self, which: str) -> None:
            super().__init__()
            self.model, self.which = model, which

        def forward(self, *x: torch.Tensor) -> torch.Tensor:
            m = self.model
            if self.which == "imu":
                return m.imu_head(m.imu_encoder(x[0]))
            if self.which == "image":
                return m.image_estimate(x[0])[1]  # mirror-averaged, as in the exported model
            return m(x[0], x[1]).fused

    out = {}
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="lat-"))
    for name, module, args in (("IMU encoder + head", Head("imu"), (imu,)), ("image encoder + head", Head("image"), (image,)),
                               ("both encoders + fused head", Head("fused"), (imu, image))):  # fmt: skip
        path = tmp / f"{len(out)}.onnx"
        names = [f"in{i}" for i in range(len(args))]
        with torch.no_grad():
            torch.onnx.export(module.eval(), args, str(path), input_names=names, dynamo=False, opset_version=17)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feeds = {n: a.numpy() for n, a in zip(names, args, strict=True)}
        t_ort = median_s(lambda sess=sess, feeds=feeds: sess.run(None, feeds), repeats=500)
        with torch.no_grad():
            t_torch = median_s(lambda module=module, args=args: module(*args), repeats=500)
        out[name] = {"onnxruntime_us": t_ort * 1e6, "torch_us": t_torch * 1e6, "speedup": t_torch / t_ort}
        print(f"  {name:<28} onnxruntime {t_ort * 1e6:7.1f} us   torch {t_torch * 1e6:7.1f} us   "
              f"{t_torch / t_ort:4.1f}x faster in onnxruntime", flush=True)  # fmt: skip
    return out


def parts_2_to_4(cfg: Any, model: Any, args: argparse.Namespace) -> tuple[dict, dict, dict]:
    """Robustness, the classical filters and latency of one fine-tuned model, printed as they come."""
    robust = robustness(cfg, model, args.test, seed=9100)
    for name, m in robust.items():
        if name != CALIBRATED:
            print(f"  {name:<46} " + ", ".join(f"{label} {m[k]:.2f}" for k, label in KEYS) + " deg")
    calib = robust[CALIBRATED]
    for prefix, what in (("", "the model's image estimate"), ("single_frame_", "the single frame (no mirror average)")):
        print(f"  image alone, {what}, the camera's roll calibrated at rest: {calib[prefix + 'image_calibrated_deg']:.2f} "
              f"deg (uncalibrated {calib[prefix + 'image_uncalibrated_deg']:.2f}; the rigs' roll "
              f"{calib[prefix + 'calibrated_roll_rms_deg']:.2f} deg RMS, measured "
              f"{calib[prefix + 'rest_roll_error_rms_deg']:.2f} deg RMS off the roll the moving frames show; "
              f"{calib['rigs']} rigs)")  # fmt: skip

    print("\n3. against the classical filters (IMU angle RMSE, deg)")
    filters = against_filters(cfg, model, args.episodes, seed=9200)
    for name, row in filters.items():
        print(f"  {name:<34} " + ", ".join(f"{k} {v:.3g}" for k, v in row.items()))

    print("\n4. latency, batch 1, one thread")
    return robust, filters, latency(cfg, model)


def measure_run(args: argparse.Namespace, out: Path, t0: float) -> int:
    """Parts 2-4 on a sim train run's fine-tuned perception, with the run's own config (``--run RUN``)."""
    from sensorimotor.configs.schema import ConfigError
    from sensorimotor.control.compare import load_run
    from sensorimotor.control.train import read_perception

    try:
        cfg = load_run(args.run)
    except ConfigError as exc:
        print(f"bench_perception: {exc}", file=sys.stderr)
        return 2
    print(f"\n2. robustness ({args.run / 'perception.pt'})")
    robust, filters, lat = parts_2_to_4(cfg, read_perception(cfg, args.run), args)
    result = {"run": str(args.run), "robustness": robust, "filters": filters, "latency": lat,
              "args": vars(args) | {"out": str(out)}, "seconds": time.time() - t0}  # fmt: skip
    (out / "bench_perception.json").write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwrote {out / 'bench_perception.json'} ({time.time() - t0:.0f} s)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000, 3000, 10000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1500, help="fine-tuning steps at most (early stopping)")
    parser.add_argument("--test", type=int, default=6000, help="held-out test samples")
    parser.add_argument("--episodes", type=int, default=24, help="3 s episodes per scenario against the filters")
    parser.add_argument("--quick", action="store_true", help="smoke run: sizes 64 256, one seed, 40 steps")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--run", type=Path, default=None,
                        help="a sim train run folder: skip part 1, measure 2-4 on its perception.pt")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.seeds, args.steps, args.test, args.episodes = [64, 256], [0], 40, 600, 2
    import torch

    from sensorimotor.control.config import load_experiment
    from sensorimotor.control.motions import swingup_scenarios
    from sensorimotor.perception.data import generate
    from sensorimotor.perception.train import split

    torch.set_num_threads(2)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-perception-"))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if args.run is not None:
        return measure_run(args, out, t0)
    cfg = load_experiment()
    pool_size = int(max(args.sizes) / 0.9) + 200
    data = generate(cfg.device, pool_size, seed=500, seq_len=20, every=5, scenarios=swingup_scenarios(), clean=False)
    pool, val = split(data, 0.1, seed=0, batch_size=min(64, max(args.sizes)))
    test = generate(held_out_device(cfg.device), args.test, seed=9000, seq_len=20, every=5,
                    scenarios=swingup_scenarios(), clean=False)  # fmt: skip
    print(f"data: pool {len(pool)}, validation {len(val)}, held-out test {len(test)} ({time.time() - t0:.0f} s)")

    print("\n1. label efficiency (fine-tune all heads; RMSE on held-out conditions)")
    rows = label_efficiency(cfg, args.sizes, args.seeds, args.steps, test, pool, val)
    model = next(r.pop("model") for r in rows if "model" in r)
    summary = summarize(rows)
    print(
        f"\n{'N':>6} "
        + " ".join(f"{label + ' ' + init:>22}" for _, label in KEYS for init in ("pretrained", "scratch"))
    )
    for n in sorted(summary[KEYS[0][0]]["pretrained"]):
        cells = [
            f"{summary[k][i][n][0]:8.2f} +- {summary[k][i][n][1]:5.2f}"
            for k, _ in KEYS
            for i in ("pretrained", "scratch")
        ]
        print(f"{n:>6} " + " ".join(f"{c:>22}" for c in cells))
    full = max(summary[KEYS[0][0]]["scratch"])
    efficiency = {}
    for key, label in KEYS:
        target = summary[key]["scratch"][full][0]
        need = labels_to_match(summary[key]["pretrained"], target)
        efficiency[label] = {
            "scratch_full_rmse": target,
            "pretrained_labels_to_match": need,
            "ratio": (need / full) if need else None,
        }
        print(f"  {label}: from scratch with {full} labels {target:.2f} deg; pretrained matches it with "
              + (f"{need} labels ({need / full:.0%})" if need else "no size tried"))  # fmt: skip
    plot_efficiency(summary, out / "label_efficiency.png")

    print(f"\n2. robustness (pretrained, {full} labels)")
    robust, filters, lat = parts_2_to_4(cfg, model, args)
    result = {"label_efficiency": rows, "summary": {k: {i: {str(n): v for n, v in c.items()} for i, c in d.items()}
                                                     for k, d in summary.items()},
              "efficiency": efficiency, "robustness": robust, "filters": filters, "latency": lat,
              "args": vars(args) | {"out": str(out)}, "seconds": time.time() - t0}  # fmt: skip
    (out / "bench_perception.json").write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwrote {out / 'bench_perception.json'} and {out / 'label_efficiency.png'} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
