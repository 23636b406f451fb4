"""Run logs: the MCAP format `hw run --record` writes (mcaplog), its decoded topics (decode), the
software it records (meta), the forked writer (process), and what reads a log back (replay, redrive)."""
