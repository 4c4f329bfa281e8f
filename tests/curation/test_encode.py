import numpy as np
import pytest

from curation.encode import decode_flac, encode_flac, pcm_sha256, quantize_pcm16


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("compression", [0.0, 0.5, 1.0])
def test_flac_round_trip_is_exact_and_hash_is_of_stored_pcm(channels, compression):
    rng = np.random.default_rng(channels)
    pcm = (rng.uniform(-1.2, 1.2, (44100, channels))).astype(np.float32)  # some past full scale
    pcm16 = quantize_pcm16(pcm)
    assert pcm16.dtype == np.int16 and pcm16.max() == 32767 and pcm16.min() == -32768  # clipped, not wrapped
    decoded, rate = decode_flac(encode_flac(pcm16, 44100, compression))
    assert rate == 44100
    np.testing.assert_array_equal(decoded, pcm16.reshape(-1, channels))
    assert pcm_sha256(decoded) == pcm_sha256(pcm16)


def test_quantize_rounds_and_clips():
    x = np.array([[0.0], [1.0], [-1.0], [2.0], [-2.0], [0.4 / 32768], [0.6 / 32768]], np.float32)
    assert quantize_pcm16(x).ravel().tolist() == [0, 32767, -32768, 32767, -32768, 0, 1]


def test_quantize_is_numpys_scale_round_clip():
    """The compiled pass gives what numpy's four passes gave, on halves (rounded to even), the
    clipping edges and infinities, for strided input too."""
    rng = np.random.default_rng(3)
    halves = (np.arange(-70000, 70000) + 0.5) / 32768
    x = np.concatenate([rng.uniform(-1.5, 1.5, 200_000), halves, [np.inf, -np.inf, 32767.5 / 32768, -32768.5 / 32768]])
    x = x.astype(np.float32).reshape(-1, 2)
    for pcm in (x, x[::3], x[:, :1]):
        scaled = np.rint(pcm * np.float32(32768.0))
        assert np.array_equal(quantize_pcm16(pcm), np.clip(scaled, -32768, 32767).astype(np.int16))


def test_every_16_bit_sample_read_as_float_is_stored_unchanged():
    every = np.arange(-32768, 32768, dtype=np.int16)[:, None]
    as_read = every.astype(np.float32) / 32768  # how libsndfile and FFmpeg read 16-bit PCM
    np.testing.assert_array_equal(quantize_pcm16(as_read), every)
