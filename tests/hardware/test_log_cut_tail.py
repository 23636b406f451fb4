"""A log cut in its last bytes (closing magic, footer, index) is reported as truncated, like a log whose writer died.

Only a file that ends with its footer and closing magic is complete. A copy that lost its
last byte still holds every message: replay reproduces them all and says the file was cut.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from sensorimotor.cli import hw as hw_cli
from sensorimotor.hardware.log.mcaplog import TOPIC_COMMAND, LogReader
from sensorimotor.hardware.log.replay import replay
from sensorimotor.hardware.model import OnnxPolicy

MAGIC = 8  # the MCAP magic bytes that close the file
FOOTER = 1 + 8 + 8 + 8 + 4  # opcode, record length, summary_start, summary_offset_start, summary_crc


def _tail_cuts(log: Path) -> dict[str, int]:
    """name -> bytes to keep: cut points in what the writer adds on closing (the footer says where it starts)."""
    data = log.read_bytes()
    summary_start = struct.unpack_from("<Q", data, len(data) - MAGIC - FOOTER + 9)[0]
    return {
        "last byte": len(data) - 1,
        "closing magic": len(data) - MAGIC,
        "inside the footer": len(data) - MAGIC - FOOTER // 2,
        "inside the summary": summary_start + 5,
    }


@pytest.mark.parametrize("cut", ["last byte", "closing magic", "inside the footer", "inside the summary"])
def test_a_log_cut_in_its_last_bytes_replays_every_command_and_says_it_was_cut(
    recorded_run, tmp_path: Path, cut: str
) -> None:  # fmt: skip
    keep = _tail_cuts(recorded_run.log)[cut]
    path = tmp_path / "cut.mcap"
    path.write_bytes(recorded_run.log.read_bytes()[:keep])
    reader = LogReader(path)
    messages = list(reader)
    assert reader.end is not None and not reader.end.complete and not reader.end.lost_messages
    assert sum(m.topic == TOPIC_COMMAND for m in messages) == recorded_run.commands  # every message is there
    result = replay(path, OnnxPolicy(recorded_run.model))
    assert result.truncated and len(result.cycles) == recorded_run.commands and result.max_divergence <= 1e-5
    assert result.warning is not None
    assert result.warning.startswith(f"log is cut at byte {keep}, after its last message")
    assert f"replayed {recorded_run.commands} commands, every one the log holds" in result.warning


def test_hw_replay_of_a_log_missing_its_last_byte_warns_and_exits_as_a_reproduced_replay(
    recorded_run, tmp_path: Path, capsys
) -> None:  # fmt: skip
    path, summary = tmp_path / "cut.mcap", tmp_path / "replay.json"
    path.write_bytes(recorded_run.log.read_bytes()[:-1])
    argv = ["replay", str(path), "--model", str(recorded_run.model), "--plot", str(tmp_path / "r.png")]
    assert hw_cli.main([*argv, "--json", str(summary)]) == 0  # reproduced: a truncated log is not a failed replay
    out = capsys.readouterr().out
    assert f"WARNING: log is cut at byte {path.stat().st_size}, after its last message" in out
    assert json.loads(summary.read_text())["truncated"] is True


def test_the_complete_log_is_still_complete(recorded_run) -> None:
    reader = LogReader(recorded_run.log)
    assert sum(1 for _ in reader) > 0
    assert reader.end is not None and reader.end.complete and reader.end.describe() == "log is complete"
