"""The probe's short read-ahead for containers whose header states everything loses nothing:
it gives the same facts and tags as FFmpeg's usual 32 KB read-ahead."""

from __future__ import annotations

import av
import pytest
from audio_files import encode, music_like, write_audio

from curation import probe as probe_module
from curation.probe import probe

TAGS = {
    "title": "Paper Signal",
    "artist": "Saltmarsh",
    "album": "Sea Charts",
    "genre": "ambient",
    "date": "2019",
    "comment": "made for a test",
}
TAGGED = ("tagged.wav", "tagged.flac", "tagged.ogg", "tagged.mp3", "tagged.m4a")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    folder = tmp_path_factory.mktemp("probe")
    wav = write_audio(folder / "plain.wav", music_like(1.5, seed=1), 44100)
    made = {
        "plain.wav": wav,
        "float 48k.wav": write_audio(folder / "float 48k.wav", music_like(1.5, 48000), 48000, "FLOAT"),
    }
    for name, args in [
        ("tagged.wav", ()),
        ("tagged.flac", ()),
        ("tagged.aiff", ()),
        ("tagged.w64", ("-c:a", "pcm_s24le")),
        ("tagged.caf", ()),
        ("tagged.au", ()),
        ("tagged.ogg", ("-c:a", "libvorbis")),
        ("tagged.mp3", ()),
        ("tagged.m4a", ("-c:a", "aac")),
        ("raw.aac", ("-c:a", "aac", "-f", "adts")),
    ]:
        made[name] = encode(wav, folder / name, *args, tags=TAGS)
    return made


@pytest.mark.parametrize(
    "name",
    [
        "plain.wav",
        "float 48k.wav",
        "tagged.wav",
        "tagged.flac",
        "tagged.aiff",
        "tagged.w64",
        "tagged.caf",
        "tagged.au",
        "tagged.ogg",
        "tagged.mp3",
        "tagged.m4a",
        "raw.aac",
    ],
)
def test_short_read_ahead_gives_the_same_facts(sources, name, monkeypatch):
    facts = probe(str(sources[name]))
    monkeypatch.setattr(probe_module, "_HEADER_PROBE_OPTIONS", probe_module._PROBE_OPTIONS)
    assert facts == probe(str(sources[name]))
    if name in TAGGED:  # the containers whose ffmpeg muxer writes every tag given
        assert {k: facts.tags.get(k) for k in TAGS} == TAGS


@pytest.mark.parametrize(
    "name,short",
    [
        ("plain.wav", True),
        ("tagged.flac", True),
        ("tagged.aiff", True),
        ("tagged.ogg", False),
        ("tagged.mp3", False),
        ("raw.aac", False),
    ],
)
def test_short_read_ahead_only_for_header_stated_containers(sources, name, short, monkeypatch):
    opened = []
    real_open = av.open

    def recording_open(*args, **kwargs):
        opened.append(kwargs["options"])
        return real_open(*args, **kwargs)

    monkeypatch.setattr(av, "open", recording_open)
    probe(str(sources[name]))
    assert opened == [probe_module._HEADER_PROBE_OPTIONS if short else probe_module._PROBE_OPTIONS]


@pytest.mark.parametrize("name", ["plain.wav", "float 48k.wav", "tagged.wav", "tagged.flac", "tagged.ogg"])
def test_named_demuxer_gives_the_facts_of_ffmpeg_scoring(sources, name, monkeypatch):
    """WAV, FLAC and Ogg are opened with their demuxer named (FFmpeg skips scoring every
    demuxer it has on the first bytes): the facts are those FFmpeg's own choice gives."""
    opened = []
    real_open = av.open

    def recording_open(*args, **kwargs):
        opened.append(kwargs.get("format"))
        return real_open(*args, **kwargs)

    monkeypatch.setattr(av, "open", recording_open)
    named = probe(str(sources[name]))
    monkeypatch.setattr(probe_module, "_DEMUXER_BY_MAGIC", {})
    assert named == probe(str(sources[name]))
    assert opened == [name.rsplit(".", 1)[1], None]


def test_a_wav_header_that_may_be_act_is_left_to_ffmpeg(sources, tmp_path, monkeypatch):
    """ACT recordings start with a WAV header; FFmpeg tells them apart by byte 256."""
    data = bytearray(sources["plain.wav"].read_bytes())
    data[256] = 0x84
    (tmp_path / "maybe act.wav").write_bytes(bytes(data))
    opened = []
    real_open = av.open

    def recording_open(*args, **kwargs):
        opened.append(kwargs.get("format"))
        return real_open(*args, **kwargs)

    monkeypatch.setattr(av, "open", recording_open)
    probe(str(tmp_path / "maybe act.wav"))
    assert opened == [None]
