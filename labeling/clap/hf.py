"""The `hf` backend: transformers' ClapModel (its port of LAION CLAP) from a local folder.

Also the model class the `random` backend uses, and the map from laion-clap's parameter
names to ClapModel's, which lets a LAION checkpoint run here and shows that both
implementations compute the same embeddings from the same weights.
"""

from __future__ import annotations

import os
import re

import numpy as np
import torch

from labeling.clap.architectures import FFT_SIZE, HOP_SIZE, MEL_BINS
from labeling.clap.audio import to_float
from labeling.clap.backend import (
    SAMPLE_RATE,
    ClapConfig,
    ClapError,
    ClapIdentity,
    file_sha256,
    short_hash,
)
from labeling.clap.device import BatchedEmbedder, set_threads, torch_device, torch_dtype
from labeling.clap.mel import log_mel
from labeling.clap.tokenizer import check_tokenizer

WEIGHT_SUFFIXES = (".safetensors", ".bin")


class HfClap(BatchedEmbedder):
    """A ClapModel, its tokenizer and its mel filters, on one device."""

    def __init__(self, model, tokenizer, filters: np.ndarray, identity: ClapIdentity, config: ClapConfig) -> None:
        self.identity = identity
        self.device = torch_device(config)
        self.dtype = torch_dtype(config, self.device)
        set_threads(config, self.device)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.tokenizer = tokenizer
        self.filters = torch.from_numpy(filters).to(self.device)
        self.fusion = bool(model.config.audio_config.enable_fusion)
        self.dim = int(model.config.projection_dim)
        self.audio_batch_size = config.audio_batch_size
        self.text_batch_size = config.text_batch_size

    def _audio_forward(self, batch: np.ndarray) -> torch.Tensor:
        waveforms = torch.from_numpy(to_float(batch) if batch.dtype == np.int16 else batch).to(self.device)
        mel = log_mel(waveforms, self.filters)[:, None]  # (B, 1, frames, MEL_BINS)
        longer = None
        if self.fusion:
            # Every window is 10 s: the four fusion channels are the same mel, none is "longer".
            mel = mel.expand(-1, 4, -1, -1)
            longer = torch.zeros((len(batch), 1), dtype=torch.bool, device=self.device)
        return self.model.get_audio_features(input_features=mel.to(self.dtype), is_longer=longer).pooler_output

    def _text_forward(self, texts: np.ndarray, length: int) -> torch.Tensor:
        tokens = self.tokenizer(
            list(texts), padding="max_length", truncation=True, max_length=length, return_tensors="pt"
        )
        return self.model.get_text_features(
            input_ids=tokens["input_ids"].to(self.device), attention_mask=tokens["attention_mask"].to(self.device)
        ).pooler_output


def load_hf_clap(config: ClapConfig) -> HfClap:
    from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel

    folder = _model_folder(config)
    try:
        model, info = ClapModel.from_pretrained(folder, local_files_only=True, output_loading_info=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        extractor = ClapFeatureExtractor.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as error:
        raise ClapError(f"{folder}: not a loadable HF CLAP folder ({str(error).splitlines()[0]})") from None
    missing = [k for k in (*info["missing_keys"], *info["mismatched_keys"]) if not k.endswith("position_ids")]
    if missing:
        raise ClapError(
            f"{folder}: the weights do not fit the config ({len(missing)} parameters missing or misshapen, "
            f"e.g. {missing[0]}); refusing to run with random parts"
        )
    check_tokenizer(tokenizer, folder)
    setup = (extractor.sampling_rate, extractor.fft_window_size, extractor.hop_length, extractor.feature_size)
    if setup != (SAMPLE_RATE, FFT_SIZE, HOP_SIZE, MEL_BINS):
        raise ClapError(
            f"{folder}: preprocessor_config.json describes audio this stage does not make "
            f"(rate, fft, hop, mels = {setup}; expected {(SAMPLE_RATE, FFT_SIZE, HOP_SIZE, MEL_BINS)})"
        )
    # As HF's own extractor does: HTK filters for the fusion mode, Slaney ones otherwise.
    filters = extractor.mel_filters if extractor.truncation == "fusion" else extractor.mel_filters_slaney
    return HfClap(model, tokenizer, np.asarray(filters, dtype=np.float32), hf_identity(config), config)


def hf_identity(config: ClapConfig) -> ClapIdentity:
    folder = _model_folder(config)
    weights = sorted(n for n in os.listdir(folder) if n.endswith(WEIGHT_SUFFIXES))
    if not weights:
        raise ClapError(f"{folder}: no weights (*.safetensors or *.bin) in this folder")
    digests = [file_sha256(os.path.join(folder, name)) for name in weights]
    checkpoint = digests[0] if len(digests) == 1 else short_hash(*digests)
    settings = [
        file_sha256(os.path.join(folder, n))
        for n in ("config.json", "preprocessor_config.json")
        if os.path.isfile(os.path.join(folder, n))
    ]
    name = os.path.basename(os.path.normpath(folder))
    return ClapIdentity(
        "hf",
        f"hf-{name}-{short_hash(checkpoint, *settings)}",
        checkpoint,
        False,
        f"transformers ClapModel from {folder} ({', '.join(weights)})",
    )


def _model_folder(config: ClapConfig) -> str:
    folder = config.model_dir or ""
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise ClapError(f"{folder}: no config.json; clap.model_dir must be an HF-format CLAP folder")
    return folder


# laion-clap name -> ClapModel name, applied in order; the attention's fused qkv is split apart.
_RENAMES = [
    (r"^text_branch\.", "text_model."),
    (r"^text_projection\.0\.", "text_projection.linear1."),
    (r"^text_projection\.2\.", "text_projection.linear2."),
    (r"^audio_projection\.0\.", "audio_projection.linear1."),
    (r"^audio_projection\.2\.", "audio_projection.linear2."),
    (r"^audio_branch\.bn0\.", "audio_model.audio_encoder.batch_norm."),
    (r"^audio_branch\.", "audio_model.audio_encoder."),
    (r"\.norm1\.", ".layernorm_before."),
    (r"\.norm2\.", ".layernorm_after."),
    (r"\.attn\.proj\.", ".attention.output.dense."),
    (r"\.attn\.relative_position_", ".attention.self.relative_position_"),
    (r"\.mlp\.fc1\.", ".intermediate.dense."),
    (r"\.mlp\.fc2\.", ".output.dense."),
]
# Parts of laion-clap's model that inference never uses (training heads, the spectrogram
# front end ClapModel leaves to its feature extractor).
_UNUSED = re.compile(
    r"^(text_transform|audio_transform)\.|^audio_branch\.(spectrogram_extractor|logmel_extractor|head|tscam_conv)\.|\.attn_mask$"
)


def hf_state_dict_from_laion(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A laion-clap CLAP state dict with ClapModel's names (position_ids buffers left out)."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state_dict.items():
        if _UNUSED.search(name) or name.endswith("position_ids"):
            continue
        for pattern, replacement in _RENAMES:
            name = re.sub(pattern, replacement, name)
        if name.endswith((".attn.qkv.weight", ".attn.qkv.bias")):
            prefix, kind = name.rsplit(".attn.qkv.", 1)
            for part, chunk in zip(("query", "key", "value"), tensor.chunk(3, dim=0), strict=True):
                out[f"{prefix}.attention.self.{part}.{kind}"] = chunk.clone()
            continue
        out[name] = tensor
    return out
