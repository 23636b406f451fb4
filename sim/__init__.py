"""Simulation: Furuta pendulum physics and sensors, the batched device core, Gymnasium envs, the twin (numpy)."""
