"""The firmware's C library, compiled natively with warnings as errors and ASan/UBSan, against Python's frames.

Its protocol header and test vectors are generated from the Python message definitions
(firmware/generate.py); the first test fails when the committed ones are stale.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-g", "-O1"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


def test_generated_header_and_vectors_are_current() -> None:
    proc = subprocess.run([sys.executable, str(FIRMWARE / "generate.py"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("gcc") or shutil.which("cc")
    assert cc, "no C compiler: `make tools` installs gcc"
    exe = tmp_path_factory.mktemp("fw") / "test_native"
    cmd = [cc, *CFLAGS, *SANITIZE, "-DSMP_FW_MAX_PAYLOAD=288", f"-I{FIRMWARE / 'include'}", f"-I{FIRMWARE / 'test'}",
           str(FIRMWARE / "src" / "smp.c"), str(FIRMWARE / "test" / "test_native.c"), "-lm", "-o", str(exe)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return exe


def test_c_library_speaks_the_protocol_byte_for_byte(native: Path) -> None:
    """DESCRIBE, SENSOR, STATUS equal Python's; COMMAND, HELLO, START, STOP decode; corrupted frames are dropped."""
    proc = subprocess.run([str(native), "20000"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "passed: 0 failures" in proc.stdout and "FAIL" not in proc.stdout
    assert "20000 inputs, 0 corrupted frames accepted, resynchronised 20000 times" in proc.stdout


def test_the_library_fits_a_256_byte_frame_build(tmp_path: Path) -> None:
    """The default build (SMP_FW_MAX_PAYLOAD 244) compiles warning-free as C99 without the sanitizers' runtime."""
    cc = shutil.which("gcc") or shutil.which("cc")
    assert cc
    proc = subprocess.run(
        [cc, *CFLAGS, "-c", f"-I{FIRMWARE / 'include'}", str(FIRMWARE / "src" / "smp.c"),
         str(FIRMWARE / "src" / "smp_node.c")],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_device_node_session_in_simulated_time(tmp_path: Path) -> None:
    """HELLO -> DESCRIBE (Python's bytes), START, 100 SENSOR frames a second, COMMAND clamped and applied,
    the watchdog zeroing the actuators within 1 ms of watchdog_ms and saying so in STATUS, STOP."""
    cc = shutil.which("gcc") or shutil.which("cc")
    assert cc
    exe = tmp_path / "test_node"
    src = [FIRMWARE / "src" / "smp.c", FIRMWARE / "src" / "smp_node.c", FIRMWARE / "test" / "test_node.c"]
    cmd = [cc, *CFLAGS, *SANITIZE, "-DSMP_FW_MAX_PAYLOAD=288", f"-I{FIRMWARE / 'include'}", f"-I{FIRMWARE / 'test'}",
           *map(str, src), "-lm", "-o", str(exe)]  # fmt: skip
    built = subprocess.run(cmd, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "passed: 0 failures" in proc.stdout, proc.stdout + proc.stderr


def avr_build(out: Path) -> Path:
    """ports/avr for the ATmega2560 with -Os -Werror; the ELF."""
    avr = shutil.which("avr-gcc")
    assert avr, "no avr-gcc: `make tools` installs gcc-avr and avr-libc"
    src = [FIRMWARE / "src" / "smp.c", FIRMWARE / "src" / "smp_node.c", FIRMWARE / "ports" / "avr" / "main.c"]
    elf = out / "fw.elf"
    cmd = [avr, "-std=gnu99", "-mmcu=atmega2560", "-DF_CPU=16000000UL", "-Os", "-Wall", "-Wextra", "-Werror",
           "-ffunction-sections", "-fdata-sections", "-Wl,--gc-sections", f"-I{FIRMWARE / 'include'}",
           *map(str, src), "-lm", "-o", str(elf)]  # fmt: skip
    built = subprocess.run(cmd, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    return elf


@pytest.fixture(scope="module")
def emulated_avr(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the simavr harness, the AVR build's ELF)."""
    cc = shutil.which("gcc") or shutil.which("cc")
    assert cc and Path("/usr/include/simavr/sim_avr.h").exists(), "no libsimavr: `make tools` installs it"
    out = tmp_path_factory.mktemp("avr")
    elf = avr_build(out)
    harness = out / "harness"
    cmd = [cc, "-std=gnu99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{FIRMWARE / 'include'}",
           str(FIRMWARE / "ports" / "avr" / "simavr" / "harness.c"), str(FIRMWARE / "src" / "smp.c"),
           "-lsimavr", "-lm", "-o", str(harness)]  # fmt: skip
    built = subprocess.run(cmd, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    return harness, elf


def test_the_avr_build_runs_on_an_emulated_atmega2560(emulated_avr: tuple[Path, Path]) -> None:
    """simavr (libsimavr) runs the AVR build; a scripted host over its UART, in simulated time: handshake,
    streaming at the declared rate (within 0.1 %), every COMMAND as a PWM duty cycle (and how long it took), a
    corrupted COMMAND not feeding the watchdog (in the timer interrupt: PWM zeroed within a tick of watchdog_ms),
    the trip in STATUS, STOP and the counters, each interrupt's worst-case cycles (ports/avr/simavr/harness.c)."""
    harness, elf = emulated_avr
    proc = subprocess.run([str(harness), str(elf)], capture_output=True, text=True, timeout=300)
    print(proc.stdout)
    assert proc.returncode == 0 and "passed: 0 failures" in proc.stdout, proc.stdout + proc.stderr
    assert "SENSOR frames in 500 ms of simulated time: 50 " in proc.stdout
    assert "COMMAND -> PWM: 50 of 50 applied" in proc.stdout
    assert re.search(r"interrupt TIMER0_COMPA .*: worst case \d+ cycles", proc.stdout)


def test_hw_info_and_monitor_talk_to_the_emulated_mcu_over_a_pty(emulated_avr: tuple[Path, Path]) -> None:
    """The harness bridges the emulated UART to a pty in real time: the host's own commands read the AVR build."""
    harness, elf = emulated_avr
    proc = subprocess.Popen([str(harness), str(elf), "--pty"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        port = next(line.strip() for line in proc.stdout if line.startswith("/dev/"))  # simavr prints first
        hw = [sys.executable, "-m", "sensorimotor.hardware.cli"]
        info = subprocess.run([*hw, "info", "--port", port], capture_output=True, text=True, timeout=60)
        assert info.returncode == 0, info.stderr
        assert "device 'qube-avr'" in info.stdout and "gyro_x [rad/s] int16 x 0.000266462" in info.stdout
        assert "camera    none" in info.stdout
        mon = subprocess.run([*hw, "monitor", "--port", port, "--duration", "2.6", "--every", "0.5"],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert mon.returncode == 0, mon.stderr
        lines = [line for line in mon.stdout.splitlines() if "SENSOR" in line and "accel_z" in line]
        # the stub IMU at rest (z up, int16 counts scaled back), no command: the MCU's watchdog holds 0 V
        assert len(lines) >= 3 and all("accel_z   +9.810" in line for line in lines), mon.stdout
        assert all("lost 0 bad 0  (watchdog holds 0 V)" in line for line in lines[1:]), mon.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_avr_port_builds_and_fits_an_atmega2560(tmp_path: Path) -> None:
    """ports/avr: avr-gcc -Os -Werror for the ATmega2560; flash and RAM (.data + .bss) printed and bounded."""
    elf = avr_build(tmp_path)
    sizes = subprocess.run(["avr-size", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    section = {m[0]: int(m[1]) for m in re.findall(r"^\.(text|data|bss)\s+(\d+)", sizes, re.MULTILINE)}
    flash, ram = section["text"] + section["data"], section["data"] + section["bss"]
    print(f"ATmega2560: flash {flash} B of 262144, RAM {ram} B of 8192 (static; the stack comes on top)")
    assert flash < 16_384 and ram < 4_096  # room for a board's drivers and the stack
