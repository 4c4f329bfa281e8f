"""Answers `import torchaudio` / `import torchvision` in stable-audio-tools' own venv, where PyPI's
CUDA-linked wheels cannot import: a finder first on sys.meta_path hands out small modules whose
one real function, `torchaudio.load`, decodes with soundfile; anything else they are asked to do
raises, so a test cannot pass through a stub by accident."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types

import soundfile
import torch

STUBBED = ("torchaudio", "torchvision")


def load(uri, format=None, **_ignored):  # noqa: A002 - torchaudio's own argument name
    """torchaudio.load: (channels, frames) float32 in [-1, 1] and the sample rate."""
    audio, rate = soundfile.read(uri, dtype="float32", always_2d=True)
    return torch.from_numpy(audio.T.copy()), rate


class NotServed:
    """A torchaudio/torchvision callable the stub does not serve (resampling, saving, ...)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args, **kwargs):
        raise NotImplementedError(f"{self.name} is not served by the torchaudio stub; read at the data's own rate")


class StubModule(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return NotServed(f"{self.__name__}.{name}")


class StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in STUBBED:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = StubModule(spec.name)
        module.__path__ = []
        if spec.name == "torchaudio":
            module.load = load
        return module

    def exec_module(self, module):
        pass


def install() -> None:
    sys.meta_path.insert(0, StubFinder())
