"""Frozen text encoders for the prompt: a small interface and its T5 implementation.

A TextEncoder turns prompts into tokens (B, max_length, dim) with a mask (B, max_length),
padded to max_length (SAO's T5 conditioner pads to 128 and the DiT attends to the padding,
so the padded length is part of the model). Encoders register by kind in TEXT_ENCODERS; a
CLAP text tower is one more kind with the same three members.

T5 loads from a local folder through transformers (T5EncoderModel and its tokenizer), never
from a hub. Where no folder is given (tests, the CPU demo, parameter counts) a random-weights
T5 of the named shape stands in, with a byte-level BPE tokenizer trained on the spot on a
fixed built-in text, so it is the same on every machine. Both are saved into the model's
checkpoint folder (`save`), so training and `soundry sample` use one and the same encoder,
and a log line says whenever the weights are random: such prompts do not steer the model.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor, nn

from curation.core.errors import UserError
from curation.core.extras import needs_extra
from model.config import T5_SHAPES, TextEncoderConfig

log = logging.getLogger(__name__)

RANDOM_MARKER = "soundry_random_weights"  # set in a stand-in's config.json
STAND_IN_VOCAB = 512

# The stand-in tokenizer's training text: words of music prompts, so that typical prompts
# split into few tokens. Any byte sequence still encodes (byte-level BPE has no unknowns).
STAND_IN_TEXT = """
Genre: Jazz | Instruments: Piano, Double Bass, Drums | Moods: Calm, Relaxed | Tempo: Slow
Genre: Rock | Instruments: Electric Guitar, Bass Guitar, Drums | Moods: Energetic, Uplifting
Genre: Electronic | Instruments: Synthesizer, Drum Machine | Moods: Dark, Driving | Tempo: Fast
Genre: Classical | Instruments: Strings, Violin, Cello, Flute, Orchestra | Moods: Dramatic, Sad
Genre: Ambient | Instruments: Pad, Field Recording | Moods: Peaceful, Dreamy, Atmospheric
Genre: Hip Hop | Instruments: Sampler, Vocals, Bass | Moods: Confident | Tempo: Medium
Genre: Folk | Instruments: Acoustic Guitar, Harmonica, Vocals | Moods: Warm, Nostalgic
Genre: Pop | Instruments: Vocals, Keyboard, Drums | Moods: Happy, Bright | Era: 1980s 1990s 2000s
Genre: Metal, Blues, Reggae, Techno, House, Funk, Soul, Country, Latin, World, Soundtrack
Instruments: Trumpet, Saxophone, Trombone, Clarinet, Harp, Organ, Marimba, Percussion, Choir
Moods: Melancholic, Tense, Epic, Playful, Romantic, Mysterious, Aggressive, Hopeful, Chill
Production: Lo-fi, Live Recording, Studio, Reverb, Distorted, Clean, Mono, Stereo, Vinyl
Tempo: 60 BPM, 90 BPM, 120 BPM, 128 BPM, 140 BPM, 174 BPM; Key: C major, A minor, F sharp
A calm solo piano piece with soft dynamics and a slow, gentle melody.
An energetic rock song with distorted electric guitars and a driving drum beat.
A dark electronic track with deep bass, arpeggiated synthesizers and a steady kick drum.
Sound effects: rain, thunder, wind, footsteps, door, birds, crowd, engine, water, fire, bell.
"""


class TextEncoderError(UserError):
    """A text encoder that cannot be loaded; names the folder and what is missing."""


class TextEncoder(Protocol):
    """What the prompt conditioner needs from a text encoder (an nn.Module, frozen)."""

    dim: int  # width of its tokens
    max_length: int  # tokens per prompt, padding included
    is_random: bool  # a stand-in with random weights
    source: Path | None  # the folder it was loaded from

    def encode(self, texts: list[str], device: torch.device) -> tuple[Tensor, Tensor]: ...

    def save(self, folder: Path) -> None: ...


@functools.lru_cache(maxsize=4)
def _stand_in_tokenizer_json(vocab_size: int) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(STAND_IN_TEXT.strip().splitlines(), trainer)
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return tokenizer.to_str()


def train_stand_in_tokenizer(vocab_size: int = STAND_IN_VOCAB):
    """A byte-level BPE tokenizer with T5's special ids (pad 0, eos 1, unk 2), trained
    deterministically on STAND_IN_TEXT (once per process; each call gets its own copy)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer.from_str(_stand_in_tokenizer_json(vocab_size))
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


class T5TextEncoder(nn.Module):
    """A frozen T5 encoder; always in eval mode, never trained, outputs masked to zero at padding."""

    def __init__(self, model, tokenizer, max_length: int, is_random: bool, source: Path | None = None) -> None:
        super().__init__()
        self.model = model.requires_grad_(False).eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.dim = model.config.d_model
        self.is_random = is_random
        self.source = source

    @classmethod
    def from_folder(cls, path: str | Path, max_length: int) -> T5TextEncoder:
        from transformers import AutoTokenizer, T5EncoderModel
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # one small folder: a bar per load is noise in a CLI
        folder = Path(path)
        if not (folder / "config.json").is_file():
            raise TextEncoderError(
                f"text encoder folder {folder}: no config.json; give a local T5 folder "
                "(config.json, model.safetensors, tokenizer.json or spiece.model)"
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            model = T5EncoderModel.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError) as error:
            raise TextEncoderError(f"text encoder folder {folder}: cannot be loaded ({error})") from None
        is_random = bool(getattr(model.config, RANDOM_MARKER, False))
        if is_random:
            log.warning(
                "text encoder %s has RANDOM weights (a stand-in built offline): prompts do not steer the model", folder
            )
        return cls(model, tokenizer, max_length, is_random, source=folder.resolve())

    @classmethod
    def stand_in(cls, name: str, max_length: int, seed: int = 0) -> T5TextEncoder:
        from transformers import T5Config, T5EncoderModel

        tokenizer = train_stand_in_tokenizer()
        config = T5Config(
            vocab_size=len(tokenizer),
            dropout_rate=0.0,
            feed_forward_proj="relu",
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
            **T5_SHAPES[name],
            **{RANDOM_MARKER: True},
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = T5EncoderModel(config)
        log.warning(
            "text encoder: RANDOM weights, %s-shaped T5 stand-in (no path given): prompts do not steer the model", name
        )
        return cls(model, tokenizer, max_length, is_random=True)

    def train(self, mode: bool = True) -> T5TextEncoder:
        super().train(mode)
        self.model.eval()  # frozen: dropout stays off whatever the trainer sets
        return self

    @torch.no_grad()
    def encode(self, texts: list[str], device: torch.device) -> tuple[Tensor, Tensor]:
        batch = self.tokenizer(
            list(texts), truncation=True, max_length=self.max_length, padding="max_length", return_tensors="pt"
        )
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device).bool()  # (B, N)
        tokens = self.model(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, N, D)
        return tokens * mask[..., None], mask

    def save(self, folder: Path) -> None:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)


TEXT_ENCODERS = {"t5": T5TextEncoder}


def load_text_encoder(config: TextEncoderConfig, relative_to: Path | None = None) -> TextEncoder:
    """The configured encoder: from its folder (a relative path is taken from `relative_to`,
    the checkpoint folder), else a random stand-in of the named shape."""
    encoder = TEXT_ENCODERS[config.kind]
    with needs_extra("train", "the T5 prompt encoder", "transformers", "tokenizers"):
        if config.path is None:
            return encoder.stand_in(config.name, config.max_length)
        path = Path(config.path)
        if not path.is_absolute() and relative_to is not None:
            path = relative_to / path
        return encoder.from_folder(path, config.max_length)
