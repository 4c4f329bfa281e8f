"""CLAP's text tokenizers: the RoBERTa one from a local folder, a stand-in for random
weights, and the check that a tokenizer really tokenizes.

The check matters because transformers does not fail on a tokenizer it cannot find
offline: it hands back an empty one that turns every sentence into the same special
tokens, so every caption embeds the same and every clip gets the same labels.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import lru_cache

from labeling.clap.backend import CONTEXT_TOKENS, ClapError

# Sentences no working tokenizer turns into special tokens only, nor into equal sequences.
PROBE_SENTENCES = ("a calm solo piano piece", "energetic rock with distorted guitars", "jazz", "808 drums, 140 bpm")

# The stand-in tokenizer's training text: the words of music captions and tags, so that
# captions split into few tokens; byte-level BPE still encodes any text (no unknowns).
STAND_IN_TEXT = """
A slow and calm solo piano piece with soft dynamics, a gentle melody and warm reverb.
An energetic rock song with distorted electric guitars, bass guitar and a driving drum beat.
A dark electronic track with deep bass, arpeggiated synthesizers and a steady four on the floor kick.
Smooth jazz with a walking double bass, brushed drums, saxophone and piano chords in a relaxed mood.
An orchestral film score with strings, brass, choir and timpani building to a dramatic climax.
A lo-fi hip hop beat with vinyl crackle, a mellow electric piano sample and boom bap drums.
An acoustic folk song with fingerpicked guitar, harmonica and a male voice singing softly.
Ambient drone with evolving pads, field recordings of rain and birds, peaceful and dreamy.
Upbeat pop with bright female vocals, claps, synth bass and a catchy chorus at 120 bpm.
Heavy metal with fast double kick drums, shredding guitar solos and aggressive screamed vocals.
Reggae groove with offbeat guitar skanks, organ bubble, deep bass and laid back drums.
Classical string quartet, violin, viola and cello, in a minor key, melancholic and tender.
Funk, soul, blues, country, latin, world, techno, house, trance, dubstep, drum and bass, disco.
Instruments: trumpet, trombone, clarinet, flute, harp, marimba, vibraphone, banjo, ukulele, sitar.
Moods: happy, sad, tense, epic, playful, romantic, mysterious, hopeful, nostalgic, uplifting, chill.
Production: live recording, studio, mono, stereo, low quality, high fidelity, compressed, noisy.
Tempo: slow, medium, fast, 60 bpm, 90 bpm, 128 bpm, 140 bpm, 174 bpm; major, minor, instrumental.
"""
STAND_IN_VOCAB = 1000
ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # ids 0-4, as roberta-base has them


def check_tokenizer(tokenizer, where: str) -> None:
    """Stop on a tokenizer that would make every caption embed the same."""
    ids = tokenizer(list(PROBE_SENTENCES), truncation=True, max_length=CONTEXT_TOKENS)["input_ids"]
    special = set(tokenizer.all_special_ids)
    for text, sequence in zip(PROBE_SENTENCES, ids, strict=True):
        if not any(i not in special for i in sequence):
            raise ClapError(
                f"{where}: the tokenizer turns {text!r} into special tokens only ({sequence}), so every "
                "caption would embed the same; it is empty or not the model's tokenizer (an offline "
                "download gives such a one): point it at a folder with the model's tokenizer files"
            )
    if len({tuple(s) for s in ids}) < len(ids):
        raise ClapError(
            f"{where}: the tokenizer gives equal tokens for different sentences; it cannot tell captions apart"
        )


def load_roberta_tokenizer(folder: str):
    """A RoBERTa tokenizer from local files only: vocab.json + merges.txt, or tokenizer.json."""
    from transformers import RobertaTokenizer

    files = set(os.listdir(folder)) if os.path.isdir(folder) else None
    if files is None:
        raise ClapError(f"{folder}: tokenizer folder not found (clap.tokenizer)")
    if not ({"vocab.json", "merges.txt"} <= files or "tokenizer.json" in files):
        raise ClapError(
            f"{folder}: no RoBERTa tokenizer files here (vocab.json and merges.txt, or tokenizer.json); "
            "copy them from roberta-base (LAION's checkpoints do not contain them)"
        )
    tokenizer = RobertaTokenizer.from_pretrained(folder, local_files_only=True)
    check_tokenizer(tokenizer, folder)
    return tokenizer


def tokenizer_sha256(folder: str) -> str:
    digest = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        if name in ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            with open(os.path.join(folder, name), "rb") as f:
                digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()


@lru_cache(maxsize=1)
def stand_in_tokenizer_files() -> tuple[bytes, bytes]:
    """vocab.json and merges.txt of a byte-level BPE trained on STAND_IN_TEXT (deterministic)."""
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        STAND_IN_TEXT.strip().splitlines(),
        vocab_size=STAND_IN_VOCAB,
        min_frequency=1,
        special_tokens=ROBERTA_SPECIALS,
        show_progress=False,
    )
    with tempfile.TemporaryDirectory() as folder:
        bpe.save_model(folder)
        with open(os.path.join(folder, "vocab.json"), "rb") as v, open(os.path.join(folder, "merges.txt"), "rb") as m:
            return v.read(), m.read()


def stand_in_tokenizer():
    """The stand-in, loaded through the same code as a real RoBERTa tokenizer folder."""
    vocab, merges = stand_in_tokenizer_files()
    with tempfile.TemporaryDirectory() as folder:
        for name, data in (("vocab.json", vocab), ("merges.txt", merges)):
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
        return load_roberta_tokenizer(folder)


def stand_in_tokenizer_sha256() -> str:
    vocab, merges = stand_in_tokenizer_files()
    return hashlib.sha256(vocab + b"\0" + merges).hexdigest()
