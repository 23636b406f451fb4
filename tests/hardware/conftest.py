"""A real recorded run for the log tests: the control loop against the in-process lockstep twin, logged as `hw run` does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from sensorimotor.hardware.config import LoopConfig
from sensorimotor.hardware.device import DeviceClient
from sensorimotor.hardware.log.mcaplog import TOPIC_DEVICE, TOPIC_EVENT, TOPIC_META, TOPIC_SUMMARY, LogWriter
from sensorimotor.hardware.loop import ControlLoop
from sensorimotor.hardware.model import OnnxPolicy
from sensorimotor.hardware.safety import actuator_limits
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.task import TaskConfig
from sensorimotor.sim.twin import LoopbackTransport, Twin


@dataclass(frozen=True)
class RecordedRun:
    log: Path
    model: Path
    commands: int
    counts: dict[str, int]  # LogWriter.counts after close


@pytest.fixture(scope="session")
def recorded_run(small_model: Path, tmp_path_factory: pytest.TempPathFactory) -> RecordedRun:
    """1.5 s of device time (150 commands), every topic the CLI records, small chunks (several per log)."""
    log = tmp_path_factory.mktemp("run") / "run.mcap"
    recorder = LogWriter(log, chunk_size=32 * 1024, metadata={"model": str(small_model), "port": "loop://twin"})
    twin = Twin(DeviceConfig(reference=True), TaskConfig(), seed=3, lockstep=True)  # a rig with a reference sensor
    client = DeviceClient(LoopbackTransport(twin), recorder)
    spec = client.connect(1.0)
    policy = OnnxPolicy(small_model)
    limits = actuator_limits([(a.min, a.max) for a in spec.actuators], 5.0)
    recorder.write_json(TOPIC_DEVICE, {"spec": spec.to_dict(), "limits": limits}, log_time_ns=client.now_ns())
    recorder.write_json(TOPIC_META, {"model": str(small_model), "rate_hz": 100.0, "duration_s": 1.5,
                                     "port": "loop://twin", "twin": True}, log_time_ns=client.now_ns())  # fmt: skip
    # An untrained model drives the arm anywhere: the log is under test, not the cable limit.
    loop = ControlLoop(client, policy, 100.0, limits, LoopConfig(arm_limit_rad=100.0), recorder)
    client.start()
    stats = loop.run_lockstep(1.5)
    loop.finish()
    recorder.write_json(TOPIC_EVENT, {"kind": "stop", "message": "end of the run", "cycles": stats.cycles},
                        log_time_ns=client.now_ns())  # fmt: skip
    recorder.write_json(TOPIC_SUMMARY, {"device": spec.name, "rate_hz": 100.0, **stats.summary(0.01),
                                        "health_problems": []}, log_time_ns=client.now_ns())  # fmt: skip
    recorder.close()
    return RecordedRun(log, small_model, stats.commands, recorder.counts)
