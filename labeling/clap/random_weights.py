"""The `random` backend: a CLAP architecture with seeded random weights.

For tests and the offline demo only: its embeddings carry no meaning, so labels made with
it are arbitrary (but deterministic). It is chosen explicitly (clap.backend random), its
identity says "random weights" wherever a run is printed or recorded, and it is never
taken in place of a checkpoint that fails to load. The network is transformers' ClapModel
configured as the named LAION architecture; the tokenizer is the stand-in byte-level BPE
trained on the spot (clap_tokenizer), so nothing is downloaded.
"""

from __future__ import annotations

import threading

import torch

from labeling.clap.architectures import architecture, hf_clap_config
from labeling.clap.backend import ClapConfig, ClapError, ClapIdentity, short_hash
from labeling.clap.hf import HfClap
from labeling.clap.mel import mel_filters
from labeling.clap.tokenizer import stand_in_tokenizer, stand_in_tokenizer_sha256

_BUILD_LOCK = threading.Lock()


def load_random_clap(config: ClapConfig) -> HfClap:
    from transformers import ClapModel

    arch = architecture(config.architecture)
    tokenizer = stand_in_tokenizer()
    if len(tokenizer) > arch.text.vocab_size:
        raise ClapError(f"the stand-in tokenizer has {len(tokenizer)} tokens, more than {arch.name}'s text tower holds")
    # Seeded apart from the process's own random state, and one build at a time: torch's
    # generator is process-wide, and engines build models on several threads (Beam).
    with _BUILD_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = ClapModel(hf_clap_config(arch, config.fusion))
    # LAION's mel front end: Slaney filters, HTK ones for the fusion variant.
    filters = mel_filters("htk" if config.fusion else "slaney")
    return HfClap(model, tokenizer, filters, random_identity(config), config)


def random_identity(config: ClapConfig) -> ClapIdentity:
    arch = architecture(config.architecture)
    fusion = "-fusion" if config.fusion else ""
    tokenizer = stand_in_tokenizer_sha256()
    model_id = f"random-{arch.name}{fusion}-seed{config.seed}-{short_hash(tokenizer)}"
    return ClapIdentity(
        "random",
        model_id,
        None,
        True,
        f"RANDOM WEIGHTS ({arch.name}{fusion}, seed {config.seed}): labels are arbitrary, for tests and demos only",
    )
