"""Build the firmware's native port (firmware in the loop: `sim twin --firmware PATH`) with the host's C compiler.

    python firmware/build.py                       # firmware/build/native/smp_native
    python firmware/build.py --out PATH --sanitize # with ASan and UBSan (how the tests build it)

C99 with warnings as errors; frames up to the protocol's largest payload, since the native
build also forwards the simulator's camera frames as IMAGE messages. `make firmware` runs it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

FIRMWARE = Path(__file__).resolve().parent
DEFAULT_OUT = FIRMWARE / "build" / "native" / "smp_native"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-O2", "-g"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
MAX_PAYLOAD = 4608  # the protocol's SMP_MAX_PAYLOAD: a 64x64 IMAGE


def native(out: Path, sanitize: bool = False) -> Path:
    """Compile src/ and ports/native into ``out``; raises RuntimeError with the compiler's message."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise RuntimeError("no C compiler: `make tools` installs gcc")
    out.parent.mkdir(parents=True, exist_ok=True)
    sources = [FIRMWARE / "src" / "smp.c", FIRMWARE / "src" / "smp_node.c", FIRMWARE / "ports" / "native" / "main.c"]
    cmd = [cc, *CFLAGS, *(SANITIZE if sanitize else []), f"-DSMP_FW_MAX_PAYLOAD={MAX_PAYLOAD}",
           f"-I{FIRMWARE / 'include'}", *map(str, sources), "-lm", "-o", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the native build failed:\n{proc.stderr}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python firmware/build.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the executable (default: %(default)s)")
    parser.add_argument("--sanitize", action="store_true", help="with AddressSanitizer and UBSan")
    args = parser.parse_args(argv)
    try:
        print(native(args.out, args.sanitize))
    except RuntimeError as exc:
        print(f"firmware/build.py: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
