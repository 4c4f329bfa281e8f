"""A tiny causal LM with random weights and a tokenizer trained on the spot, saved like a real checkpoint.

The mechanics that load and run a local model (AutoTokenizer, AutoModelForCausalLM, the
chat template, left padding, generate) are the real ones; only the text is noise.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}<s>[{{ message['role'] }}] {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}[assistant] {% endif %}"
)

_TRAINING_TEXT = [
    "A calm jazz piece led by piano, with brushed drums and a walking bass line.",
    "Fast techno with a pounding kick drum, synth bass and a driving four-on-the-floor beat.",
    "A melancholic folk song with fingerpicked acoustic guitar and soft female vocals.",
    "Describe the music of the song in five short sentences, one per line.",
    "Say how it sounds: genre, instruments, mood, tempo, vocals and production.",
    "The strings swell over a slow tempo while the organ holds long chords.",
    "Lo-fi hip hop with vinyl crackle, mellow Rhodes piano and a lazy swing rhythm.",
]


def build_tiny_causal_lm(folder: Path, chat_template: bool = True, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    special = ["<pad>", "<s>", "</s>", "<unk>"]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(_TRAINING_TEXT * 4, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        chat_template=CHAT_TEMPLATE if chat_template else None,
    )
    folder.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        pad_token_id=fast.pad_token_id,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder
