import numpy as np
import pytest

from curation.segment import Piece, Segmenter, ShortTail, Windows


def run(total: int, windows: Windows, block_sizes: list[int]) -> tuple[list[Piece | ShortTail], np.ndarray]:
    signal = np.arange(total, dtype=np.float32)[:, None].repeat(2, axis=1)
    segmenter = Segmenter(windows)
    out: list[Piece | ShortTail] = []
    position, i = 0, 0
    while position < total:
        size = block_sizes[i % len(block_sizes)]
        out.extend(segmenter.feed(signal[position : position + size]))
        position += size
        i += 1
    out.extend(segmenter.finish())
    assert segmenter.total == total
    return out, signal


@pytest.mark.parametrize("blocks", [[1], [7, 13], [1000], [99_999], [3, 5000, 17]])
@pytest.mark.parametrize(
    "total,window,hop,min_length,expected_starts,tail",
    [
        (1000, 300, 300, 50, [0, 300, 600, 900], None),  # 100-sample tail kept
        (1030, 300, 300, 50, [0, 300, 600, 900], None),
        (920, 300, 300, 50, [0, 300, 600], (900, 20)),  # 20-sample tail too short
        (900, 300, 300, 50, [0, 300, 600], None),  # exact fit, no tail
        (1000, 300, 150, 50, [0, 150, 300, 450, 600, 750], None),  # overlap: tail 750..1000
        (1000, 200, 350, 50, [0, 350, 700], None),  # gaps between windows
        (40, 300, 300, 50, [], (0, 40)),  # shorter than a clip
        (120, 300, 300, 50, [0], None),  # one short clip
    ],
)
def test_clips_are_sample_exact(blocks, total, window, hop, min_length, expected_starts, tail):
    out, signal = run(total, Windows(window, hop, min_length), blocks)
    pieces = [p for p in out if isinstance(p, Piece)]
    assert [p.start for p in pieces] == expected_starts
    for piece in pieces:
        np.testing.assert_array_equal(piece.pcm, signal[piece.start : piece.start + len(piece.pcm)])
        assert len(piece.pcm) == min(window, total - piece.start)
    tails = [(t.start, t.length) for t in out if isinstance(t, ShortTail)]
    assert tails == ([tail] if tail else [])


def test_memory_stays_one_window_plus_one_block():
    windows = Windows(4410, 4410, 100)
    segmenter = Segmenter(windows)
    block = np.zeros((1024, 2), np.float32)
    for _ in range(2000):  # 2M samples in
        list(segmenter.feed(block))
        assert segmenter.buffered <= windows.window + len(block)


def test_codec_frame_blocks_are_joined_once(monkeypatch):
    # PyAV yields ~1024-sample blocks; joining them must not copy the window once per block.
    joined = 0
    concatenate = np.concatenate

    def counting(arrays, *args, **kwargs):
        nonlocal joined
        joined += sum(len(a) for a in arrays)
        return concatenate(arrays, *args, **kwargs)

    monkeypatch.setattr(np, "concatenate", counting)
    segmenter = Segmenter(Windows.from_seconds(30.0, 30.0, 2.0, 44100))
    block = np.zeros((1024, 2), np.float32)
    clips = sum(len(list(segmenter.feed(block))) for _ in range(90 * 44100 // 1024))
    assert clips == 2 and joined <= 2 * (30 * 44100 + len(block))  # about once per sample, not per block


def test_windows_from_seconds():
    w = Windows.from_seconds(30.0, 30.0, 2.0, 44100)
    assert (w.window, w.hop, w.min_length) == (1_323_000, 1_323_000, 88_200)
