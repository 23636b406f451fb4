"""The firmware's C library, compiled natively with warnings as errors and ASan/UBSan, against Python's frames.

Its protocol header and test vectors are generated from the Python message definitions
(firmware/generate.py); the first test fails when the committed ones are stale.
"""

from __future__ import annotations

import importlib.util
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


def _load_build_module():
    spec = importlib.util.spec_from_file_location("firmware_build", FIRMWARE / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build_module()  # firmware/build.py: the flags users build with are the flags tested
MCUS = {"atmega2560": (262_144, 8_192), "atmega328p": (32_768, 2_048)}  # flash, SRAM


@pytest.fixture(scope="module")
def avr_elves(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("avr")
    return {mcu: build.avr(out / f"{mcu}.elf", mcu) for mcu in MCUS}


@pytest.fixture(scope="module")
def simavr_harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build.harness(tmp_path_factory.mktemp("harness") / "harness")


@pytest.mark.parametrize("mcu", list(MCUS))
def test_the_avr_build_runs_on_an_emulated_mcu(mcu: str, simavr_harness: Path, avr_elves: dict[str, Path]) -> None:
    """simavr (libsimavr) runs the AVR build; a scripted host over its UART, in simulated time: handshake,
    streaming at the declared rate (within 0.1 %), every COMMAND as a PWM duty cycle (and how long it took), a
    corrupted COMMAND not feeding the watchdog (in the timer interrupt: PWM zeroed within a tick of watchdog_ms),
    the trip in STATUS, STOP and the counters, each interrupt's worst-case cycles, the stack's peak
    (ports/avr/simavr/harness.c). On the ATmega2560 and on the ATmega328P (2 KiB of SRAM)."""
    proc = subprocess.run([str(simavr_harness), str(avr_elves[mcu]), "--mcu", mcu], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    print(proc.stdout)
    assert proc.returncode == 0 and "passed: 0 failures" in proc.stdout, proc.stdout + proc.stderr
    assert "SENSOR frames in 500 ms of simulated time: 50 " in proc.stdout
    assert "COMMAND -> PWM: 50 of 50 applied" in proc.stdout
    assert re.search(r"interrupt TIMER0_COMPA .*: worst case \d+ cycles", proc.stdout)
    assert re.search(rf"{mcu} SRAM \d+ B: stack peak \d+ B; \d+ B never touched", proc.stdout)


def _check_monitor_lines(stdout: str) -> None:
    """hw monitor of a resting stub board: every interval that got frames reads accel_z 9.81 and no frame was lost
    or bad. The emulators run in real time, so a starved machine may deliver none in an interval (0/s, nan)."""
    lines = [line for line in stdout.splitlines() if "SENSOR" in line and "accel_z" in line]
    fed = [line for line in lines if not re.search(r"SENSOR\s+0/s", line)]
    assert len(fed) >= 3 and all("accel_z   +9.810" in line for line in fed), stdout
    assert all("lost 0 bad 0  (watchdog holds 0 V)" in line for line in lines[1:]), stdout


@pytest.fixture(scope="module")
def arduino_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build.arduino(tmp_path_factory.mktemp("arduino") / "sensorimotor.elf")


@pytest.mark.parametrize("port", ["avr", "arduino"])
def test_hw_info_and_monitor_talk_to_the_emulated_mcu_over_a_pty(
    port: str, simavr_harness: Path, avr_elves: dict[str, Path], request: pytest.FixtureRequest
) -> None:  # fmt: skip
    """The harness bridges the emulated UART to a pty in real time: the host's own commands read the AVR build
    (ATmega2560) and the Arduino sketch (an Uno's ATmega328P, with the Arduino core's Serial and micros())."""
    elf, mcu, name = ((avr_elves["atmega2560"], "atmega2560", "qube-avr") if port == "avr"
                      else (request.getfixturevalue("arduino_elf"), "atmega328p", "qube-uno"))  # fmt: skip
    proc = subprocess.Popen([str(simavr_harness), str(elf), "--pty", "--mcu", mcu], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        port = next(line.strip() for line in proc.stdout if line.startswith("/dev/"))  # simavr prints first
        hw = [sys.executable, "-m", "sensorimotor.cli.hw"]
        info = subprocess.run([*hw, "info", "--port", port], capture_output=True, text=True, timeout=60)
        assert info.returncode == 0, info.stderr
        assert f"device '{name}'" in info.stdout and "gyro_x [rad/s] int16 x 0.000266462" in info.stdout
        assert "camera    none" in info.stdout
        mon = subprocess.run([*hw, "monitor", "--port", port, "--duration", "2.6", "--every", "0.5"],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert mon.returncode == 0, mon.stderr
        # the stub IMU at rest (z up, int16 counts scaled back), no command: the MCU's watchdog holds 0 V
        _check_monitor_lines(mon.stdout)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("mcu", list(MCUS))
def test_the_avr_port_builds_and_fits(mcu: str, avr_elves: dict[str, Path]) -> None:
    """ports/avr: avr-gcc -Os -Werror; flash and static RAM (.data + .bss) printed and bounded, leaving room for a
    board's drivers and the stack (whose peak the emulated run measures)."""
    sizes = subprocess.run(["avr-size", "-A", str(avr_elves[mcu])], capture_output=True, text=True, check=True).stdout
    section = {m[0]: int(m[1]) for m in re.findall(r"^\.(text|data|bss)\s+(\d+)", sizes, re.MULTILINE)}
    flash, ram = section["text"] + section["data"], section["data"] + section["bss"]
    flash_max, sram = MCUS[mcu]
    print(f"{mcu}: flash {flash} B of {flash_max}, RAM {ram} B of {sram} (static; the stack comes on top)")
    assert flash < min(16_384, flash_max // 2) and ram < 0.6 * sram


def test_the_cortex_m_port_runs_under_qemu_and_the_host_reads_it(tmp_path: Path) -> None:
    """ports/cortex-m (LM3S6965, bare metal) built with -Werror; QEMU's lm3s6965evb runs it with UART0 on a pty;
    hw info reads its DESCRIBE, hw monitor its stub IMU and the SysTick watchdog holding 0 V."""
    assert shutil.which("qemu-system-arm"), "no qemu-system-arm: `make tools` installs it"
    elf = build.cortex_m(tmp_path / "cortex-m3.elf")
    sizes = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    section = {m[0]: int(m[1]) for m in re.findall(r"^\.(text|data|bss)\s+(\d+)", sizes, re.MULTILINE)}
    print(f"LM3S6965: flash {section['text'] + section['data']} B, RAM {section['data'] + section['bss']} B (static)")
    assert section["text"] < 16_384 and section["data"] + section["bss"] < 4_096
    qemu = subprocess.Popen(
        ["qemu-system-arm", "-M", "lm3s6965evb", "-nographic", "-monitor", "none", "-serial", "pty", "-kernel", str(elf)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert qemu.stdout is not None
        port = next(m[0] for line in qemu.stdout if (m := re.search(r"/dev/pts/\d+", line)))
        hw = [sys.executable, "-m", "sensorimotor.cli.hw"]
        info = subprocess.run([*hw, "info", "--port", port], capture_output=True, text=True, timeout=60)
        assert info.returncode == 0, info.stderr
        assert "device 'qube-m3'" in info.stdout and "accel_z [m/s^2] int16 x 0.00119708" in info.stdout
        mon = subprocess.run([*hw, "monitor", "--port", port, "--duration", "2.6", "--every", "0.5"],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert mon.returncode == 0, mon.stderr
        _check_monitor_lines(mon.stdout)
    finally:
        qemu.terminate()
        qemu.wait(timeout=10)
