"""Log-mel spectrograms as CLAP's audio towers expect them, computed in torch on the device.

Two filter banks, as in LAION's code: librosa's Slaney mel for the non-fusion models
(laion-clap computes it inside the model with torchlibrosa) and torchaudio's HTK mel
without normalization for the fusion models. The filters come from transformers'
mel_filter_bank, the same numbers its ClapFeatureExtractor uses; computing here instead
of in the extractor keeps the work on the GPU and avoids the extractor's random
`is_longer` flag, which would send one clip of every batch down the fusion branch.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from labeling.clap.architectures import F_MAX, F_MIN, FFT_SIZE, HOP_SIZE, MEL_BINS
from labeling.clap.backend import SAMPLE_RATE

MelScale = Literal["slaney", "htk"]


def mel_filters(scale: MelScale, f_min: float = F_MIN, f_max: float = F_MAX) -> np.ndarray:
    """(FFT_SIZE // 2 + 1, MEL_BINS) triangular filters."""
    from transformers.audio_utils import mel_filter_bank

    return mel_filter_bank(
        num_frequency_bins=FFT_SIZE // 2 + 1,
        num_mel_filters=MEL_BINS,
        min_frequency=f_min,
        max_frequency=f_max,
        sampling_rate=SAMPLE_RATE,
        norm="slaney" if scale == "slaney" else None,
        mel_scale=scale,
    ).astype(np.float32)


def log_mel(waveforms: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """(B, T) float32 -> (B, frames, MEL_BINS) power in dB, frames = T // HOP_SIZE + 1."""
    window = torch.hann_window(FFT_SIZE, periodic=True, device=waveforms.device)
    spectrum = torch.stft(
        waveforms,
        FFT_SIZE,
        hop_length=HOP_SIZE,
        win_length=FFT_SIZE,
        window=window,
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )  # (B, F, frames)
    power = spectrum.real.square() + spectrum.imag.square()
    mel = torch.matmul(filters.T, power)  # (B, MEL_BINS, frames)
    return (10.0 * torch.log10(mel.clamp(min=1e-10))).transpose(1, 2)
