"""`hw run --live`: a Foxglove WebSocket client subscribes to the running loop and checks what it receives."""

from __future__ import annotations

import asyncio
import collections
import json
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hil_options import LINK_ONLY

pytestmark = pytest.mark.hil
websockets = pytest.importorskip("websockets")
SUBPROTOCOLS = ["foxglove.sdk.v1", "foxglove.websocket.v1"]


async def _subscribe_all(port: int, seconds: float) -> tuple[dict[str, list[bytes]], dict[str, dict]]:
    """Every advertised channel, subscribed; (payloads by topic, channel descriptions by topic)."""
    got: dict[str, list[bytes]] = collections.defaultdict(list)
    channels: dict[str, dict] = {}
    subscriptions: dict[int, str] = {}
    async with websockets.connect(f"ws://127.0.0.1:{port}", subprotocols=SUBPROTOCOLS) as ws:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            try:
                message = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except TimeoutError:
                continue
            if isinstance(message, str):
                op = json.loads(message)
                if op["op"] == "advertise":
                    for channel in op["channels"]:
                        sub = len(subscriptions) + 1
                        subscriptions[sub], channels[channel["topic"]] = channel["topic"], channel
                        await ws.send(json.dumps({"op": "subscribe",
                                                  "subscriptions": [{"id": sub, "channelId": channel["id"]}]}))  # fmt: skip
            elif message[0] == 1:  # message data: opcode, subscription id u32, log time u64, payload
                _, sub, _ = struct.unpack_from("<BIQ", message)
                got[subscriptions[sub]].append(bytes(message[13:]))
    return got, channels


def test_a_foxglove_client_sees_the_running_loop(small_model: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sensorimotor.cli.hw", "run", "--twin", "--model", str(small_model),
         "--duration", "8", "--live", "--live-port", "0", *LINK_ONLY],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = next(line for line in proc.stdout if "live view on ws://" in line)
        port = int(line.split("ws://127.0.0.1:")[1].split()[0])
        got, channels = asyncio.run(_subscribe_all(port, 4.0))
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode in (0, 1), err  # 1: a busy test machine may breach the relaxed timing health
    assert set(channels) == {"/imu", "/encoder", "/command", "/estimates", "/camera", "/health"}
    assert channels["/camera"]["schemaName"] == "foxglove.RawImage"
    for topic in ("/imu", "/encoder", "/command", "/estimates", "/camera"):
        assert len(got[topic]) >= 20, (topic, len(got[topic]))  # decimated to 50 Hz, over seconds of streaming
    imu = json.loads(got["/imu"][-1])
    assert list(imu) == ["gyro_x", "gyro_y", "gyro_z", "accel_x", "accel_y", "accel_z"]
    assert 5.0 < math_norm([imu["accel_x"], imu["accel_y"], imu["accel_z"]]) < 15.0  # gravity, in m/s^2
    assert set(json.loads(got["/encoder"][-1])) == {"arm"}
    commands = [json.loads(m) for m in got["/command"]]
    assert all(len(c["volts"]) == 1 and abs(c["volts"][0]) <= 5.0 for c in commands)
    assert "imu_sin" in json.loads(got["/estimates"][-1])
    assert len(got["/camera"][-1]) > 64 * 64  # a whole 64x64 mono8 frame, with its header
    health = json.loads(got["/health"][-1])
    assert health["cycles"] > 100 and health["frames_lost"] == 0 and health["latency_us_p50"] > 0
    assert "health: " in out  # the run ended as usual, after the server stopped


def math_norm(values: list[float]) -> float:
    return sum(v * v for v in values) ** 0.5


def test_live_on_a_port_in_use_is_refused_naming_it(small_model: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "sensorimotor.cli.hw", "run", "--twin", "--model", str(small_model),
             "--duration", "2", "--live", "--live-port", str(port)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 2 and f"127.0.0.1:{port} is in use" in proc.stderr and "Traceback" not in proc.stderr
    assert "--live-port" in proc.stderr and "twin" not in proc.stdout  # refused before anything started
