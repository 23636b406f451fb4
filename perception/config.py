"""Perception's vocabularies and config sections, free of torch so a command line or a config check needs none.

:mod:`sensorimotor.perception.train`, ``pretrain``, ``filter`` and ``models`` use them (and
re-export them under their old names).
"""

from __future__ import annotations

from dataclasses import dataclass

from sensorimotor.configs.schema import Section, doc, nested

# What the observation model hands the controller, in order (perception/models.py computes them).
OBS_NAMES = (
    "imu_sin", "imu_cos", "imu_rate", "img_sin", "img_cos", "camera_ok", "arm_angle", "arm_rate",
    "fused_sin", "fused_cos", "fused_rate",
)  # fmt: skip
FREEZE = ("linear", "partial", "full", "lp-ft")  # what fine-tuning trains (PerceptionConfig.freeze)
IMU_OBJECTIVES = ("forecast", "crossmodal", "kinematic", "masked")  # self-supervised IMU objectives


@dataclass(frozen=True)
class FilterConfig(Section):
    """The estimators' bias-calibrating Kalman filters (perception/filter.py)."""

    enabled: bool = doc(
        "Filter the IMU head's angle across control steps: imu_sin, imu_cos, imu_rate become the filter's estimate "
        "and the exported model carries its state (ONNX input filter_state, output filter_state_next).", True,
    )  # fmt: skip
    fuse_image: bool = doc(
        "With enabled: fused_sin, fused_cos, fused_rate become a second filter's estimate, which also takes the "
        "image head's angle, with the camera's roll and lag as states.", True,
    )  # fmt: skip
    measurement_deg: float = doc(
        "Std of the learned angle's error the filter assumes (deg); larger than its RMS because the errors are "
        "correlated from one step to the next.", 3.0, gt=0, le=90,
    )  # fmt: skip
    image_measurement_deg: float = doc("Std of the image head's angle error the fused filter assumes (deg).", 3.0,
                                       gt=0, le=90)  # fmt: skip
    angle_walk_deg: float = doc(
        "Process noise on alpha beyond the gyro, deg per sqrt(control step) (gyro noise, timing).", 0.02, gt=0, le=10
    )
    gyro_bias_rad_s: float = doc("Prior std of the gyro bias (rad/s).", 0.05, gt=0, le=5)
    accel_bias_m_s2: float = doc("Prior std of the accelerometer bias (m/s^2), per axis.", 0.2, gt=0, le=20)
    camera_roll_deg: float = doc("Prior std of the camera's roll on its mount (deg).", 2.0, gt=0, le=45)
    image_lag_ms: float = doc("Prior std of the image's lag behind the IMU: latency + half the exposure (ms).", 20.0,
                              gt=0, le=1000)  # fmt: skip
    bias_walk: float = doc(
        "Random walk of every bias (and of the roll and lag), in its unit per sqrt(control step).", 5e-5, ge=0, le=1
    )


@dataclass(frozen=True)
class PretrainConfig(Section):
    """Self-supervised pretraining of the encoders (``sim pretrain``)."""

    imu_objective: str = doc(f"IMU objective: {', '.join(IMU_OBJECTIVES)} (docs/perception.md).", "kinematic")
    corpus_samples: int = doc("Unlabelled simulated samples (consecutive control steps, in sequences).", 160000, gt=0)
    seq_len: int = doc("Control steps per simulated sequence.", 100, ge=4)
    randomization_scale: float = doc(
        "Physics spreads of the corpus = device.randomization x this (unlabelled data is cheap: cover more).",
        2.0, ge=0, le=4,
    )  # fmt: skip
    sensor_scale: float = doc(
        "Camera ranges of the corpus (background, rod brightness, pixel noise, exposure) widened about their centres "
        "x this, and IMU noise densities x U(1 - s, 1 + s) per episode with s = 1 - 1/this.", 3.0, ge=1, le=10,
    )  # fmt: skip
    steps: int = doc("Optimizer steps.", 12000, gt=0)
    batch_size: int = doc("Minibatch size.", 256, gt=0)
    lr: float = doc("AdamW peak learning rate (linear warm-up, cosine decay).", 2e-3, gt=0, le=1)
    weight_decay: float = doc("AdamW weight decay.", 0.01, ge=0)
    forecast_steps: int = doc("forecast: control steps of future IMU samples to predict.", 2, gt=0, le=3)
    mask_fraction: float = doc("masked: fraction of time steps masked.", 0.25, gt=0, lt=1)
    image_weight: float = doc("Weight of the image loss against the IMU loss.", 10.0, ge=0)
    camera_weight: float = doc("crossmodal, kinematic: weight of the frame prediction against the forecast.", 0.1, ge=0)
    kinematic_weight: float = doc(
        "kinematic: weight of the kinematic angle (sin, cos) against the forecast.", 1.0, ge=0
    )
    head_steps: int = doc(
        "kinematic: steps fitting the IMU and fused regression heads to the pseudo-label on the frozen encoders' "
        "features, after the encoders; they ship with them (0: fine-tuning starts the heads from random).", 3000, ge=0,
    )  # fmt: skip
    probe_samples: int = doc("Labelled samples for the linear probe (3/4 fit, 1/4 test).", 16000, ge=64)

    def check(self) -> None:
        if self.imu_objective not in IMU_OBJECTIVES:
            raise ValueError(f"imu_objective: {self.imu_objective!r} is unknown (allowed: {', '.join(IMU_OBJECTIVES)})")
        if self.forecast_steps >= self.seq_len:
            raise ValueError(f"forecast_steps: {self.forecast_steps} must be below seq_len {self.seq_len}")


@dataclass(frozen=True)
class PerceptionConfig(Section):
    """Perception data and fine-tuning."""

    train_samples: int = doc("Simulated labelled samples for fine-tuning (validation split included).", 60000, gt=0)
    test_samples: int = doc("Held-out simulated samples for the reported metrics.", 8000, gt=0)
    label_fraction: float = doc("Fraction of training samples whose labels fine-tuning may use.", 1.0, gt=0, le=1)
    dim: int = doc("Encoder feature size.", 128, gt=0, le=4096)
    finetune_steps: int = doc("Fine-tuning steps (at most: early stopping may end sooner).", 4000, gt=0)
    batch_size: int = doc("Minibatch size (<= train_samples).", 128, gt=0)
    lr: float = doc("AdamW peak learning rate (linear warm-up, cosine decay).", 1e-3, gt=0, le=1)
    weight_decay: float = doc("AdamW weight decay.", 1e-4, ge=0)
    freeze: str = doc(
        f"What learns: {', '.join(FREEZE)} (linear: heads only; partial: + last encoder layers; lp-ft: heads "
        "only, then everything at lp_ft_lr_ratio x lr; full from scratch encoders).", "lp-ft",
    )  # fmt: skip
    lp_ft_lr_ratio: float = doc("lp-ft: the second phase's peak rate as a share of lr.", 1.0, gt=0, le=1)
    val_fraction: float = doc(
        "Share of the labelled episodes held out for validation and early stopping.", 0.1, gt=0, lt=1
    )
    eval_every: int = doc("Steps between validation scores.", 200, gt=0)
    patience: int = doc("Validation scores without improvement before stopping (0: never stop early).", 5, ge=0)
    init: str = doc(
        "Encoder weights fine-tuning starts from: shipped (the project's pretrained encoders, docs/model-card.md), "
        "scratch (random), or the path of an encoders.pt written by `sim pretrain`.", "shipped",
    )  # fmt: skip
    augment: bool = doc(
        "Photometric augmentation of training frames (gamma, gain, offset, lighting gradient, noise; "
        "perception/augment.py): robustness to exposure and lighting outside the simulated ranges.", True,
    )  # fmt: skip
    mirror_average: bool = doc(
        "Outside training, average the image estimate with that of the frame mirrored left-right (its angle "
        "negated): a second, partly independent reading of the same angle (docs/perception.md, \"Mirror "
        "averaging\"). Needs a view that is mirror-symmetric about the vertical through the pivot; costs a second "
        "pass of the image encoder.", True,
    )  # fmt: skip
    imu_filter: FilterConfig = nested(FilterConfig, "The filter between the IMU head and the controller.")

    def check(self) -> None:
        if not self.init:
            raise ValueError("init: empty (allowed: shipped, scratch, or the path of an encoders.pt)")
        if self.freeze not in FREEZE:
            raise ValueError(f"freeze: {self.freeze!r} is unknown (allowed: {', '.join(FREEZE)})")
        if self.batch_size > self.train_samples:
            raise ValueError(
                f"batch_size: {self.batch_size} exceeds train_samples {self.train_samples} (allowed: <= train_samples)"
            )
