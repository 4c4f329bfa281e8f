"""The `laion` backend: the laion-clap package's own model code with LAION's checkpoints.

laion-clap 1.1.7 is hostile to offline machines in three ways, each handled here:
- it imports torchvision (for image helpers audio never uses), which many machines lack
  or cannot import: a stand-in module answers those imports while laion-clap is imported,
  and only when the real torchvision cannot be imported;
- at import and at model construction it calls `from_pretrained('roberta-base')` (and
  bert, bart), which offline either waits minutes on retries or returns an empty
  tokenizer: those calls are answered locally while laion-clap is imported and built
  (the text tower is built from roberta-base's written-out config, the checkpoint fills it);
- its `load_ckpt` unpickles with `weights_only=False`, which runs any code the file holds:
  checkpoints are read here with safetensors or `torch.load(weights_only=True)`, and a
  pickle that needs more is refused unless clap.allow_pickle says the file is trusted.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import pickle
import sys
import threading
import types
from collections.abc import Iterator

import numpy as np
import torch

from labeling.clap.architectures import (
    F_MAX,
    F_MIN,
    FFT_SIZE,
    HOP_SIZE,
    MEL_BINS,
    ClapArchitecture,
    architecture,
    roberta_config,
)
from labeling.clap.audio import to_float
from labeling.clap.backend import CONTEXT_TOKENS, ClapConfig, ClapError, ClapIdentity, file_sha256, short_hash
from labeling.clap.device import BatchedEmbedder, set_threads, torch_device, torch_dtype
from labeling.clap.mel import log_mel, mel_filters
from labeling.clap.tokenizer import load_roberta_tokenizer, tokenizer_sha256

# Patching laion-clap's and transformers' names is process-wide: one import or build at a time
# (Beam runs several DoFn set-ups on threads of one process).
_LOCK = threading.Lock()

# The names laion-clap imports from torchvision (clap_module/transform.py, utils.py, training/data.py).
_TORCHVISION_NAMES = {
    "torchvision": ("transforms", "datasets", "ops"),
    "torchvision.transforms": (
        "Normalize",
        "Compose",
        "RandomResizedCrop",
        "InterpolationMode",
        "ToTensor",
        "Resize",
        "CenterCrop",
    ),
    "torchvision.datasets": (),
    "torchvision.ops": ("misc",),
    "torchvision.ops.misc": ("FrozenBatchNorm2d",),
}
_HUB_CLASSES = ("BertTokenizer", "RobertaTokenizer", "BartTokenizer", "BertModel", "RobertaModel", "BartModel")


class _Unavailable:
    """Stands where laion-clap expects something this stage never uses; fails loudly if used."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __call__(self, *args: object, **kwargs: object) -> None:
        raise ClapError(
            f"{self._what} is not available here (laion-clap's image and training helpers are not used for labeling)"
        )

    def __getattr__(self, name: str) -> _Unavailable:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Unavailable(f"{self._what}.{name}")


def _torchvision_stand_in() -> dict[str, types.ModuleType]:
    modules = {}
    for name, attributes in _TORCHVISION_NAMES.items():
        module = types.ModuleType(name, "stand-in for laion-clap's unused torchvision imports")
        for attribute in attributes:
            setattr(module, attribute, _Unavailable(f"{name}.{attribute}"))
        modules[name] = module
    for name, module in modules.items():
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(modules[parent], child, module)
    return modules


def _torchvision_imports() -> bool:
    if importlib.util.find_spec("torchvision") is None:
        return False
    try:
        importlib.import_module("torchvision")
        return True
    except Exception:  # a CUDA build against CPU torch fails in many ways; any of them means: not usable
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        return False


@contextlib.contextmanager
def _offline_import_guard() -> Iterator[None]:
    """While laion-clap is imported: torchvision answered if it is missing, hub calls answered locally."""
    import transformers

    stand_in = {} if _torchvision_imports() else _torchvision_stand_in()
    saved = {}
    for name in _HUB_CLASSES:
        cls = getattr(transformers, name)
        if cls in saved:  # transformers 5 has one class under two names (BartTokenizer is RobertaTokenizer)
            continue
        saved[cls] = cls.__dict__.get("from_pretrained")
        cls.from_pretrained = classmethod(lambda c, *a, **k: _Unavailable(f"{c.__name__}.from_pretrained"))
    sys.modules.update(stand_in)
    try:
        yield
    finally:
        for cls, original in saved.items():
            if original is None:
                del cls.from_pretrained
            else:
                cls.from_pretrained = original
        for name in stand_in:
            sys.modules.pop(name, None)


def laion_modules() -> tuple[types.ModuleType, types.ModuleType]:
    """laion-clap's model and htsat modules, imported without hub calls or torchvision."""
    with _LOCK:
        # laion-clap puts its folder on sys.path and imports its model code as the top-level
        # package `clap_module`; those are the modules its CLAP class is built from.
        if "clap_module.model" not in sys.modules:
            with _offline_import_guard():
                importlib.import_module("laion_clap")
                importlib.import_module("clap_module.model")
        return sys.modules["clap_module.model"], sys.modules["clap_module.htsat"]


def build_laion_model(arch: ClapArchitecture, fusion: bool) -> torch.nn.Module:
    """laion-clap's CLAP for `arch`, with random weights (a checkpoint fills them)."""
    from transformers import RobertaModel

    model_module, htsat = laion_modules()
    audio_cfg = {
        "model_type": "HTSAT",
        "model_name": arch.name,
        "sample_rate": 48000,
        "audio_length": 1024,
        "window_size": FFT_SIZE,
        "hop_size": HOP_SIZE,
        "fmin": F_MIN,
        "fmax": F_MAX,
        "class_num": 527,
        "mel_bins": MEL_BINS,
        "clip_samples": 480000,
    }
    text_cfg = {
        "context_length": CONTEXT_TOKENS,
        "vocab_size": arch.text.vocab_size,
        "width": 512,
        "heads": 8,
        "layers": 12,
        "model_type": "roberta",
    }

    def text_tower(*args: object, **kwargs: object) -> torch.nn.Module:
        return RobertaModel(roberta_config(arch.text), add_pooling_layer=True)

    def audio_tower(cfg: object, enable_fusion: bool = False, fusion_type: str = "None") -> torch.nn.Module:
        # create_htsat_model's constructor call, with the sizes from the architecture table.
        return htsat.HTSAT_Swin_Transformer(
            spec_size=256,
            patch_size=4,
            patch_stride=(4, 4),
            num_classes=527,
            embed_dim=arch.audio.embed_dim,
            depths=list(arch.audio.depths),
            num_heads=list(arch.audio.num_heads),
            window_size=8,
            config=cfg,
            enable_fusion=enable_fusion,
            fusion_type=fusion_type,
        )

    with _LOCK:
        saved = model_module.RobertaModel, model_module.create_htsat_model
        model_module.RobertaModel = types.SimpleNamespace(from_pretrained=text_tower)
        model_module.create_htsat_model = audio_tower
        try:
            model = model_module.CLAP(
                embed_dim=arch.audio.output_dim,
                audio_cfg=audio_cfg,
                text_cfg=text_cfg,
                enable_fusion=fusion,
                fusion_type="aff_2d" if fusion else "None",
            )
        finally:
            model_module.RobertaModel, model_module.create_htsat_model = saved
    return model.eval()


def read_checkpoint(path: str, allow_pickle: bool) -> dict[str, torch.Tensor]:
    """A LAION checkpoint's state dict, read without running code from the file."""
    if not os.path.isfile(path):
        raise ClapError(f"{path}: checkpoint not found (clap.checkpoint)")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            if not allow_pickle:
                raise ClapError(
                    f"{path}: holds Python objects besides tensors ({str(error).splitlines()[0][:160]}); unpickling it "
                    "would run code from the file. Use a .safetensors copy, or set clap.allow_pickle true if you "
                    "trust where it came from"
                ) from None
            state = torch.load(path, map_location="cpu", weights_only=False)
        except (RuntimeError, EOFError) as error:
            raise ClapError(f"{path}: not a readable torch checkpoint ({str(error).splitlines()[0][:160]})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ClapError(f"{path}: no state dict of tensors in this checkpoint")
    # Saved from DistributedDataParallel: every name starts with "module.".
    state = {k.removeprefix("module."): v for k, v in state.items()}
    # Older transformers stored RoBERTa's position ids; newer ones rebuild them.
    state.pop("text_branch.embeddings.position_ids", None)
    return state


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str, config: ClapConfig) -> None:
    hint = (
        f"the checkpoint does not fit architecture {config.architecture} with fusion {config.fusion}: "
        "630k-*best are HTSAT-tiny, music_* are HTSAT-base, *fusion* need clap.fusion true"
    )
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as error:
        shape = next((line.strip() for line in str(error).splitlines() if "size mismatch" in line), "")
        raise ClapError(f"{where}: {hint} ({shape[:200]})") from None
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        example = (missing or unexpected)[0]
        raise ClapError(
            f"{where}: {hint} ({len(missing)} parameters missing, {len(unexpected)} unexpected, e.g. {example})"
        )


class LaionClap(BatchedEmbedder):
    """laion-clap's CLAP with a checkpoint and a RoBERTa tokenizer, on one device."""

    def __init__(self, model: torch.nn.Module, tokenizer, identity: ClapIdentity, config: ClapConfig) -> None:
        self.identity = identity
        self.device = torch_device(config)
        self.dtype = torch_dtype(config, self.device)
        set_threads(config, self.device)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.tokenizer = tokenizer
        self.fusion = config.fusion
        self.dim = int(model.joint_embed_shape)
        self.audio_batch_size = config.audio_batch_size
        self.text_batch_size = config.text_batch_size
        self.fusion_filters = torch.from_numpy(mel_filters("htk")).to(self.device) if self.fusion else None
        if self.dtype != torch.float32:
            # The spectrogram stays float32: a 1024-point power spectrum overflows float16.
            branch = self.model.audio_branch
            branch.spectrogram_extractor.float()
            branch.logmel_extractor.float()
            branch.logmel_extractor.register_forward_hook(lambda module, inputs, output: output.to(self.dtype))

    def _audio_forward(self, batch: np.ndarray) -> torch.Tensor:
        waveforms = torch.from_numpy(to_float(batch) if batch.dtype == np.int16 else batch).to(self.device)
        if self.fusion:
            # torchaudio's HTK mel, as laion-clap's get_mel computes it for the fusion models; with
            # every window 10 s long none is "longer" and the model reads the first channel only.
            mel = log_mel(waveforms, self.fusion_filters)[:, None].expand(-1, 4, -1, -1)
            inputs = {"mel_fusion": mel.to(self.dtype), "longer": torch.zeros((len(batch), 1), dtype=torch.bool)}
        else:
            inputs = {"waveform": waveforms}
        return self.model.audio_projection(self.model.encode_audio(inputs, device=self.device)["embedding"])

    def _text_forward(self, texts: np.ndarray, length: int) -> torch.Tensor:
        tokens = self.tokenizer(
            list(texts), padding="max_length", truncation=True, max_length=length, return_tensors="pt"
        )
        return self.model.encode_text({k: tokens[k] for k in ("input_ids", "attention_mask")}, device=self.device)


def load_laion_clap(config: ClapConfig) -> LaionClap:
    identity = laion_identity(config)
    tokenizer = load_roberta_tokenizer(config.tokenizer or "")
    model = build_laion_model(architecture(config.architecture), config.fusion)
    load_weights(model, read_checkpoint(config.checkpoint or "", config.allow_pickle), config.checkpoint or "", config)
    return LaionClap(model, tokenizer, identity, config)


def laion_identity(config: ClapConfig) -> ClapIdentity:
    checkpoint = config.checkpoint or ""
    digest = file_sha256(checkpoint)
    if not os.path.isdir(config.tokenizer or ""):
        raise ClapError(f"{config.tokenizer}: tokenizer folder not found (clap.tokenizer)")
    fusion = "-fusion" if config.fusion else ""
    model_id = f"laion-{config.architecture}{fusion}-{short_hash(digest, tokenizer_sha256(config.tokenizer or ''))}"
    return ClapIdentity(
        "laion",
        model_id,
        digest,
        False,
        f"LAION CLAP {config.architecture}{fusion} from {os.path.basename(checkpoint)} (sha256 {digest[:12]})",
    )
