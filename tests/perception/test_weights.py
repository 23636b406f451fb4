"""Encoder weights files: round trip, refusal of other architectures and formats, never executing the file."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from sensorimotor.perception.errors import WeightsError
from sensorimotor.perception.models import Perception
from sensorimotor.perception.weights import load_encoders, save_encoders


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_round_trip_copies_both_encoders_and_returns_the_metadata(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src, dst = Perception(), Perception()
    save_encoders(src, tmp_path / "e.pt", {"command": "sim pretrain --out x", "steps": 3})
    assert not _same(src.imu_encoder, dst.imu_encoder)
    heads_before = {k: v.clone() for k, v in dst.imu_head.state_dict().items()}
    assert load_encoders(dst, tmp_path / "e.pt") == {"command": "sim pretrain --out x", "steps": 3}
    assert _same(src.imu_encoder, dst.imu_encoder) and _same(src.image_encoder, dst.image_encoder)
    assert all(torch.equal(v, dst.imu_head.state_dict()[k]) for k, v in heads_before.items())  # heads untouched


def test_heads_in_the_file_are_loaded_with_the_encoders(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src, dst = Perception(), Perception()
    save_encoders(src, tmp_path / "e.pt", {}, heads=("imu_head", "fused_head"))
    image_head = {k: v.clone() for k, v in dst.image_head.state_dict().items()}
    load_encoders(dst, tmp_path / "e.pt")
    assert _same(src.imu_head, dst.imu_head) and _same(src.fused_head, dst.fused_head)
    assert _same(src.imu_encoder, dst.imu_encoder)
    assert all(torch.equal(v, dst.image_head.state_dict()[k]) for k, v in image_head.items())  # not in the file
    with pytest.raises(ValueError, match="camera_head"):
        save_encoders(src, tmp_path / "x.pt", {}, heads=("camera_head",))


def test_heads_for_another_architecture_are_named_and_nothing_is_copied(tmp_path: Path) -> None:
    small = Perception(dim=64)
    save_encoders(Perception(), tmp_path / "e.pt", {}, heads=("fused_head",))
    blob = torch.load(tmp_path / "e.pt", weights_only=True)
    blob["heads"]["fused_head"] = small.fused_head.state_dict()  # encoders fit, the head does not
    torch.save(blob, tmp_path / "mixed.pt")
    model = Perception()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightsError, match=r"fused_head\.0\.weight: file \[64, 131\], model \[128, 259\]"):
        load_encoders(model, tmp_path / "mixed.pt")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_another_architecture_is_refused_naming_the_layers_and_nothing_is_copied(tmp_path: Path) -> None:
    save_encoders(Perception(dim=64), tmp_path / "small.pt", {})
    model = Perception(dim=128)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightsError) as err:
        load_encoders(model, tmp_path / "small.pt")
    text = str(err.value)
    assert "another architecture" in text
    assert "imu_encoder.proj.1.weight: file [64, 512], model [128, 512]" in text
    assert "image_encoder.proj.1.weight: file [64, 2048], model [128, 2048]" in text
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_a_missing_layer_and_an_extra_one_are_named(tmp_path: Path) -> None:
    save_encoders(Perception(), tmp_path / "e.pt", {})
    blob = torch.load(tmp_path / "e.pt", weights_only=True)
    blob["imu_encoder"]["conv.6.weight"] = blob["imu_encoder"].pop("conv.4.weight")
    torch.save(blob, tmp_path / "renamed.pt")
    with pytest.raises(WeightsError, match=r"imu_encoder\.conv\.4\.weight: missing from the file(.|\n)*"
                       r"imu_encoder\.conv\.6\.weight: in the file but not in the model"):  # fmt: skip
        load_encoders(Perception(), tmp_path / "renamed.pt")


class _Payload:
    """Unpickling this would run ``os.system``: weights_only loading must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def test_a_file_with_code_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with (tmp_path / "evil.pt").open("wb") as f:
        pickle.dump({"format": "sensorimotor-encoders/1", "imu_encoder": _Payload(marker)}, f)
    torch.save({"format": "sensorimotor-encoders/1", "imu_encoder": _Payload(marker)}, tmp_path / "evil2.pt")
    for name in ("evil.pt", "evil2.pt"):
        with pytest.raises(WeightsError, match="not a readable weights file"):
            load_encoders(Perception(), tmp_path / name)
    assert not marker.exists()


def test_other_files_get_a_clear_error(tmp_path: Path) -> None:
    torch.save(Perception().state_dict(), tmp_path / "state_dict.pt")  # a plain state dict, not an encoders file
    with pytest.raises(WeightsError, match="not an encoders file .*make one with `sim pretrain`"):
        load_encoders(Perception(), tmp_path / "state_dict.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(WeightsError, match="not a readable weights file"):
        load_encoders(Perception(), tmp_path / "text.pt")
    with pytest.raises(WeightsError, match="no such file"):
        load_encoders(Perception(), tmp_path / "absent.pt")
