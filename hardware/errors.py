"""User-facing runtime errors. Each message names what was wrong and what to do.

The CLIs turn these into one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations


class HardwareError(RuntimeError):
    """Base class; ``exit_code`` is what the CLI returns."""

    exit_code = 2


class PortError(HardwareError):
    """The serial port cannot be opened (missing, busy, no permission)."""


class DeviceNotRespondingError(HardwareError):
    """Nothing answered the handshake in time."""


class ProtocolVersionError(HardwareError):
    """The device speaks another version of the protocol."""


class ModelError(HardwareError):
    """The model file is missing, unreadable or not a sensorimotor policy."""


class ModelMismatchError(HardwareError):
    """The model's inputs do not fit what the device described in the handshake."""


class SensorTimeoutError(HardwareError):
    """Sensor frames stopped arriving while running."""

    exit_code = 3


class ConfigMismatchError(HardwareError):
    """The loop's configuration cannot work with what the device described (rates, watchdog)."""


class SafetyStopError(HardwareError):
    """A state-based stop fired (arm past its limit, pendulum fallen): 0 V and STOP were sent."""

    exit_code = 4


class Terminated(HardwareError):
    """SIGTERM (or SIGHUP) arrived: the run was wound down safely."""

    exit_code = 143


class Interrupted(HardwareError):
    """Ctrl-C (SIGINT) while running: the run was wound down safely."""

    exit_code = 130


class LinkLostError(HardwareError):
    """The port vanished mid-run (USB unplugged) and did not come back within ``loop.reconnect_s``."""

    exit_code = 3


class CommandPathLostError(LinkLostError):
    """The device's STATUS says our commands no longer reach it (silent, counter frozen, watchdog held): 0 V and STOP were sent."""


class InvalidDescriptionError(HardwareError):
    """The device answered the handshake, but its DESCRIBE is malformed or inconsistent (names the field)."""
