"""The application layer: the ``sim`` and ``hw`` command lines and the processes they start.

Only this package parses a command line or starts the twin; the libraries below it take typed
arguments. ``hw``, the twin and the relay import no training stack (``pyproject.toml``'s
import-linter contracts hold both).
"""
