"""Offline hygiene: laion-clap is imported and built without touching the network (even
with HF_HUB_OFFLINE unset) and without torchvision, and a real torchvision is left alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import transformers

from labeling.clap_laion import _offline_import_guard

ROOT = Path(__file__).resolve().parents[2]

# Every way out to the network fails and is recorded; then laion-clap is imported and a
# model built and used as the laion backend does.
SCRIPT = r"""
import json, socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args)[:80])
    raise OSError("network disabled in this test")
socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = socket.getaddrinfo = refuse

from labeling.clap_architectures import architecture
from labeling.clap_laion import build_laion_model
from labeling.clap_tokenizer import stand_in_tokenizer
model = build_laion_model(architecture("HTSAT-mini"), fusion=False)
tokens = stand_in_tokenizer()(["a calm piano piece", "loud rock"], padding=True, return_tensors="pt")
vectors = model.encode_text({k: tokens[k] for k in ("input_ids", "attention_mask")}, device="cpu")
print(json.dumps({"attempts": attempts, "torchvision": "torchvision" in sys.modules,
                  "laion": "clap_module.model" in sys.modules, "distinct": bool((vectors[0] - vectors[1]).abs().max() > 1e-6)}))
"""


def test_laion_clap_imports_and_builds_with_the_network_cut():
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_HUB_OFFLINE")}
    env["HF_ENDPOINT"] = "http://192.0.2.1:9"   # unroutable, in case anything still tried
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"attempts": [], "torchvision": False, "laion": True, "distinct": True}


def test_a_working_torchvision_is_used_not_replaced(tmp_path, monkeypatch):
    package = tmp_path / "torchvision"
    (package / "ops").mkdir(parents=True)
    (package / "__init__.py").write_text("REAL = True\n")
    (package / "ops" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    original = transformers.RobertaTokenizer.from_pretrained
    try:
        with _offline_import_guard():
            assert getattr(sys.modules["torchvision"], "REAL", False)
            assert transformers.RobertaTokenizer.from_pretrained("roberta-base").__class__.__name__ == "_Unavailable"
        assert transformers.RobertaTokenizer.from_pretrained == original
    finally:
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]


def test_the_stand_in_is_removed_after_import():
    with _offline_import_guard():
        assert "torchvision" in sys.modules and not hasattr(sys.modules["torchvision"], "REAL")
    assert "torchvision" not in sys.modules
