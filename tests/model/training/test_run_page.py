"""A training run's page: its demos across steps per prompt (player and spectrogram), its loss
curves, and `soundry view`'s server for it; the run folder is written by the trainer's own TrainLog."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from model.training.log import TrainLog
from model.training.run_page import NotARun, write_run_page
from shards.explorer.serve import make_server


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("run")
    log = TrainLog(folder, is_main=True)
    for step in range(1, 7):
        log.scalars(step, {"loss": 1.0 / step, "lr": 1e-4})
    prompts = ["solo piano", "drums and bass"]
    for step in (2, 6):
        log.demo(step, prompts, 0.1 * torch.randn(2, 2, 4000, generator=torch.Generator().manual_seed(step)), 8000)
    log.close()
    return folder


def test_the_page_shows_each_prompts_demos_across_steps_and_the_curves(run):
    page = (run / write_run_page(str(run))).read_text()
    for index in (0, 1):
        for step in (2, 6):
            source = f"../demos/step-{step:08d}/demo-{index}"
            assert f'src="{source}.wav"' in page and f'src="{source}.png"' in page
            assert (run / "explore" / f"{source}.wav").resolve().exists()
    assert page.index("solo piano") < page.index("drums and bass")
    assert page.count("<svg") == 2 and 'aria-label="loss from step 1 to 6: 0.1667 to 1"' in page
    with pytest.raises(NotARun, match="neither metrics.jsonl nor demos"):
        write_run_page(str(run / "explore"))


def test_view_serves_the_demos(run):
    write_run_page(str(run))
    server = make_server(str(run), served=("explore/", "demos/"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with urllib.request.urlopen(f"{base}/demos/step-00000002/demo-0.wav") as response:
            assert response.read(4) == b"RIFF"
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"{base}/metrics.jsonl")
    finally:
        server.shutdown()
        server.server_close()
