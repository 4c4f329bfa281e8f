"""The CLAP architectures by name: HTSAT audio tower sizes and the RoBERTa text tower.

HTSAT-tiny and HTSAT-base are LAION's (laion-clap's model_configs and create_htsat_model);
HTSAT-mini is a small test model of the same design, so that tests on a CPU take seconds.
The numbers are written out here because LAION's checkpoints do not carry them, and the
hub where roberta-base's config lives is out of reach.
"""

from __future__ import annotations

from dataclasses import dataclass

from labeling.clap.backend import ClapError


@dataclass(frozen=True)
class HtsatSize:
    embed_dim: int  # width of the first Swin stage; doubled at each of the four stages
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]

    @property
    def output_dim(self) -> int:
        return self.embed_dim * 2 ** (len(self.depths) - 1)


@dataclass(frozen=True)
class TextSize:
    vocab_size: int
    num_layers: int
    hidden_size: int = 768  # laion-clap's text projection is fixed at 768 inputs
    num_heads: int = 12
    intermediate_size: int = 3072


@dataclass(frozen=True)
class ClapArchitecture:
    name: str
    audio: HtsatSize
    text: TextSize
    joint_dim: int = 512  # laion-clap's joint_embed_shape


# roberta-base: what every LAION CLAP checkpoint's text tower is.
ROBERTA_BASE = TextSize(vocab_size=50265, num_layers=12)

ARCHITECTURES = {
    "HTSAT-tiny": ClapArchitecture("HTSAT-tiny", HtsatSize(96, (2, 2, 6, 2), (4, 8, 16, 32)), ROBERTA_BASE),
    "HTSAT-base": ClapArchitecture("HTSAT-base", HtsatSize(128, (2, 2, 12, 2), (4, 8, 16, 32)), ROBERTA_BASE),
    # Tests only: the same design at a few percent of the compute (a text tower of one layer).
    "HTSAT-mini": ClapArchitecture(
        "HTSAT-mini", HtsatSize(16, (2, 2, 2, 1), (1, 2, 4, 8)), TextSize(vocab_size=1024, num_layers=1)
    ),
}

# The audio front end both implementations share (laion-clap's audio_cfg).
MEL_BINS = 64
FFT_SIZE = 1024
HOP_SIZE = 480
F_MIN = 50
F_MAX = 14000


def architecture(name: str) -> ClapArchitecture:
    if name not in ARCHITECTURES:
        raise ClapError(f"unknown CLAP architecture {name!r}; one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def roberta_config(text: TextSize):
    from transformers import RobertaConfig

    return RobertaConfig(
        vocab_size=text.vocab_size,
        hidden_size=text.hidden_size,
        num_hidden_layers=text.num_layers,
        num_attention_heads=text.num_heads,
        intermediate_size=text.intermediate_size,
        max_position_embeddings=514,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )


def hf_clap_config(arch: ClapArchitecture, fusion: bool):
    """transformers' ClapConfig of the same network as laion-clap builds for `arch`."""
    from transformers import ClapConfig as HfClapConfig

    audio = {
        "patch_embeds_hidden_size": arch.audio.embed_dim,
        "depths": list(arch.audio.depths),
        "num_attention_heads": list(arch.audio.num_heads),
        "hidden_size": arch.audio.output_dim,
        "projection_dim": arch.joint_dim,
        "enable_fusion": fusion,
        "fusion_type": "aff_2d" if fusion else None,
        "num_mel_bins": MEL_BINS,
        "spec_size": 256,
        "window_size": 8,
    }
    text = roberta_config(arch.text).to_dict()
    text.update(projection_dim=arch.joint_dim)
    keep = (
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "max_position_embeddings",
        "type_vocab_size",
        "layer_norm_eps",
        "pad_token_id",
        "bos_token_id",
        "eos_token_id",
        "projection_dim",
    )
    return HfClapConfig(text_config={k: text[k] for k in keep}, audio_config=audio, projection_dim=arch.joint_dim)
