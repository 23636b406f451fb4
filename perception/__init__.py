"""Perception: IMU and image encoders, heads, simulated datasets, pretraining and fine-tuning (torch)."""
