"""`soundry model-info`, `soundry model-init`, `soundry sample` and `soundry export`."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from curation.core.errors import UserError
from orchestration.cli.options import add_job_arguments, defer_options, job_overrides

if TYPE_CHECKING:
    from rich.console import Console


class ModelCommandError(UserError):
    """A model command's argument that cannot work; the message says which and what to do."""


def add_commands(commands: argparse._SubParsersAction) -> None:
    info = commands.add_parser(
        "model-info",
        help="parameter counts and shapes of the model presets (or of a SAO model_config.json)",
        description="Build each preset on the meta device (no memory, no weights) and print its parameter counts.",
    )
    defer_options(info, _model_info_options)
    info.set_defaults(handler=_model_info)

    init = commands.add_parser(
        "model-init",
        help="write a model checkpoint folder: random weights from a preset, or Stable Audio Open's weights",
        description="Write a checkpoint folder (config.json, model.safetensors, and the text encoder when it is a "
        "random "
        "stand-in) that `soundry sample` and the trainer start from. The model is a preset (--preset), a SAO "
        "model_config.json (--sao-config), or a --config YAML, with any option below on top. With --sao-weights the "
        "DiT, VAE and timing conditioners come from SAO's model.safetensors, loaded strictly.",
    )
    init.add_argument("out", help="checkpoint folder to write")
    defer_options(init, _preset_option)
    init.add_argument(
        "--sao-config", metavar="JSON", help="Stable Audio Open model_config.json to build instead of a preset"
    )
    init.add_argument("--sao-weights", metavar="FILE", help="SAO model.safetensors (or .ckpt) to load, strictly")
    init.add_argument("--sao-vae", metavar="FILE", help="SAO VAE-only checkpoint to load into the VAE, strictly")
    init.add_argument("--vae-checkpoint", metavar="FOLDER", help="a soundry checkpoint folder whose VAE to use")
    init.add_argument("--seed", type=int, default=0, help="seed of the random weights (default: 0)")
    add_job_arguments(init, "model.config:ModelConfig")
    init.set_defaults(handler=_model_init)

    sample = commands.add_parser(
        "sample",
        help="generate audio from text prompts with a model checkpoint",
        description="Generate one WAV per prompt with a checkpoint folder (from model-init or the trainer). "
        "A checkpoint with random weights makes noise, and says so.",
    )
    sample.add_argument("checkpoint", help="checkpoint folder")
    sample.add_argument("-p", "--prompt", action="append", required=True, help="text prompt (repeat for several)")
    sample.add_argument(
        "-s",
        "--seconds-total",
        type=float,
        default=None,
        help="length of the audio in seconds (default: the model's full length)",
    )
    sample.add_argument(
        "--seconds-start", type=float, default=0.0, help="timing condition: offset in the source (default: 0)"
    )
    sample.add_argument("--steps", type=int, default=None, help="sampler steps (default: the model config's, SAO: 100)")
    sample.add_argument(
        "--cfg-scale",
        type=float,
        default=None,
        help="classifier-free guidance scale (default: the model config's, SAO: 7)",
    )
    sample.add_argument("--sampler", default=None, help="dpmpp-3m-sde, dpmpp-2m or euler (default: the model config's)")
    sample.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    sample.add_argument("-o", "--out", default="samples", help="output folder (default: samples)")
    sample.add_argument("--no-ema", action="store_true", help="use the raw weights even when EMA weights are present")
    sample.add_argument(
        "--text-encoder",
        default=None,
        metavar="FOLDER",
        help="local T5 folder for the prompts, over the one the checkpoint names (e.g. another machine's path)",
    )
    sample.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    sample.set_defaults(handler=_sample)

    export = commands.add_parser(
        "export",
        help="write a checkpoint as Stable Audio Open's files (model_config.json, model.safetensors)",
        description="Write a soundry checkpoint folder (diffusion or VAE, from the trainers or model-init) in the "
        "layout "
        "stable-audio-tools reads: SAO's model_config.json and model.safetensors with SAO's tensor names, EMA weights "
        "by default. The frozen T5 is not part of SAO's file; stable-audio-tools loads it by name.",
    )
    export.add_argument("checkpoint", help="checkpoint folder (e.g. RUN/checkpoints/step-00001000)")
    export.add_argument("out", help="folder to write")
    export.add_argument(
        "--no-ema", action="store_true", help="export the raw weights even when EMA weights are present"
    )
    export.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    export.set_defaults(handler=_export)


def _model_info_options(parser: argparse.ArgumentParser) -> None:
    from model.config import PRESETS

    parser.add_argument(
        "presets", nargs="*", metavar="PRESET", help=f"presets to show (default: all of {', '.join(PRESETS)})"
    )
    parser.add_argument(
        "--sao-config", metavar="JSON", help="also show the model a Stable Audio Open model_config.json describes"
    )


def _preset_option(parser: argparse.ArgumentParser) -> None:
    from model.config import PRESETS

    parser.add_argument("--preset", default="tiny", choices=list(PRESETS), help="base configuration (default: tiny)")


def _model_info(args: argparse.Namespace, console: Console) -> int:
    import torch

    from model.config import PRESETS, preset
    from model.latent_diffusion import LatentDiffusion
    from model.sao.config import from_sao_model_config

    unknown = [name for name in args.presets if name not in PRESETS]
    if unknown:
        raise ModelCommandError(f"unknown preset {unknown[0]!r}; presets: {', '.join(PRESETS)}")
    configs = {name: preset(name) for name in args.presets or PRESETS}
    # Each model below gets a random stand-in text encoder whose warning would repeat what the
    # listing already says ("random stand-in"); only counts are read here.
    logging.getLogger("model.text_encoder").setLevel(logging.ERROR)
    if args.sao_config:
        configs[Path(args.sao_config).name] = from_sao_model_config(args.sao_config)
    for name, config in configs.items():
        with torch.device("meta"):
            model = LatentDiffusion(config)
        encoder = model.conditioners.text_encoder
        trainable = sum(p.numel() for p in model.conditioners.parameters() if p.requires_grad)
        prompt = config.conditioning.prompt
        text = (
            f"text encoder {prompt.name} {_millions(_count(encoder))} frozen ({prompt.path or 'random stand-in'})"
            if encoder
            else "no text encoder"
        )
        console.print(
            f"[bold]{name}[/]: {config.sample_rate} Hz x{config.audio_channels}, {config.vae.latent_dim} latents at "
            f"{config.latent_rate:.2f}/s (x{config.vae.downsampling_ratio}), "
            f"{config.sample_size / config.sample_rate:.1f} s per sample",
            soft_wrap=True,
        )
        console.print(
            f"  VAE {_millions(_count(model.vae))} (encoder {_millions(_count(model.vae.encoder))}) | "
            f"DiT {_millions(_count(model.dit))} ({config.dit.depth} blocks x {config.dit.embed_dim}, "
            f"{config.dit.num_heads} heads) | "
            f"conditioners {_millions(trainable)} trainable | {text}",
            soft_wrap=True,
        )
    return 0


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _millions(n: int) -> str:
    return f"{n / 1e6:,.2f} M"


def _model_init(args: argparse.Namespace, console: Console) -> int:
    import torch

    from model.checkpoint import load_vae, save_checkpoint
    from model.config import preset
    from model.latent_diffusion import LatentDiffusion
    from model.sao.checkpoint import load_sao_vae_weights, load_sao_weights
    from model.sao.config import from_sao_model_config
    from model.text_encoder import load_text_encoder
    from model.weights import read_tensors
    from orchestration.configs.resolve import resolve, to_yaml

    if args.sao_weights and not args.sao_config:
        raise ModelCommandError("--sao-weights needs --sao-config (the model_config.json published with the weights)")
    out = Path(args.out)
    # Saving replaces OUT whole (and deletes what was there), so OUT must be new or an empty folder.
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        held = "a checkpoint" if (out / "config.json").is_file() else "other files" if out.is_dir() else "a file"
        raise ModelCommandError(
            f"{out} already holds {held}; model-init writes a new folder: choose another path or remove it"
        )
    base = from_sao_model_config(args.sao_config).model_dump() if args.sao_config else preset(args.preset).model_dump()
    config = resolve(args.job_model, args.config, job_overrides(args), base=base)
    if args.print_config:
        print(to_yaml(config), end="")
        return 0
    text_encoder = (
        load_text_encoder(config.conditioning.prompt) if "prompt" in config.conditioning.cross_attention_ids else None
    )
    torch.manual_seed(args.seed)
    weights, metadata = "random", {}
    if args.sao_weights:
        with torch.device("meta"):
            model = LatentDiffusion(config, text_encoder=text_encoder)
        load_sao_weights(model, read_tensors(args.sao_weights), args.sao_weights)
        weights, metadata["source"] = "stable-audio-open", str(args.sao_weights)
    else:
        model = LatentDiffusion(config, text_encoder=text_encoder)
    if args.sao_vae:
        load_sao_vae_weights(model.vae, read_tensors(args.sao_vae), args.sao_vae)
        metadata["vae_source"] = str(args.sao_vae)
    elif args.vae_checkpoint:
        vae = load_vae(args.vae_checkpoint)
        if vae.config != config.vae:
            raise ModelCommandError(
                f"--vae-checkpoint {args.vae_checkpoint}: its VAE ({vae.config}) differs from this model's "
                f"({config.vae})"
            )
        model.vae.load_state_dict(vae.state_dict())
        metadata["vae_source"] = str(args.vae_checkpoint)
    save_checkpoint(out, model, weights=weights, metadata=metadata)
    console.print(
        f"wrote {out}: {weights} weights, DiT {_millions(sum(p.numel() for p in model.dit.parameters()))}, "
        f"VAE {_millions(sum(p.numel() for p in model.vae.parameters()))}",
        soft_wrap=True,
    )
    return 0


def _sample(args: argparse.Namespace, console: Console) -> int:
    import torch

    from model.checkpoint import load_checkpoint, read_checkpoint_info
    from model.generate import generate, write_wav
    from model.sampling import SAMPLERS

    if args.sampler is not None and args.sampler not in SAMPLERS:
        raise ModelCommandError(f"--sampler {args.sampler}: unknown; samplers: {', '.join(SAMPLERS)}")
    if args.seconds_total is not None and args.seconds_total <= 0:
        raise ModelCommandError(
            f"--seconds-total {args.seconds_total}: must be more than 0 (or left out for the model's full length)"
        )
    if args.seconds_start < 0:
        raise ModelCommandError(f"--seconds-start {args.seconds_start}: must be 0 or more")
    if args.steps is not None and args.steps < 1:
        raise ModelCommandError(f"--steps {args.steps}: must be at least 1")
    info = read_checkpoint_info(args.checkpoint)
    if info.kind != "diffusion":
        raise ModelCommandError(f"{args.checkpoint} is a {info.kind} checkpoint; sampling needs a diffusion checkpoint")
    try:
        device = torch.device(args.device)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as error:
        raise ModelCommandError(f"--device {args.device}: not usable here ({error})") from None
    model = load_checkpoint(
        args.checkpoint, use_ema=not args.no_ema, device=device, text_encoder=args.text_encoder
    ).eval()
    config = info.config
    seconds_total = args.seconds_total or config.sample_size / config.sample_rate
    if info.weights == "random":
        console.print(
            f"[bold yellow]{args.checkpoint} has RANDOM weights (untrained, step {info.step}): the output is noise.[/]",
            soft_wrap=True,
        )
    encoder = model.conditioners.text_encoder
    if encoder is not None and encoder.is_random:
        console.print("[yellow]its text encoder has random weights: prompts do not steer it.[/]", soft_wrap=True)
    started = time.perf_counter()
    audio = generate(
        model,
        args.prompt,
        seconds_total,
        seconds_start=args.seconds_start,
        steps=args.steps,
        cfg_scale=args.cfg_scale,
        seed=args.seed,
        sampler=args.sampler,
        length_s=max(seconds_total, config.sample_size / config.sample_rate),
    )
    elapsed = time.perf_counter() - started
    out = Path(args.out)
    for i, (prompt, clip) in enumerate(zip(args.prompt, audio, strict=True)):
        path = out / f"sample-{args.seed}-{i:02d}.wav"
        write_wav(path, clip, config.sample_rate)
        console.print(
            f"{path}: {clip.shape[-1] / config.sample_rate:.2f} s, peak {clip.abs().max().item():.2f}, prompt "
            f"{prompt!r}",
            soft_wrap=True,
        )
    console.print(
        f"{len(args.prompt)} sample(s) in {elapsed:.1f} s ({info.weights} weights, step {info.step})", soft_wrap=True
    )
    return 0


def _export(args: argparse.Namespace, console: Console) -> int:
    from model.sao.export import export_sao

    done = export_sao(args.checkpoint, args.out, use_ema=not args.no_ema, overwrite=args.overwrite)
    console.print(
        f"exported {done.kind} checkpoint (step {done.step}, {done.weights} weights, {_millions(done.parameters)}) "
        f"to {done.folder}: model_config.json, model.safetensors",
        soft_wrap=True,
    )
    for warning in done.warnings:
        console.print(f"[yellow]note:[/] {warning}", soft_wrap=True)
    return 0
