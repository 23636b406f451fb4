"""make demo's summary: the twin's verdict as the twin wrote it, or derived for a run.json that predates it."""

from __future__ import annotations

import json
from pathlib import Path

from sensorimotor.control.summary import main, summarize


def _hw(twin: dict) -> dict:
    return {"achieved_rate_hz": 100.0, "latency_us_p50": 640.0, "latency_us_p99": 900.0, "frames_lost": 0,
            "frames_bad": 0, "twin": {"upright_s": 12.5, "streaming_s": 16.0, **twin}}  # fmt: skip


def test_the_twin_line_carries_the_twins_own_verdict(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps(_hw({"verdict": "swingup: success (upright after 0.91 s)"})))
    assert "-> SWINGUP: SUCCESS (UPRIGHT AFTER 0.91 S)" in summarize(tmp_path)


def test_an_older_run_json_gets_its_verdict_from_the_truth(tmp_path: Path) -> None:
    twin = {"task": "swingup", "success": False, "arm_past_limit": True}
    (tmp_path / "run.json").write_text(json.dumps(_hw(twin)))
    assert "-> SWINGUP: FAILED (ARM PAST ITS CABLE LIMIT)" in summarize(tmp_path)


def test_a_folder_without_a_report_is_named_with_exit_2(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.argv", ["summary", str(tmp_path)])
    assert main() == 2 and "no report.json" in capsys.readouterr().err
