"""Hardware runtime: protocol, transport, device client, control loop, MCAP logs, replay, the `hw` CLI.

Light: numpy, pyserial, onnxruntime, mcap. Never imports torch, SB3 or gymnasium.
"""
