"""The transformers backend: any causal LM in a local folder, batched, on the GPU when there is one.

The model's chat template wraps each prompt when the tokenizer has one (instruction-tuned
models answer far better asked that way); a base model gets the prompt as is. Prompts are
left-padded into batches and only the new tokens are decoded. Loading never touches a hub:
the folder must hold config.json, the weights and the tokenizer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from curation.core.extras import needs_extra
from labeling.vocab.config import LLMConfig
from labeling.vocab.llm.backend import Identity, LLMError, Prompt, source_of

_FINGERPRINT_BYTES = 1 << 20


class TransformersBackend:
    def __init__(self, config: LLMConfig, seed: int = 0) -> None:
        folder = Path(config.model or "")
        if not (folder / "config.json").is_file():  # said before torch takes seconds to import
            raise LLMError(
                f"llm.model {config.model}: not a model folder (no config.json); give a local folder "
                "with config.json, the weights and the tokenizer, e.g. one saved by save_pretrained"
            )
        import torch

        with needs_extra("label", "the transformers LLM backend", "transformers"):
            from transformers import AutoModelForCausalLM, AutoTokenizer

        options = config.transformers
        cuda = torch.cuda.is_available() and options.device != "cpu"
        if options.device == "cuda" and not torch.cuda.is_available():
            raise LLMError("llm.transformers.device is cuda but no GPU is visible; use auto or cpu")
        self.device = torch.device("cuda" if cuda else "cpu")
        if not cuda and options.cpu_threads:
            torch.set_num_threads(options.cpu_threads)
        if options.dtype == "auto":
            self.dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
        else:
            self.dtype = getattr(torch, options.dtype)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=self.dtype, local_files_only=True)
        except (OSError, ValueError) as error:
            raise LLMError(f"llm.model {config.model}: cannot be loaded ({str(error).splitlines()[0]})") from None
        self.model.to(self.device).eval()
        self.tokenizer.padding_side = "left"  # new tokens follow every prompt directly
        if self.tokenizer.pad_token is None:
            if self.tokenizer.eos_token is None:
                raise LLMError(
                    f"llm.model {config.model}: the tokenizer has neither a pad nor an end-of-sequence token"
                )
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.chat = bool(getattr(self.tokenizer, "chat_template", None))
        self.config = config
        self.seed = seed
        self.identity = Identity(
            "transformers",
            source_of(config).removeprefix("llm:"),
            {
                "fingerprint": model_fingerprint(folder),
                "chat_template": self.chat,
                "dtype": str(self.dtype).removeprefix("torch."),
                "max_new_tokens": config.max_new_tokens,
                "temperature": config.temperature,
                "top_p": config.top_p,
                "seed": seed,
            },
        )

    def render(self, prompt: Prompt) -> str:
        if not self.chat:
            return prompt.text
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt.text}], tokenize=False, add_generation_prompt=True
        )

    def generate(self, prompts: Sequence[Prompt], on_answer: Callable[[int, str], None] | None = None) -> list[str]:
        import torch

        answers: list[str] = []
        size = self.config.transformers.batch_size
        for start in range(0, len(prompts), size):
            batch = [self.render(p) for p in prompts[start : start + size]]
            # Seeded by the batch's own prompts, not by worker or call order.
            torch.manual_seed(int.from_bytes(hashlib.sha256(repr((self.seed, batch)).encode()).digest()[:8], "little"))
            encoded = self.tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=not self.chat).to(
                self.device
            )
            sampling = (
                {"do_sample": True, "temperature": self.config.temperature, "top_p": self.config.top_p}
                if self.config.temperature > 0
                else {"do_sample": False}
            )
            with torch.inference_mode():
                output = self.model.generate(
                    **encoded,
                    max_new_tokens=self.config.max_new_tokens,
                    pad_token_id=self.tokenizer.pad_token_id,
                    **sampling,
                )
            new_tokens = output[:, encoded["input_ids"].shape[1] :]
            for answer in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True):
                if on_answer is not None:
                    on_answer(len(answers), answer)
                answers.append(answer)
        return answers


def model_fingerprint(folder: Path) -> str:
    """Which weights these are, cheaply: config.json and each weight file's size, first and
    last MiB. Two fine-tunes of one model differ there; a copied folder does not."""
    digest = hashlib.sha256((folder / "config.json").read_bytes())
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".safetensors", ".bin", ".pt", ".gguf"):
            continue
        size = path.stat().st_size
        digest.update(json.dumps([path.name, size]).encode())
        with open(path, "rb") as f:
            digest.update(f.read(_FINGERPRINT_BYTES))
            f.seek(max(0, size - _FINGERPRINT_BYTES))
            digest.update(f.read(_FINGERPRINT_BYTES))
    return digest.hexdigest()[:16]
