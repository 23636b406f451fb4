"""`sim sweep`: seeds and grids parsed and checked before Ray starts; the statistics over seeds; a real
sweep of tiny trainings on a local Ray instance (a crashed trial retried, the summary equal to the runs'
own reports, the best configuration reproducible); Ctrl-C and --resume."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sensorimotor.control.sweep.aggregate import iqm, spread
from sensorimotor.control.sweep.spec import SweepError, parse_axis, parse_seeds, point_name

# Tiny trainings, the zoo's oracle cut to one generation: a trial is seconds of training and a few of scoring.
FAST = ["--preset", "tiny", "--set", "evaluation.oracle_generations=1"]


def _sim(
    *args: str, timeout: float = 1200, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sensorimotor.cli.sim", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)  # fmt: skip


@pytest.mark.parametrize(
    ("text", "seeds"), [("0-4", [0, 1, 2, 3, 4]), ("3", [3]), ("0,2,7", [0, 2, 7]), ("0-1, 5", [0, 1, 5])]
)
def test_seed_ranges(text: str, seeds: list[int]) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["4-1", "a", "", "1,1", "0-"])
def test_bad_seed_ranges_are_refused(text: str) -> None:
    with pytest.raises(SweepError, match="--seeds"):
        parse_seeds(text)


def test_grid_axes() -> None:
    assert parse_axis("rl.gamma=0.95,0.99").values == (0.95, 0.99)
    assert parse_axis("rl.net_arch=[64, 64],[128]").values == ([64, 64], [128])
    a = parse_axis("rl.ppo.learning_rate=1e-4..1e-3:log")
    assert (a.low, a.high, a.log, a.is_range) == (1e-4, 1e-3, True, True)
    assert point_name({"rl.gamma": 0.99, "rl.net_arch": [64, 64]}) == "rl.gamma=0.99,rl.net_arch=_64,64_"
    for bad in ("rl.gamma", "rl.gamma=", "rl.gamma=1,1", "x=2..1", "x=0..1:log"):
        with pytest.raises(SweepError, match="--grid"):
            parse_axis(bad)


def test_iqm_and_bootstrap_intervals() -> None:
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(4.5)  # the middle half: 3, 4, 5, 6
    assert iqm([0, 0.9, 0.9, 100]) == pytest.approx(0.9)  # an outlier seed does not move it
    s = spread([0.7, 0.8, 0.9, 1.0, 0.95])
    assert s.mean == pytest.approx(0.87) and s.std == pytest.approx(np.std([0.7, 0.8, 0.9, 1.0, 0.95], ddof=1))
    assert s.mean_ci[0] < s.mean < s.mean_ci[1] and s.iqm_ci[0] <= s.iqm <= s.iqm_ci[1]
    assert spread([0.7, 0.8, 0.9, 1.0, 0.95]) == s  # seeded resampling
    one = spread([0.5, math.nan])
    assert one.n == 1 and math.isnan(one.std) and math.isnan(one.mean_ci[0])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--grid", "rl.gammma=0.9,0.99"], "rl.gammma: unknown field (did you mean 'gamma'?)"),
        (["--seeds", "2-0"], "--seeds '2-0': the range 2-0 runs backwards"),
        (["--metric", "reward"], "--metric reward: no run of this config reports it"),
        (["--address", "127.0.0.1:1"], "--address 127.0.0.1:1: nothing answers there"),
        (["--grid", "rl.gamma=0.9..0.99"], "a range is searched with --optuna N"),
        (["--grid", "rl.gamma=1.5"], "rl.gamma"),  # out of its range, named by the config check
        (["--metric", "twin_success"], "--metric twin_success: measured only with --twin-runs N"),
        (["--twin-runs", "-1"], "--twin-runs -1: give a count >= 0"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2_before_anything_runs(args: list[str], expected: str, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    proc = _sim("sweep", *FAST, "--out", str(out), *args, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and expected in lines[0], proc.stderr
    assert not out.exists()  # nothing written, no Ray started


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """2 grid points x 2 seeds of the tiny preset on a local Ray instance; one trial crashes on its first try;
    each trained policy then runs once on the twin over a pty. --out is relative to the command's folder (Ray runs
    trials elsewhere)."""
    here = tmp_path_factory.mktemp("sweep")
    out = here / "s"
    proc = _sim("sweep", *FAST, "--out", "s", "--seeds", "0-1", "--grid", "rl.gamma=0.95,0.99",
                "--inject-fault", "rl.gamma=0.99/seed1", "--twin-runs", "1", cwd=here)  # fmt: skip
    return out, proc


def test_a_grid_over_seeds_runs_every_trial_as_an_ordinary_run(sweep: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, proc = sweep
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rl.gamma=0.99/seed1 crashed; retrying it once" in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.count("[sim sweep] ") >= 5  # the plan, then one line per finished trial
    for point in ("rl.gamma=0.95", "rl.gamma=0.99"):
        for seed in (0, 1):
            run = out / "runs" / point / f"seed{seed}"
            report = json.loads((run / "report.json").read_text())
            assert report["seed"] == seed and (run / "policy.onnx").stat().st_size > 0
            assert f"gamma: {point.split('=')[1]}" in (run / "config.yaml").read_text()


def test_the_summary_is_the_spread_of_the_runs_own_reports(sweep: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, _ = sweep
    table = json.loads((out / "summary.json").read_text())
    assert set(table) == {"rl.gamma=0.95", "rl.gamma=0.99"}
    for point, entry in table.items():
        assert entry["seeds"] == [0, 1]
        rmse = [json.loads((out / "runs" / point / f"seed{s}" / "report.json").read_text())["imu_angle_rmse_deg"]
                for s in (0, 1)]  # fmt: skip
        figure = entry["metrics"]["imu_angle_rmse_deg"]
        assert figure["values"] == pytest.approx(rmse) and figure["mean"] == pytest.approx(np.mean(rmse))
        assert figure["std"] == pytest.approx(np.std(rmse, ddof=1))
    assert "| rl.gamma=0.95 | heldout_success | 2 |" in (out / "summary.md").read_text()
    assert "| rl.gamma=0.95 | twin_success | 2 |" in (out / "summary.md").read_text()


def test_every_trial_ran_on_the_twin_and_the_summary_counts_it(sweep: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, _ = sweep
    table = json.loads((out / "summary.json").read_text())
    for point, entry in table.items():
        wins = []
        for s in (0, 1):
            twin = json.loads((out / "runs" / point / f"seed{s}" / "twin_runs.json").read_text())
            assert len(twin["runs"]) == 1 and "latency_us_p50" in twin["runs"][0], twin  # a real hw run, no error
            wins.append(float(twin["successes"]))
        assert entry["metrics"]["twin_success"]["values"] == wins
    for png in ("curves.png", "final.png"):
        assert (out / png).stat().st_size > 10_000


def test_the_best_configuration_loads_as_the_run_it_came_from(sweep: tuple[Path, subprocess.CompletedProcess]) -> None:
    from sensorimotor.control.config import load_experiment

    out, _ = sweep
    best = out / "best.yaml"
    header = best.read_text().splitlines()[0]
    point = header.split(": ")[1].split(",")[0]
    assert point in ("rl.gamma=0.95", "rl.gamma=0.99")
    assert load_experiment(best) == load_experiment(out / "runs" / point / "seed0" / "config.yaml")


def test_sim_train_on_one_thread_reproduces_a_trial_bit_for_bit(
    sweep: tuple[Path, subprocess.CompletedProcess], tmp_path: Path
) -> None:
    """A trial runs on the one CPU it reserved; `sim train --config` of its config.yaml, held to one thread
    too, retrains the same controller: the same weights in the ONNX graph and the same report figures."""
    import onnx
    from onnx import numpy_helper

    out, _ = sweep
    trial = out / "runs" / "rl.gamma=0.95" / "seed0"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    proc = _sim("train", "--config", str(trial / "config.yaml"), "--out", str(tmp_path / "again"), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]

    def weights(run: Path) -> dict[str, np.ndarray]:
        graph = onnx.load(str(run / "policy.onnx")).graph
        return {t.name: numpy_helper.to_array(t) for t in graph.initializer}

    ours, theirs = weights(tmp_path / "again"), weights(trial)
    assert ours.keys() == theirs.keys()
    assert all(np.array_equal(ours[k], theirs[k]) for k in ours)
    mine, trials = (json.loads((run / "report.json").read_text()) for run in (tmp_path / "again", trial))
    for key in ("eval_success_rate", "heldout_success", "imu_angle_rmse_deg", "onnx_parity_max_abs_diff"):
        assert mine[key] == trials[key], key


def test_resume_adds_the_twin_check_to_a_trial_that_lacks_it(sweep: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, _ = sweep
    lacking = out / "runs" / "rl.gamma=0.99" / "seed0"
    (lacking / "twin_runs.json").unlink()
    kept = out / "runs" / "rl.gamma=0.95" / "seed0" / "twin_runs.json"
    stamp = kept.stat().st_mtime_ns
    proc = _sim("sweep", "--resume", str(out), "--twin-runs", "1", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(json.loads((lacking / "twin_runs.json").read_text())["runs"]) == 1
    assert kept.stat().st_mtime_ns == stamp  # checked once
    table = json.loads((out / "summary.json").read_text())
    assert table["rl.gamma=0.99"]["metrics"]["twin_success"]["n"] == 2


def test_resuming_a_finished_sweep_runs_nothing_again(sweep: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, _ = sweep
    stamp = (out / "runs" / "rl.gamma=0.95" / "seed0" / "report.json").stat().st_mtime_ns
    proc = _sim("sweep", "--resume", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "runs" / "rl.gamma=0.95" / "seed0" / "report.json").stat().st_mtime_ns == stamp
    again = _sim("sweep", *FAST, "--out", str(out), timeout=120)  # the folder holds a sweep: refused, untouched
    assert again.returncode == 2 and f"--resume {out}" in again.stderr


@pytest.mark.slow
def test_ctrl_c_stops_the_sweep_and_resume_finishes_it(tmp_path: Path) -> None:
    """SIGINT during the second of two trials (one at a time): it stops at once, exit 130 naming --resume; --resume
    runs only the second."""
    out = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-m", "sensorimotor.cli.sim", "sweep", *FAST, "--out", str(out),
                             "--seeds", "0-1", "--cpus", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    first = out / "runs" / "base" / "seed0" / "report.json"
    second = out / "runs" / "base" / "seed1" / "train.log"  # written as the second trial starts training
    deadline = time.monotonic() + 600
    while not second.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert first.exists() and second.exists(), proc.communicate()[1][-3000:]
    time.sleep(1)  # inside the second trial's training
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)  # at once: the running trial is stopped, not waited for
    assert proc.returncode == 130 and f"sim sweep --resume {out}" in err, err[-3000:]
    assert not (out / "runs" / "base" / "seed1" / "report.json").exists()
    stamp = first.stat().st_mtime_ns
    resumed = _sim("sweep", "--resume", str(out), "--cpus", "1")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (out / "runs" / "base" / "seed1" / "report.json").exists() and first.stat().st_mtime_ns == stamp
    assert json.loads((out / "summary.json").read_text())["base"]["seeds"] == [0, 1]


@pytest.mark.slow
def test_an_optuna_search_writes_the_best_suggestion_as_a_config(tmp_path: Path) -> None:
    """Optuna's TPE through Ray Tune over a log range: every suggestion inside it; best.yaml is the best trial's."""
    from sensorimotor.control.config import load_experiment

    out = tmp_path / "s"
    proc = _sim("sweep", *FAST, "--out", str(out), "--optuna", "2", "--grid", "rl.ppo.learning_rate=1e-4..1e-3:log",
                "--metric", "seconds_total")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = sorted((out / "runs").glob("*/seed0/report.json"))
    assert len(reports) == 2
    rates = [load_experiment(r.parent / "config.yaml").rl.ppo.learning_rate for r in reports]
    assert all(1e-4 <= lr <= 1e-3 for lr in rates) and rates[0] != rates[1]
    seconds = [json.loads(r.read_text())["seconds_total"] for r in reports]  # a "min" figure: the faster is best
    assert load_experiment(out / "best.yaml").rl.ppo.learning_rate == rates[int(np.argmin(seconds))]
