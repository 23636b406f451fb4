"""Control: RL training with perception in the loop, evaluation, ONNX export, the `sim` CLI (torch, SB3)."""
