"""Replay of a real recorded run: bit-for-bit on a complete log; a truncated log replays what it holds and says what was lost."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader
from mcap.writer import Writer

from sensorimotor.hardware.log.mcaplog import TOPIC_COMMAND, LogError, iter_log
from sensorimotor.hardware.log.replay import replay
from sensorimotor.hardware.model import OnnxPolicy


def _chunk_ends(path: Path) -> list[int]:
    """Where each chunk's records end (the chunk and its message indexes), via the summary of a complete log."""
    with path.open("rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None
    return [c.chunk_start_offset + c.chunk_length + c.message_index_length for c in summary.chunk_indexes]


def _cut(src: Path, dst: Path, size: int) -> Path:
    dst.write_bytes(src.read_bytes()[:size])
    return dst


def _logged_commands(path: Path) -> tuple[int, float]:
    """Commands in a (truncated) log and the time of its last complete message, as the Python reader sees them."""
    messages = list(iter_log(path))
    return sum(m.topic == TOPIC_COMMAND for m in messages), max(m.log_time_ns for m in messages) / 1e9


def test_complete_log_replays_bit_for_bit_without_a_warning(recorded_run) -> None:
    result = replay(recorded_run.log, OnnxPolicy(recorded_run.model))
    assert len(result.cycles) == recorded_run.commands > 100
    assert result.max_divergence <= 1e-5
    assert not result.truncated and result.warning is None
    # The plot's sensor traces: the newest sample the model saw at each command, gyro in rad/s (finite, moving).
    imu = np.array(result.newest_imu)
    assert imu.shape == (len(result.cycles), 6) and np.isfinite(imu).all() and imu[:, :3].std() > 0
    assert len(result.newest_encoder) == len(result.cycles)


def test_log_without_its_footer_replays_what_it_holds_and_says_what_was_lost(recorded_run, tmp_path: Path) -> None:
    ends = _chunk_ends(recorded_run.log)
    assert len(ends) >= 3
    cut = _cut(recorded_run.log, tmp_path / "crash.mcap", ends[len(ends) // 2])  # the writer died after a flush
    commands, last_s = _logged_commands(cut)
    assert 0 < commands < recorded_run.commands
    result = replay(cut, OnnxPolicy(recorded_run.model))
    assert result.truncated and len(result.cycles) == commands
    assert result.max_divergence <= 1e-5  # what is there is still reproduced bit for bit
    assert result.warning == (
        f"log ends without its footer (the recording stopped abnormally): replayed {commands} commands; "
        f"the last complete message is at t = {last_s:.2f} s; everything after it is lost"
    )


def test_log_cut_in_the_middle_of_a_record_names_the_byte(recorded_run, tmp_path: Path) -> None:
    # the first chunk that ends after a command (on a loaded machine the loop's first commands can come late)
    end = next(
        e
        for e in _chunk_ends(recorded_run.log)[1:]
        if _logged_commands(_cut(recorded_run.log, tmp_path / "c.mcap", e))[0]
    )
    size = end + 700  # the next chunk was being written when the writer died
    cut = _cut(recorded_run.log, tmp_path / "cut.mcap", size)
    commands, last_s = _logged_commands(cut)
    result = replay(cut, OnnxPolicy(recorded_run.model))
    assert result.truncated and len(result.cycles) == commands > 0
    assert result.warning is not None
    assert result.warning.startswith(f"log is cut in the middle of a record at byte {end} of {size} (the recording")
    assert f"replayed {commands} commands; the last complete message is at t = {last_s:.2f} s" in result.warning


def test_log_cut_before_any_command_is_an_error_that_says_it_was_cut(recorded_run, tmp_path: Path) -> None:
    cut = _cut(recorded_run.log, tmp_path / "early.mcap", 2000)
    with pytest.raises(LogError, match=r"early\.mcap holds no commands to replay.*cut in the middle of a record"):
        replay(cut, OnnxPolicy(recorded_run.model))


def test_foreign_files_stay_a_clear_log_error(recorded_run, tmp_path: Path) -> None:
    policy = OnnxPolicy(recorded_run.model)
    text = tmp_path / "notes.mcap"
    text.write_text("not a log at all\n")
    with pytest.raises(LogError, match=r"notes\.mcap is not an MCAP file"):
        replay(text, policy)
    other = tmp_path / "bag.mcap"
    with other.open("wb") as f:
        writer = Writer(f)
        writer.start(profile="ros1")
        channel = writer.register_channel("/chatter", "json", 0)
        writer.add_message(channel, log_time=1, data=b"{}", publish_time=1)
        writer.finish()
    with pytest.raises(LogError, match=r"bag\.mcap is an MCAP file of profile 'ros1'"):
        replay(other, policy)
