"""Build the firmware: the native port (firmware in the loop), the AVR port, the simavr harness.

    python firmware/build.py                          # native: firmware/build/native/smp_native
    python firmware/build.py native --sanitize        # with ASan and UBSan (how the tests build it)
    python firmware/build.py avr [--mcu atmega328p]   # firmware/build/avr/<mcu>.elf (default atmega2560)
    python firmware/build.py cortex-m                 # firmware/build/cortex-m/cortex-m3.elf (LM3S6965, QEMU)
    python firmware/build.py harness                  # firmware/build/avr/harness (libsimavr)
    python firmware/build.py arduino                  # firmware/build/arduino/sensorimotor.elf (an Uno's sketch)

Warnings are errors everywhere. The native build takes frames up to the protocol's largest
payload (it forwards the simulator's camera frames as IMAGE); the ATmega328P build takes
smaller frames and rings to fit its 2 KiB of RAM. `make firmware` builds the native one.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

FIRMWARE = Path(__file__).resolve().parent
BUILD = FIRMWARE / "build"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-O2", "-g"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
MAX_PAYLOAD = 4608  # the protocol's SMP_MAX_PAYLOAD: a 64x64 IMAGE
AVR_CFLAGS = ["-std=gnu99", "-DF_CPU=16000000UL", "-Os", "-Wall", "-Wextra", "-Werror", "-ffunction-sections",
              "-fdata-sections", "-Wl,--gc-sections"]  # fmt: skip
# Per MCU: the 328P's frames hold the Qube's DESCRIBE (202 B) and int16 SENSOR (161 B); it only receives COMMANDs.
MCU_FLAGS = {
    "atmega2560": [],
    "atmega328p": ["-DSMP_FW_MAX_PAYLOAD=204", "-DSMP_FW_MAX_RX_PAYLOAD=40", "-DSMP_NODE_MAX_CHANNELS=6",
                   "-DSMP_NODE_MAX_ENCODERS=1"],
}  # fmt: skip


def _compiler(name: str, package: str) -> str:
    cc = shutil.which(name)
    if cc is None:
        raise RuntimeError(f"no {name}: `make tools` installs {package}")
    return cc


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the {what} build failed:\n{proc.stderr}")


def native(out: Path = BUILD / "native" / "smp_native", sanitize: bool = False) -> Path:
    """Compile src/ and ports/native into ``out``; raises RuntimeError with the compiler's message."""
    cc = shutil.which("gcc") or _compiler("cc", "gcc")
    out.parent.mkdir(parents=True, exist_ok=True)
    sources = [FIRMWARE / "src" / "smp.c", FIRMWARE / "src" / "smp_node.c", FIRMWARE / "ports" / "native" / "main.c"]
    _run([cc, *CFLAGS, *(SANITIZE if sanitize else []), f"-DSMP_FW_MAX_PAYLOAD={MAX_PAYLOAD}",
          f"-I{FIRMWARE / 'include'}", *map(str, sources), "-lm", "-o", str(out)], "native")  # fmt: skip
    return out


def avr(out: Path | None = None, mcu: str = "atmega2560") -> Path:
    """ports/avr for ``mcu`` (-Os); the ELF."""
    if mcu not in MCU_FLAGS:
        raise RuntimeError(f"--mcu {mcu}: the AVR port builds for {', '.join(MCU_FLAGS)}")
    cc = _compiler("avr-gcc", "gcc-avr and avr-libc")
    out = out or BUILD / "avr" / f"{mcu}.elf"
    out.parent.mkdir(parents=True, exist_ok=True)
    sources = [FIRMWARE / "src" / "smp.c", FIRMWARE / "src" / "smp_node.c", FIRMWARE / "ports" / "avr" / "main.c"]
    _run([cc, f"-mmcu={mcu}", *AVR_CFLAGS, *MCU_FLAGS[mcu], f"-I{FIRMWARE / 'include'}", *map(str, sources), "-lm",
          "-o", str(out)], f"AVR ({mcu})")  # fmt: skip
    return out


def cortex_m(out: Path = BUILD / "cortex-m" / "cortex-m3.elf") -> Path:
    """ports/cortex-m for the LM3S6965 (Cortex-M3; QEMU's lm3s6965evb), bare metal with newlib-nano; the ELF."""
    cc = _compiler("arm-none-eabi-gcc", "gcc-arm-none-eabi and libnewlib-arm-none-eabi")
    out.parent.mkdir(parents=True, exist_ok=True)
    port = FIRMWARE / "ports" / "cortex-m"
    sources = [FIRMWARE / "src" / "smp.c", FIRMWARE / "src" / "smp_node.c", port / "main.c"]
    _run([cc, "-std=gnu99", "-mcpu=cortex-m3", "-mthumb", "-Os", "-Wall", "-Wextra", "-Werror", "-ffunction-sections",
          "-fdata-sections", "-Wl,--gc-sections", "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs",
          "-T", str(port / "lm3s6965.ld"), f"-I{FIRMWARE / 'include'}", *map(str, sources), "-lm", "-o", str(out)],
         "Cortex-M")  # fmt: skip
    return out


def harness(out: Path = BUILD / "avr" / "harness") -> Path:
    """ports/avr/simavr/harness.c against libsimavr: runs an AVR build, scripted or on a pty."""
    cc = shutil.which("gcc") or _compiler("cc", "gcc")
    if not Path("/usr/include/simavr/sim_avr.h").exists():
        raise RuntimeError("no libsimavr: `make tools` installs simavr and libsimavr-dev")
    out.parent.mkdir(parents=True, exist_ok=True)
    _run([cc, "-std=gnu99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{FIRMWARE / 'include'}",
          str(FIRMWARE / "ports" / "avr" / "simavr" / "harness.c"), str(FIRMWARE / "src" / "smp.c"), "-lsimavr",
          "-lm", "-o", str(out)], "simavr harness")  # fmt: skip
    return out


ARDUINO_CORE = Path("/usr/share/arduino/hardware/arduino/avr")  # Debian's arduino-core-avr


def arduino(out: Path = BUILD / "arduino" / "sensorimotor.elf") -> Path:
    """ports/arduino/sensorimotor for an Uno (ATmega328P), against Debian's Arduino core, as the IDE would build it:
    the core, the sketch (as C++ after ``#include <Arduino.h>``) and the library, sized by its headers for the 328P."""
    cc, cxx = _compiler("avr-gcc", "gcc-avr and avr-libc"), _compiler("avr-g++", "gcc-avr")
    core = ARDUINO_CORE / "cores" / "arduino"
    if not (core / "Arduino.h").exists():
        raise RuntimeError("no Arduino core: `make tools` installs arduino-core-avr")
    objdir = out.parent / "obj"
    objdir.mkdir(parents=True, exist_ok=True)
    sketch = FIRMWARE / "ports" / "arduino" / "sensorimotor" / "sensorimotor.ino"
    (objdir / "sketch.cpp").write_text(f'#include <Arduino.h>\n#line 1 "{sketch}"\n{sketch.read_text()}')
    common = [
        "-mmcu=atmega328p",
        "-DF_CPU=16000000L",
        "-DARDUINO=10819",
        "-DARDUINO_AVR_UNO",
        "-DARDUINO_ARCH_AVR",
        "-Os",
        "-ffunction-sections",
        "-fdata-sections",
        f"-I{core}",
        f"-I{ARDUINO_CORE / 'variants' / 'standard'}",
        f"-I{FIRMWARE / 'include'}",
    ]  # fmt: skip; no -D sizes: the headers' 328P defaults, as in the IDE
    # the core as the IDE compiles it; DECIMAL_DIG (WString.cpp) is C++17's in avr-gcc 5.4's <float.h>
    cxxflags = [*common, "-std=gnu++11", "-fno-exceptions", "-fno-threadsafe-statics", "-fpermissive",
                "-DDECIMAL_DIG=17", "-w"]  # fmt: skip
    objects = []
    for src in [*sorted(core.glob("*.c")), *sorted(core.glob("*.cpp")), *sorted(core.glob("*.S"))]:
        obj = objdir / f"core-{src.name}.o"
        flags = (
            ["-std=gnu11", "-w"] if src.suffix == ".c" else ["-x", "assembler-with-cpp"] if src.suffix == ".S" else []
        )
        _run([cxx if src.suffix == ".cpp" else cc, *(cxxflags if src.suffix == ".cpp" else [*common, *flags]), "-c",
              str(src), "-o", str(obj)], f"Arduino core ({src.name})")  # fmt: skip
        objects.append(obj)
    # ours with warnings as errors
    for src in [FIRMWARE / "src" / "smp.c", FIRMWARE / "src" / "smp_node.c"]:
        objects.append(objdir / f"{src.stem}.o")
        _run([cc, *common, "-std=gnu99", "-Wall", "-Wextra", "-Werror", "-c", str(src), "-o", str(objects[-1])],
             f"Arduino ({src.name})")  # fmt: skip
    objects.append(objdir / "sketch.o")
    _run([cxx, *common, "-std=gnu++11", "-fno-exceptions", "-fno-threadsafe-statics", "-Wall", "-Wextra", "-Werror",
          "-c", str(objdir / "sketch.cpp"), "-o", str(objects[-1])], "Arduino sketch")  # fmt: skip
    _run([cc, "-mmcu=atmega328p", "-Os", "-Wl,--gc-sections", *map(str, objects), "-lm", "-o", str(out)],
         "Arduino link")  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python firmware/build.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "target", nargs="?", default="native", choices=["native", "avr", "cortex-m", "harness", "arduino"]
    )
    parser.add_argument("--out", type=Path, default=None, help="the output file (default: under firmware/build)")
    parser.add_argument("--sanitize", action="store_true", help="native: with AddressSanitizer and UBSan")
    parser.add_argument("--mcu", default="atmega2560", help=f"avr: one of {', '.join(MCU_FLAGS)}")
    args = parser.parse_args(argv)
    try:
        if args.target == "native":
            built = native(args.out, args.sanitize) if args.out else native(sanitize=args.sanitize)
        elif args.target == "avr":
            built = avr(args.out, args.mcu)
        elif args.target == "cortex-m":
            built = cortex_m(args.out) if args.out else cortex_m()
        elif args.target == "arduino":
            built = arduino(args.out) if args.out else arduino()
        else:
            built = harness(args.out) if args.out else harness()
    except RuntimeError as exc:
        print(f"firmware/build.py: {exc}", file=sys.stderr)
        return 2
    print(built)
    return 0


if __name__ == "__main__":
    sys.exit(main())
