"""The sweep on Ray Tune: each trial one ordinary training run (the trainer ``sim train`` uses) in its own
run folder; a grid over seeds, or Optuna's TPE through Ray Tune with median pruning.

Ray is local by default (``ray.init`` with this machine's cores) or an existing cluster (``--address``).
Each trial asks for ``cpus_per_trial`` CPUs and runs torch on as many threads, so trials never
oversubscribe the machine. Tune keeps the experiment's state under DIR/ray: ``--resume`` restores it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune import Callback
from tqdm import tqdm

from sensorimotor.control.sweep.spec import SweepError, SweepSpec, metric_value, metrics_of, point_name
from sensorimotor.control.twin_runs import TWIN_FILE, check, save
from sensorimotor.control.twin_runs import figures as twin_figures

EXPERIMENT = "sweep"  # Tune's experiment folder under DIR/ray
FAULT_MARKER = ".sweep-fault-injected"


# ---------------------------------------------------------------------------- the trial (in a Ray worker)


def _trial_point(spec: SweepSpec, config: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The grid point (or Optuna's suggestion) and the seed a trial's Tune config stands for."""
    point = spec.points()[config["point"]] if "point" in config else {a.key: config[a.key] for a in spec.axes}
    seed = config["seed"] if "seed" in config else spec.seeds[int(config.get("__trial_index__", 0))]
    return point, seed


def _inject_fault(spec: SweepSpec, out: Path) -> None:
    """Tests: ``--inject-fault POINT/seedN[:always]`` crashes that trial once (or every time)."""
    target, _, mode = spec.inject_fault.partition(":")
    if not target or f"{out.parent.name}/{out.name}" != target:
        return
    if mode == "always" or not (out / FAULT_MARKER).exists():
        out.mkdir(parents=True, exist_ok=True)
        (out / FAULT_MARKER).touch()
        raise RuntimeError(f"injected fault in {target} (--inject-fault)")


def trial(config: dict[str, Any], spec_dict: dict[str, Any]) -> None:
    """One sweep trial: ``sim train`` into the trial's run folder, reporting to Tune.

    A trial whose folder already holds a report.json (a resumed sweep) reports it again without training;
    one retried after a crash resumes from its folder's last checkpoint when there is one.
    """
    spec = SweepSpec(**spec_dict)
    point, seed = _trial_point(spec, config)
    out = spec.run_dir(point, seed)
    metrics = metrics_of(spec.config, spec.preset, spec.overrides)
    prune = _prunes(spec, metrics)

    def final(report: dict[str, Any]) -> dict[str, Any]:
        figures = {m: metric_value(report, m) for m in metrics}
        return {"objective": figures[spec.metric], "final": 1, "timesteps": report.get("rl_timesteps", 0), **figures}

    if (out / "report.json").is_file():
        check_on_twin(spec, out)
        tune.report(final(json.loads((out / "report.json").read_text()) | twin_figures(out)))
        return
    _inject_fault(spec, out)
    from sensorimotor.control.checkpoints import ResumeError, find
    from sensorimotor.control.config import resolved_run
    from sensorimotor.control.train import run

    _own_cores(spec.cpus_per_trial)
    cfg, config_text = resolved_run(spec.config, spec.preset, spec.trial_overrides(point, seed), out)
    resume = None
    if (out / "checkpoints").is_dir():
        with contextlib.suppress(ResumeError):
            resume = find(out, cfg.rl)
    if resume is None:
        for stale in ("checkpoints", "tensorboard"):
            shutil.rmtree(out / stale, ignore_errors=True)

    def on_eval(steps: int, figures: dict[str, float]) -> None:
        if prune and "success_rate" in figures:  # pruning compares the run's own evaluation at equal steps
            tune.report({"objective": figures["success_rate"], "final": 0, "timesteps": steps})

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "train.log", "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        report = run(cfg, out, spec.preset, config_text, resume, on_eval=on_eval)
    check_on_twin(spec, out)
    tune.report(final(report | twin_figures(out)))


def check_on_twin(spec: SweepSpec, out: Path) -> None:
    """--twin-runs: the exported policy over the pty on that many twin seeds (once: RUN/twin_runs.json)."""
    if spec.twin_runs <= 0 or (out / TWIN_FILE).is_file():
        return
    with open(out / "train.log", "a") as log:
        result = check(out, spec.twin_runs, log=lambda line: print(line, file=log, flush=True))
    save(out, result)


def _own_cores(cpus: float) -> None:
    """Keep a trial to the CPUs it reserved: torch's threads and the simulator's numba threads (prange over the
    envs takes every core by default; two trials each on all of them run at half speed)."""
    import numba
    import torch

    n = max(1, int(cpus))
    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]


def _prunes(spec: SweepSpec, metrics: dict[str, str]) -> bool:
    """Median pruning on the periodic evaluations: Optuna searches, one seed a configuration (Ray's Repeater
    cannot stop repeats early), a metric to maximise (the evaluation's success stands in for it)."""
    return spec.optuna > 0 and spec.prune and len(spec.seeds) == 1 and metrics[spec.metric] == "max"


# ---------------------------------------------------------------------------- the driver


PRUNED_FILE, FAILED_FILE = "pruned.txt", "failed.txt"  # trials the median rule stopped; trials that failed twice


class Progress:
    """One line per finished, pruned, retried or failed trial, and an overall bar (stderr). Pruned and failed
    trials are listed in DIR/pruned.txt and DIR/failed.txt (a resumed sweep retries the failed ones)."""

    def __init__(self, spec: SweepSpec) -> None:
        self.spec, self.out = spec, Path(spec.out)
        self.total = total_trials(spec)
        self.done = finished_trials(spec) + len(listed(self.out / PRUNED_FILE))
        self.bar = tqdm(total=self.total, initial=self.done, desc="sweep", unit="trial", file=sys.stderr,
                        dynamic_ncols=True)  # fmt: skip

    def _name(self, trial: Any) -> str:
        point, seed = _trial_point(self.spec, trial.config)
        return f"{point_name(point)}/seed{seed}"

    def _line(self, text: str) -> None:
        self.bar.write(f"[sim sweep] {text}", file=sys.stderr)

    def _count(self, listing: str | None, trial: Any) -> None:
        self.done += 1
        self.bar.update(1)
        if listing:
            with open(self.out / listing, "a") as f:
                f.write(self._name(trial) + "\n")

    def complete(self, trial: Any) -> None:
        r = trial.last_result or {}
        if r.get("final"):
            self._count(None, trial)
            self._line(f"{self.done}/{self.total} {self._name(trial)}: {self.spec.metric} "
                       f"{r.get(self.spec.metric, math.nan):.4g} ({r.get('time_total_s', math.nan):.0f} s)")  # fmt: skip
        else:  # stopped early by the median rule
            self._count(PRUNED_FILE, trial)
            self._line(f"{self.done}/{self.total} {self._name(trial)}: pruned at step {r.get('timesteps', 0)} "
                       f"(evaluation {r.get('objective', math.nan):.0%}, below the median of the others)")  # fmt: skip

    def recover(self, trial: Any) -> None:
        self._line(f"{self._name(trial)} crashed; retrying it once (its log: {self._log(trial)})")

    def error(self, trial: Any) -> None:
        self._count(FAILED_FILE, trial)
        self._line(f"{self.done}/{self.total} {self._name(trial)} FAILED twice; the sweep goes on (its log: "
                   f"{self._log(trial)})")  # fmt: skip

    def _log(self, trial: Any) -> Path:
        point, seed = _trial_point(self.spec, trial.config)
        return self.spec.run_dir(point, seed) / "train.log"


def listed(path: Path) -> list[str]:
    return path.read_text().split() if path.is_file() else []


class TuneProgress(Callback):
    """:class:`Progress` as a Tune callback. Tune pickles it with the experiment: only the spec goes in, and
    a restored sweep starts a fresh bar."""

    def __init__(self, spec: SweepSpec) -> None:
        self.spec_dict: dict[str, Any] = asdict(spec)
        self.progress: Progress | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"spec_dict": self.spec_dict}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.spec_dict, self.progress = state["spec_dict"], None

    def setup(self, stop: Any = None, num_samples: int | None = None, total_num_samples: int | None = None,
              **info: Any) -> None:  # fmt: skip
        self.progress = Progress(SweepSpec(**self.spec_dict))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.progress:
            self.progress.complete(trial)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.progress:
            self.progress.recover(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.progress:
            self.progress.error(trial)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self.progress:
            self.progress.bar.close()


def total_trials(spec: SweepSpec) -> int:
    return (spec.optuna if spec.optuna > 0 else len(spec.points())) * len(spec.seeds)


def finished_trials(spec: SweepSpec) -> int:
    return sum(1 for _ in (Path(spec.out) / "runs").glob("*/seed*/report.json"))


def _trainable(spec: SweepSpec) -> Any:
    return tune.with_resources(tune.with_parameters(trial, spec_dict=asdict(spec)), {"cpu": spec.cpus_per_trial})


def _tuner(spec: SweepSpec, storage: Path, mode: str) -> tune.Tuner:
    trainable = _trainable(spec)
    run_config = tune.RunConfig(
        name=EXPERIMENT, storage_path=str(storage), verbose=0, callbacks=[TuneProgress(spec)],
        failure_config=tune.FailureConfig(max_failures=1),  # a crashed trial is retried once, then reported
    )  # fmt: skip
    if spec.optuna <= 0:
        grid = {"point": tune.grid_search(list(range(len(spec.points())))), "seed": tune.grid_search(spec.seeds)}
        return tune.Tuner(
            trainable, param_space=grid, tune_config=tune.TuneConfig(num_samples=1), run_config=run_config
        )
    import optuna
    from ray.tune.schedulers import FIFOScheduler, MedianStoppingRule
    from ray.tune.search import Repeater
    from ray.tune.search.optuna import OptunaSearch

    space: dict[str, Any] = {}
    for a in spec.axes:
        if a.low is not None and a.high is not None:
            space[a.key] = tune.loguniform(a.low, a.high) if a.log else tune.uniform(a.low, a.high)
        else:
            space[a.key] = tune.choice(list(a.values))
    sampler = optuna.samplers.TPESampler(seed=spec.seeds[0])  # seeded: the same suggestions on a rerun
    searcher: Any = OptunaSearch(metric="objective", mode=mode, sampler=sampler)
    if len(spec.seeds) > 1:
        searcher = Repeater(searcher, repeat=len(spec.seeds))  # each suggestion on every seed, averaged
    metrics = metrics_of(spec.config, spec.preset, spec.overrides)
    total = _total_steps(spec)
    scheduler = (
        MedianStoppingRule(time_attr="timesteps", metric="objective", mode="max", grace_period=0.3 * total,
                           min_samples_required=3)
        if _prunes(spec, metrics) else FIFOScheduler()
    )  # fmt: skip
    return tune.Tuner(
        trainable, param_space=space, run_config=run_config,
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=total_trials(spec)),
    )  # fmt: skip


def _total_steps(spec: SweepSpec) -> int:
    from sensorimotor.control.config import load_experiment

    return load_experiment(spec.config, spec.preset, spec.overrides).rl.total_timesteps


def run_sweep(spec: SweepSpec, address: str | None, resume: bool, num_cpus: int | None, dashboard: bool) -> int:
    """Run (or resume) the sweep; write the summary, plots and best config. The exit status: 0 all trials
    finished (or pruned), 1 some failed twice, 130 interrupted (``--resume`` continues)."""
    import ray

    out = Path(spec.out).resolve()
    storage = out / "ray"
    mode = metrics_of(spec.config, spec.preset, spec.overrides)[spec.metric]
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no CSV/TensorBoard copies: runs keep theirs
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")  # local trials keep this cwd: relative --set paths hold
    # Ctrl-C stops the running trials at once: Tune's own handler waits for them to finish (a full-preset
    # trial: most of an hour), then reports the sweep complete. Python's raises KeyboardInterrupt here.
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
    (out / FAILED_FILE).unlink(missing_ok=True)  # a resumed sweep retries them
    try:
        ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=dashboard,
                 log_to_driver=False, logging_level=logging.ERROR,
                 object_store_memory=None if address else 200 << 20)  # fmt: skip
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise SweepError(
            f"--address {address or 'local'}: Ray did not start or connect: {str(exc).splitlines()[0]}"
        ) from None
    total = total_trials(spec)
    cpus = ray.cluster_resources().get("CPU", 0)
    print(f"[sim sweep] {total} trials ({spec.optuna or len(spec.points())} configurations x {len(spec.seeds)} seeds), "
          f"{spec.cpus_per_trial:g} CPU each on {cpus:g} CPUs: up to {int(cpus // spec.cpus_per_trial)} at once; "
          f"run folders in {out / 'runs'}", file=sys.stderr)  # fmt: skip
    experiment = storage / EXPERIMENT
    interrupted = False
    try:
        if resume and tune.Tuner.can_restore(str(experiment)):
            tuner = tune.Tuner.restore(str(experiment), _trainable(spec), resume_unfinished=True, restart_errored=True)
        else:
            tuner = _tuner(spec, storage, mode)
        tuner.fit()
    except KeyboardInterrupt:  # the running trials end with Ray; --resume runs them again (from their checkpoints)
        interrupted = True
        print("\n[sim sweep] interrupted: stopping the running trials", file=sys.stderr, flush=True)
    finally:
        ray.shutdown()
    if not interrupted:
        _check_finished_on_twin(spec, out)
    return _report(spec, out, mode, total)


def _check_finished_on_twin(spec: SweepSpec, out: Path) -> None:
    """--twin-runs given on --resume: finished trials (which Ray does not run again) get their twin check here."""
    if spec.twin_runs <= 0:
        return
    for report in sorted((out / "runs").glob("*/seed*/report.json")):
        if not (report.parent / TWIN_FILE).is_file():
            name = f"{report.parent.parent.name}/{report.parent.name}"
            print(f"[sim sweep] {name}: on the twin, {spec.twin_runs} runs", file=sys.stderr, flush=True)
            check_on_twin(spec, report.parent)


def _report(spec: SweepSpec, out: Path, mode: str, total: int) -> int:
    from sensorimotor.control.sweep import aggregate, plots

    table = aggregate.write(out)
    plots.learning_curves(out / "runs", out / "curves.png")
    others = [m for m in ("eval_success_rate", "mean_return") if m != spec.metric]
    plots.final_figures(out / "runs", [spec.metric, *others], out / "final.png")
    best = write_best(out, table, spec.metric, mode)
    print(aggregate.markdown(table, [spec.metric]), end="")
    print(
        f"[sim sweep] wrote {out / 'summary.md'}, summary.json, curves.png, final.png" + (", best.yaml" if best else "")
    )
    finished, pruned, failed = finished_trials(spec), len(listed(out / PRUNED_FILE)), len(listed(out / FAILED_FILE))
    if finished + pruned + failed < total:
        print(f"[sim sweep] stopped after {finished + pruned + failed} of {total} trials; `sim sweep --resume "
              f"{spec.out}` continues", file=sys.stderr)  # fmt: skip
        return 130
    if failed:
        print(f"[sim sweep] {failed} of {total} trials failed twice (listed in {out / FAILED_FILE}; their train.log "
              "says why); `sim sweep --resume` retries them", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def write_best(out: Path, table: dict[str, Any], metric: str, mode: str) -> Path | None:
    """DIR/best.yaml: the best configuration by ``metric``'s mean over seeds, as the config file of its first
    seed's run (``sim train --config DIR/best.yaml`` reproduces that run)."""
    scored = [(e["metrics"][metric]["mean"], p, e["seeds"]) for p, e in table.items() if metric in e["metrics"]]
    scored = [s for s in scored if not math.isnan(s[0])]
    if not scored:
        return None
    value, point, seeds = (max if mode == "max" else min)(scored, key=lambda s: s[0])
    source = out / "runs" / point / f"seed{seeds[0]}" / "config.yaml"
    best = out / "best.yaml"
    best.write_text(f"# The best configuration of sim sweep {out}: {point}, {metric} {value:.4g} (mean over seeds "
                    f"{', '.join(map(str, seeds))}).\n" + source.read_text())  # fmt: skip
    return best
