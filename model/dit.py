"""The diffusion transformer (DiT) of Stable Audio Open, on latent frames.

Reads top to bottom: helpers (Fourier features, rotary embedding), layers (self-attention,
grouped cross-attention, gated feed-forward), the block, the model. What it computes, in
SAO's terms (numbers for sao-1.0):

    x (B, 64, L) -> x + conv1x1(x) -> Linear(64 -> 1536) -> prepend ONE token:
    global embedding + timestep embedding -> 24 x [pre-LayerNorm self-attention with rotary
    positions on half of each head's dims; LayerNorm cross-attention to the condition tokens;
    LayerNorm gated feed-forward] -> Linear(1536 -> 64) -> drop the first position ->
    + conv1x1 -> v prediction (B, 64, L), unscaled.

Every residual branch ends in a zero-initialized projection, so at init each block is the
identity and the model is its input/output projections alone. Attention is PyTorch's
scaled_dot_product_attention (flash kernels on GPU). The condition mask is not applied in
cross-attention, exactly as SAO: padded prompt tokens are zeros and are attended.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

# ---------------------------------------------------------------- helpers


def float32_region(x: Tensor) -> torch.autocast:
    """Autocast off around a computation that must stay in float32 whatever the caller's autocast."""
    return torch.autocast("cuda" if x.is_cuda else "cpu", enabled=False)


class FourierFeatures(nn.Module):
    """Learned Fourier features of a scalar: f = 2 pi x W^T, features [cos f, sin f] (cos first).

    Always float32: under bf16 autocast the product would be rounded to 8 bits of mantissa (cos/sin
    off by up to 0.1 at t near 1), while sampling runs in float32, so training would see other
    features than sampling does."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features // 2, in_features))

    def forward(self, x: Tensor) -> Tensor:
        with float32_region(x):
            f = 2 * math.pi * x.float() @ self.weight.float().T  # (B, out / 2)
            return torch.cat([f.cos(), f.sin()], dim=-1)  # (B, out)


class RotaryEmbedding(nn.Module):
    """Rotary position angles for the first `dim` dims of a head (halves rotated, not interleaved)."""

    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        # Persistent: SAO's checkpoint stores inv_freq, and a loaded one is used as stored.
        self.register_buffer("inv_freq", 1.0 / base ** (torch.arange(0, dim, 2).float() / dim))

    def forward(self, length: int) -> tuple[Tensor, Tensor]:
        positions = torch.arange(length, device=self.inv_freq.device, dtype=self.inv_freq.dtype)
        angles = torch.outer(positions, self.inv_freq)  # (N, dim / 2)
        angles = torch.cat([angles, angles], dim=-1)  # (N, dim)
        return angles.cos(), angles.sin()


def rotate_half(x: Tensor) -> Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate the first cos.shape[-1] dims of every head of x (B, H, N, D); the rest pass."""
    dim = cos.shape[-1]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    rotated = x[..., :dim] * cos + rotate_half(x[..., :dim]) * sin
    return torch.cat([rotated, x[..., dim:]], dim=-1)


def split_heads(x: Tensor, heads: int) -> Tensor:
    b, n, _ = x.shape
    return x.view(b, n, heads, -1).transpose(1, 2)  # (B, H, N, D)


def merge_heads(x: Tensor) -> Tensor:
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)  # (B, N, H * D)


# ---------------------------------------------------------------- layers


class LayerNorm(nn.Module):
    """SAO's LayerNorm: a learned scale (gamma) and a fixed shift (beta), a buffer that is never
    trained: zeros at init, what a loaded checkpoint holds otherwise, exported as it is. Stored as
    `weight` and `bias`, the names a torch LayerNorm has, so files keep their layout."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.register_buffer("bias", torch.zeros(dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, x.shape[-1:], self.weight, self.bias, self.eps)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)
        nn.init.zeros_(self.to_out.weight)

    def forward(self, x: Tensor, rotary: tuple[Tensor, Tensor]) -> Tensor:
        q, k, v = (split_heads(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=-1))  # (B, H, N, D)
        q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        return self.to_out(merge_heads(F.scaled_dot_product_attention(q, k, v)))  # (B, N, E)


class CrossAttention(nn.Module):
    """Grouped-query cross-attention: keys/values are context_dim wide, in heads of the query's
    head size; key/value head i // group serves query head i."""

    def __init__(self, dim: int, heads: int, context_dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.kv_heads = context_dim // (dim // heads)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_kv = nn.Linear(context_dim, 2 * context_dim, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)
        nn.init.zeros_(self.to_out.weight)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        q = split_heads(self.to_q(x), self.heads)  # (B, H, N, D)
        k, v = (split_heads(t, self.kv_heads) for t in self.to_kv(context).chunk(2, dim=-1))  # (B, H_kv, M, D)
        group = self.heads // self.kv_heads
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)  # (B, H, M, D)
        return self.to_out(merge_heads(F.scaled_dot_product_attention(q, k, v)))  # (B, N, E)


class FeedForward(nn.Module):
    """Gated (SwiGLU) feed-forward: value * SiLU(gate), value first."""

    def __init__(self, dim: int, mult: int) -> None:
        super().__init__()
        self.proj_in = nn.Linear(dim, 2 * mult * dim)
        self.proj_out = nn.Linear(mult * dim, dim)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: Tensor) -> Tensor:
        value, gate = self.proj_in(x).chunk(2, dim=-1)  # (B, N, mult * E) each
        return self.proj_out(value * F.silu(gate))  # (B, N, E)


# ---------------------------------------------------------------- block


class DiTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, context_dim: int, ff_mult: int) -> None:
        super().__init__()
        self.self_attn_norm = LayerNorm(dim)
        self.self_attn = SelfAttention(dim, heads)
        self.cross_attn_norm = LayerNorm(dim)
        self.cross_attn = CrossAttention(dim, heads, context_dim)
        self.ff_norm = LayerNorm(dim)
        self.ff = FeedForward(dim, ff_mult)

    def forward(self, x: Tensor, context: Tensor, rotary: tuple[Tensor, Tensor]) -> Tensor:
        x = x + self.self_attn(self.self_attn_norm(x), rotary)  # (B, N, E)
        x = x + self.cross_attn(self.cross_attn_norm(x), context)
        return x + self.ff(self.ff_norm(x))


# ---------------------------------------------------------------- model


class DiT(nn.Module):
    def __init__(
        self,
        io_channels: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        cond_dim: int,
        global_dim: int,
        ff_mult: int = 4,
        timestep_features: int = 256,
    ) -> None:
        super().__init__()
        head_dim = embed_dim // num_heads
        self.timestep_features = FourierFeatures(1, timestep_features)
        self.to_timestep_embed = nn.Sequential(
            nn.Linear(timestep_features, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim)
        )
        self.to_cond_embed = nn.Sequential(
            nn.Linear(cond_dim, cond_dim, bias=False), nn.SiLU(), nn.Linear(cond_dim, cond_dim, bias=False)
        )
        self.to_global_embed = (
            nn.Sequential(
                nn.Linear(global_dim, embed_dim, bias=False), nn.SiLU(), nn.Linear(embed_dim, embed_dim, bias=False)
            )
            if global_dim
            else None
        )
        self.preprocess_conv = nn.Conv1d(io_channels, io_channels, 1, bias=False)
        self.project_in = nn.Linear(io_channels, embed_dim, bias=False)
        # SAO's rule: rotary positions on half of each head's dims, at least 32.
        self.rotary = RotaryEmbedding(min(head_dim, max(head_dim // 2, 32)))
        self.blocks = nn.ModuleList(DiTBlock(embed_dim, num_heads, cond_dim, ff_mult) for _ in range(depth))
        self.project_out = nn.Linear(embed_dim, io_channels, bias=False)
        self.postprocess_conv = nn.Conv1d(io_channels, io_channels, 1, bias=False)
        nn.init.zeros_(self.preprocess_conv.weight)
        nn.init.zeros_(self.postprocess_conv.weight)
        self.checkpoint_every = 0

    def set_activation_checkpointing(self, every: int) -> None:
        """Recompute the activations of blocks 0, n, 2n, ... in backward instead of keeping them
        (n = `every`; 1: every block, 0: none): memory for compute, the same loss and gradients."""
        self.checkpoint_every = every

    def forward(self, x: Tensor, t: Tensor, cross_tokens: Tensor, global_cond: Tensor | None = None) -> Tensor:
        """v prediction for x (B, C, L) at diffusion time t (B,) in [0, 1], given the condition
        tokens (B, M, cond_dim) and the global condition (B, global_dim)."""
        context = self.to_cond_embed(cross_tokens)  # (B, M, cond_dim)
        prefix = self.to_timestep_embed(self.timestep_features(t[:, None].float()))  # (B, E)
        if self.to_global_embed is not None:
            prefix = prefix + self.to_global_embed(global_cond)
        x = self.preprocess_conv(x) + x  # (B, C, L)
        h = torch.cat([prefix[:, None], self.project_in(x.transpose(1, 2))], dim=1)  # (B, 1 + L, E)
        rotary = self.rotary(h.shape[1])
        for i, block in enumerate(self.blocks):
            if self.checkpoint_every and i % self.checkpoint_every == 0 and torch.is_grad_enabled():
                # Keep only the block's input; its activations are recomputed in backward.
                h = checkpoint(block, h, context, rotary, use_reentrant=False)
            else:
                h = block(h, context, rotary)
        out = self.project_out(h)[:, 1:].transpose(1, 2)  # (B, C, L)
        return self.postprocess_conv(out) + out
