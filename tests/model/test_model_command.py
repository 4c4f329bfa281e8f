import soundfile

from orchestration.cli import main


def test_model_init_then_sample_makes_audio_and_says_it_is_noise(tmp_path, capsys):
    checkpoint, out = tmp_path / "tiny", tmp_path / "samples"
    assert main(["model-init", str(checkpoint), "--sample_size", str(2048 * 24)]) == 0
    assert main(["sample", str(checkpoint), "-p", "a calm piano", "-p", "techno", "-s", "1.5", "--steps", "3",
                 "--cfg-scale", "3", "-o", str(out)]) == 0
    said = capsys.readouterr().err
    assert "RANDOM weights" in said and "the output is noise" in said and "prompts do not steer" in said
    for name in ("sample-0-00.wav", "sample-0-01.wav"):
        info = soundfile.info(out / name)
        assert (info.samplerate, info.channels, info.frames) == (44100, 2, 66150)


def test_model_info_lists_the_presets(capsys):
    assert main(["model-info", "tiny", "sao-1.0"]) == 0
    said = capsys.readouterr().err
    assert "tiny: 44100 Hz x2" in said and "DiT 1,056.94 M (24 blocks x 1536, 24 heads)" in said and "VAE 156.11 M" in said


def test_user_mistakes_are_one_line_errors(tmp_path, capsys):
    assert main(["sample", str(tmp_path / "nowhere"), "-p", "x"]) == 2
    assert "not a checkpoint folder" in capsys.readouterr().err
    assert main(["model-info", "huge"]) == 2
    assert "unknown preset 'huge'" in capsys.readouterr().err
    assert main(["model-init", str(tmp_path / "m"), "--dit.num_heads", "3"]) == 2
    assert "embed_dim (128) must be a multiple of num_heads (3)" in capsys.readouterr().err
    assert main(["model-init", str(tmp_path / "m"), "--sao-weights", "model.safetensors"]) == 2
    assert "--sao-weights needs --sao-config" in capsys.readouterr().err
