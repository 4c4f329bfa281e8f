"""A checkpoint folder is on the disk before its rename commits it, and the rename before any
older checkpoint is pruned: after a power loss the newest complete checkpoint is whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from model.checkpoint import checkpoint_writer
from model.training.state import prune_checkpoints, step_folder


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names an fd's file through /proc")
def test_a_checkpoint_is_synced_before_its_rename_and_its_parent_after(tmp_path, monkeypatch):
    events: list[tuple[str, str]] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def rename(source, target) -> None:
        events.append(("rename", str(target)))
        real_rename(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    root = tmp_path / "checkpoints"
    with checkpoint_writer(step_folder(root, 10)) as staging:
        (staging / "model.safetensors").write_bytes(b"w" * 4096)
        (staging / "text_encoder").mkdir()
        (staging / "text_encoder" / "config.json").write_text("{}")
        staged = str(staging)
    commit = events.index(("rename", str(step_folder(root, 10))))
    synced_before = {path for kind, path in events[:commit] if kind == "fsync"}
    for name in ("model.safetensors", "text_encoder/config.json", "text_encoder", ""):
        assert str(Path(staged) / name).rstrip("/") in synced_before, name
    assert events[commit + 1] == ("fsync", str(root)), "the rename itself reaches the disk before anything else"

    with checkpoint_writer(step_folder(root, 20)) as staging:
        (staging / "model.safetensors").write_bytes(b"v" * 4096)
    prune_checkpoints(root, keep=1)
    assert [p.name for p in root.iterdir()] == ["step-00000020"]
