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
