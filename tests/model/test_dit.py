import pytest
import torch

from model.dit import DiT, apply_rotary


def tiny_dit(**overrides):
    torch.manual_seed(0)
    args = dict(io_channels=8, embed_dim=64, depth=2, num_heads=2, cond_dim=32, global_dim=64, ff_mult=2)
    return DiT(**(args | overrides))


def inputs(b=2, length=7, tokens=5):
    return torch.randn(b, 8, length), torch.rand(b), torch.randn(b, tokens, 32), torch.randn(b, 64)


@pytest.mark.parametrize("length", [1, 7, 64])
def test_shapes_at_several_lengths(length):
    x, t, cross, global_cond = inputs(length=length)
    assert tiny_dit()(x, t, cross, global_cond).shape == x.shape


def test_without_global_conditions():
    x, t, cross, _ = inputs()
    assert tiny_dit(global_dim=0)(x, t, cross).shape == x.shape


def test_zero_init_makes_the_model_its_residual_path():
    """At init every block is the identity (its branches end in zero projections) and the
    pre/post 1x1 convs are zero, so the output is project_out(project_in(x)), whatever t and
    the conditions are."""
    dit = tiny_dit()
    x, t, cross, global_cond = inputs()
    h = torch.randn(2, 8, 64)
    for block in dit.blocks:
        assert torch.equal(block(h, torch.randn(2, 5, 32), dit.rotary(8)), h)
    expected = dit.project_out(dit.project_in(x.transpose(1, 2))).transpose(1, 2)
    torch.testing.assert_close(dit(x, t, cross, global_cond), expected)
    torch.testing.assert_close(dit(x, torch.rand(2), torch.randn(2, 5, 32), torch.randn(2, 64)), expected)


def test_rotary_scores_depend_only_on_relative_position():
    dit = tiny_dit()
    cos, sin = dit.rotary(20)
    q, k = torch.randn(1, 1, 1, 32), torch.randn(1, 1, 1, 32)
    q_all, k_all = apply_rotary(q.expand(1, 1, 20, 32), cos, sin), apply_rotary(k.expand(1, 1, 20, 32), cos, sin)
    scores = q_all[0, 0] @ k_all[0, 0].T  # (20, 20)
    torch.testing.assert_close(scores[3, 1], scores[15, 13])
    assert not torch.allclose(scores[3, 1], scores[3, 2])
    # With SAO's 64-dim heads the rotation covers the first 32 dims; the others pass unrotated.
    cos, sin = tiny_dit(embed_dim=128).rotary(4)
    assert cos.shape == (4, 32)
    v = torch.randn(1, 1, 4, 64)
    assert torch.equal(apply_rotary(v, cos, sin)[..., 32:], v[..., 32:])


def test_cross_attention_groups_key_value_heads_like_sao():
    """4 query heads over 2 key/value heads: kv head i // 2 serves query head i."""
    torch.manual_seed(0)
    dit = tiny_dit(embed_dim=64, num_heads=4, cond_dim=32)  # head dim 16, kv heads 32 / 16 = 2
    attn = dit.blocks[0].cross_attn
    torch.nn.init.normal_(attn.to_out.weight)
    x, context = torch.randn(1, 6, 64), torch.randn(1, 3, 32)
    q = attn.to_q(x).view(1, 6, 4, 16)
    k, v = (t.view(1, 3, 2, 16) for t in attn.to_kv(context).chunk(2, dim=-1))
    heads = []
    for i in range(4):
        weights = torch.softmax(q[0, :, i] @ k[0, :, i // 2].T / 4.0, dim=-1)
        heads.append(weights @ v[0, :, i // 2])
    expected = attn.to_out(torch.cat(heads, dim=-1))[None]
    torch.testing.assert_close(attn(x, context), expected)


def test_fourier_features_stay_float32_under_bf16_autocast():
    """Timestep and seconds features under bf16 autocast equal the float32 ones (the timestep's were
    off by up to 0.1 at t near 1)."""
    from model.conditioners import NumberConditioner
    from model.config import NumberConfig
    from model.dit import FourierFeatures

    torch.manual_seed(0)
    features, t = FourierFeatures(1, 256), torch.linspace(0, 1, 65)[:, None]
    numbers, seconds = NumberConditioner(NumberConfig(), 32), torch.linspace(0, 512, 65)
    plain = features(t), numbers.features(seconds)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = features(t), numbers.features(seconds), numbers(seconds)[0]
    assert autocast[0].dtype == autocast[1].dtype == torch.float32
    assert (autocast[0] - plain[0]).abs().max() < 1e-6 and torch.equal(autocast[1], plain[1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tokens = numbers.proj(plain[1])[:, None]  # only the projection runs in bf16, as every Linear under autocast
    assert torch.equal(autocast[2], tokens)


def test_layer_norm_shift_is_a_fixed_buffer_stored_as_bias():
    dit = tiny_dit()
    norm = dit.blocks[0].self_attn_norm
    assert "bias" not in dict(norm.named_parameters()) and torch.equal(norm.bias, torch.zeros(64))
    assert "blocks.0.self_attn_norm.bias" in dit.state_dict()
    x, t, cross, global_cond = inputs()
    for p in dit.parameters():
        p.data.normal_(std=0.1)
    dit(x, t, cross, global_cond).square().mean().backward()
    assert all(p.grad is not None for p in dit.parameters())
    assert not any(n.endswith("norm.bias") for n, _ in dit.named_parameters())


@pytest.mark.parametrize("every", [1, 2])
def test_activation_checkpointing_gives_the_same_loss_and_gradients(every):
    """Blocks 0, n, 2n, ... recompute their activations in backward: the same loss and gradients to float tolerance."""
    dit = tiny_dit(depth=3)
    for p in dit.parameters():
        p.data.normal_(std=0.1)
    x, t, cross, global_cond = inputs()

    def loss_and_grads():
        dit.zero_grad()
        loss = dit(x, t, cross, global_cond).square().mean()
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in dit.named_parameters()}

    plain_loss, plain_grads = loss_and_grads()
    dit.set_activation_checkpointing(every)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        checkpointed_loss, checkpointed_grads = loss_and_grads()
    torch.testing.assert_close(checkpointed_loss, plain_loss, rtol=1e-6, atol=1e-7)
    for name, grad in plain_grads.items():
        torch.testing.assert_close(checkpointed_grads[name], grad, rtol=1e-5, atol=1e-7, msg=name)
    dit.set_activation_checkpointing(0)
    kept = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t.numel()) or t, lambda t: t):
        loss_and_grads()
    assert sum(saved) < sum(kept)  # it did keep less for backward
