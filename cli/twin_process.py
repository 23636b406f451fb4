"""The twin as a child process of a host command: `hw run --twin`, `hw info --twin`, `hw monitor --twin`.

The host reaches it through its pty exactly as it would reach hardware. The child dies
with its parent, even when the parent is killed with SIGKILL (Linux: PR_SET_PDEATHSIG;
elsewhere the twin notices its parent is gone).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sensorimotor.hardware.children import die_with_parent, exit_text
from sensorimotor.hardware.errors import PortError


class TwinProcess:
    """``python -m sensorimotor.cli.twin`` in a subprocess; the host reaches it through its pty like real hardware.

    With ``firmware`` the twin starts the C firmware's native build on the pty and plays its hardware.
    """

    def __init__(
        self, config: Path | None, seed: int, garbage_prob: float = 0.0, overrides: Sequence[str] = (),
        lockstep: bool = False, nominal: bool = False, firmware: Path | None = None,
    ) -> None:  # fmt: skip
        self.truth_path = Path(tempfile.mkstemp(prefix="twin-truth-", suffix=".json")[1])
        # The twin's stderr goes to a file, not a pipe: a pipe nobody reads during the run would block
        # the twin once it held 64 KB of warnings. Read when the twin stops.
        self.stderr = tempfile.TemporaryFile(mode="w+", prefix="twin-stderr-")  # noqa: SIM115 (closed by stop())
        cmd = [sys.executable, "-m", "sensorimotor.cli.twin", "--seed", str(seed), "--truth", str(self.truth_path)]
        cmd += ["--config", str(config)] if config is not None else []
        for item in overrides:
            cmd += ["--set", item]
        if garbage_prob:
            cmd += ["--inject-garbage", str(garbage_prob)]
        if lockstep:
            cmd += ["--lockstep"]
        if nominal:
            cmd += ["--nominal"]
        if firmware is not None:
            cmd += ["--firmware", str(firmware)]
        cmd += ["--parent-pid", str(os.getpid())]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self.stderr, text=True, preexec_fn=die_with_parent,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("/dev/"):
            try:
                self.proc.wait(timeout=5)  # it is ending: let it finish saying why
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            err = self._said()
            self.stderr.close()
            self.truth_path.unlink(missing_ok=True)
            raise PortError(f"the twin did not start: {err.strip() or line or 'no output'}")
        self.port = line
        self._stopped: dict[str, Any] | None = None

    def stop(self) -> dict[str, Any]:
        """Stop the twin; its ground truth, or ``{"twin_error": why}`` when it ended without writing one.

        Stopping it again returns the same."""
        if self._stopped is None:
            self._stopped = self._stop()
        return self._stopped

    def _stop(self) -> dict[str, Any]:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        try:
            return json.loads(self.truth_path.read_text())
        except (OSError, ValueError):  # it crashed (or was killed) before writing: say how, with its last words
            said = [line for line in self._said().splitlines() if line.strip()]
            last = f": {said[-1].strip()}" if said else ""
            return {"twin_error": f"the twin ended without its verdict ({exit_text(self.proc.returncode)}{last})"}
        finally:
            self.truth_path.unlink(missing_ok=True)
            self.stderr.close()

    def _said(self) -> str:
        """What the twin wrote on stderr so far."""
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()
