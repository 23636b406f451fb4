"""Encoder weights files: the pretrained IMU and image encoders the project ships, and any a user gives.

A file is a plain dict of tensors and metadata, saved by ``torch.save`` and read with
``torch.load(weights_only=True)``: loading never runs code from the file (no pickled
classes). Before any weight is copied, every tensor is matched against the model by name
and shape; a file for another architecture is refused with the layers that differ.

A file may also carry regression heads fitted during pretraining (``heads``: the IMU and
fused heads, perception/pretrain.py); they are loaded with the encoders, so fine-tuning
starts from them. Files without heads (other objectives, older files) load the encoders only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sensorimotor.perception.errors import WeightsError
from sensorimotor.perception.models import Perception

FORMAT = "sensorimotor-encoders/1"
SHIPPED = Path(__file__).resolve().parent / "pretrained" / "encoders.pt"
ENCODERS = ("imu_encoder", "image_encoder")
HEADS = ("imu_head", "fused_head")  # the heads a file may carry


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in module.state_dict().items()}


def save_encoders(model: Perception, path: Path, meta: dict[str, Any], heads: tuple[str, ...] = ()) -> str:
    """Write both encoders' weights, ``heads`` (names from :data:`HEADS`) and ``meta`` (plain values) to ``path``.

    Returns the file's sha256.
    """
    unknown = sorted(set(heads) - set(HEADS))
    if unknown:
        raise ValueError(f"heads: {unknown} cannot be saved (allowed: {', '.join(HEADS)})")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Through JSON: only plain values remain (str subclasses such as torch.__version__ would not load weights-only).
    blob: dict[str, Any] = {"format": FORMAT, "meta": json.loads(json.dumps(meta))}
    for name in ENCODERS:
        blob[name] = _state(getattr(model, name))
    if heads:
        blob["heads"] = {name: _state(getattr(model, name)) for name in heads}
    torch.save(blob, path)
    return sha256(path)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_encoders(path: Path) -> dict[str, Any]:
    """The file's contents, checked to be an encoders file (weights only: nothing in it is executed)."""
    if not path.is_file():
        raise WeightsError(
            f"{path}: no such file (give the path of a `sim pretrain` output, e.g. runs/pretrain/encoders.pt)"
        )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; the message names it
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: not a readable weights file ({first})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise WeightsError(f"{path}: not an encoders file (format {found!r}, expected {FORMAT!r}; "
                           "make one with `sim pretrain`)")  # fmt: skip
    return blob


def mismatches(module: nn.Module, state: dict[str, torch.Tensor], prefix: str) -> list[str]:
    """Each layer where ``state`` does not fit ``module``: missing, unexpected, or another shape."""
    own = module.state_dict()
    out = [f"{prefix}.{k}: missing from the file" for k in own if k not in state]
    out += [f"{prefix}.{k}: in the file but not in the model" for k in state if k not in own]
    for k, v in state.items():
        if k in own and tuple(v.shape) != tuple(own[k].shape):
            out.append(f"{prefix}.{k}: file {list(v.shape)}, model {list(own[k].shape)}")
    return out


def load_encoders(model: Perception, path: Path) -> dict[str, Any]:
    """Copy the file's encoder weights (and heads, if it has any) into ``model``; returns the file's metadata.

    Raises :class:`WeightsError` naming every mismatched layer, before anything is copied.
    """
    blob = read_encoders(path)
    problems: list[str] = []
    for name in ENCODERS:
        state = blob.get(name)
        if not isinstance(state, dict):
            problems.append(f"{name}: missing from the file")
            continue
        problems += mismatches(getattr(model, name), state, name)
    heads = blob.get("heads", {})
    if not isinstance(heads, dict):
        problems.append("heads: not a dict of layers")
        heads = {}
    for name, state in heads.items():
        if name not in HEADS or not isinstance(state, dict):
            problems.append(f"heads.{name}: not a head this model has (allowed: {', '.join(HEADS)})")
        else:
            problems += mismatches(getattr(model, name), state, name)
    if problems:
        shown = "\n  ".join(problems[:12]) + (f"\n  ... and {len(problems) - 12} more" if len(problems) > 12 else "")
        raise WeightsError(
            f"{path} was made for another architecture ({len(problems)} mismatched layers):\n  {shown}\n"
            "Pretrain encoders for this config with `sim pretrain --config ...`, or set perception.dim and the "
            "device's imu.window / camera size to what the file was made with."
        )
    for name in ENCODERS:
        getattr(model, name).load_state_dict(blob[name])
    for name, state in heads.items():
        getattr(model, name).load_state_dict(state)
    meta = blob.get("meta")
    return meta if isinstance(meta, dict) else {}
