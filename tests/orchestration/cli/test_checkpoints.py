import soundfile

from orchestration.cli.main import main


def test_model_init_then_sample_makes_audio_and_says_it_is_noise(tmp_path, capsys):
    checkpoint, out = tmp_path / "tiny", tmp_path / "samples"
    assert main(["model-init", str(checkpoint), "--sample_size", str(2048 * 24)]) == 0
    assert (
        main(
            [
                "sample",
                str(checkpoint),
                "-p",
                "a calm piano",
                "-p",
                "techno",
                "-s",
                "1.5",
                "--steps",
                "3",
                "--cfg-scale",
                "3",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    said = capsys.readouterr().err
    assert "RANDOM weights" in said and "the output is noise" in said and "prompts do not steer" in said
    for name in ("sample-0-00.wav", "sample-0-01.wav"):
        info = soundfile.info(out / name)
        assert (info.samplerate, info.channels, info.frames) == (44100, 2, 66150)


def test_model_info_lists_the_presets(capsys):
    assert main(["model-info", "tiny", "sao-1.0"]) == 0
    said = capsys.readouterr().err
    # The DiT's trained parameters: SAO's 1,056.94 M less the 72 LayerNorm betas (110,592), fixed buffers here.
    assert (
        "tiny: 44100 Hz x2" in said and "DiT 1,056.83 M (24 blocks x 1536, 24 heads)" in said and "VAE 156.11 M" in said
    )


def test_user_mistakes_are_one_line_errors(tmp_path, capsys):
    assert main(["sample", str(tmp_path / "nowhere"), "-p", "x"]) == 2
    assert "not a checkpoint folder" in capsys.readouterr().err
    assert main(["model-info", "huge"]) == 2
    assert "unknown preset 'huge'" in capsys.readouterr().err
    assert main(["model-init", str(tmp_path / "m"), "--dit.num_heads", "3"]) == 2
    assert "embed_dim (128) must be a multiple of num_heads (3)" in capsys.readouterr().err
    assert main(["model-init", str(tmp_path / "m"), "--sao-weights", "model.safetensors"]) == 2
    assert "--sao-weights needs --sao-config" in capsys.readouterr().err


def test_model_init_never_replaces_a_file_or_a_folder_of_other_files(tmp_path, capsys):
    notes, data = tmp_path / "notes.txt", tmp_path / "data"
    notes.write_text("mine")
    data.mkdir()
    (data / "song.wav").write_bytes(b"RIFF")
    for out, held in ((notes, "a file"), (data, "other files")):
        assert main(["model-init", str(out)]) == 2
        assert f"{out} already holds {held}" in capsys.readouterr().err
    assert notes.read_text() == "mine" and (data / "song.wav").read_bytes() == b"RIFF"
    (tmp_path / "list.json").write_text("[1, 2]")
    assert main(["model-init", str(tmp_path / "m"), "--sao-config", str(tmp_path / "list.json")]) == 2
    assert "list.json: not a model_config.json" in capsys.readouterr().err


def test_sample_refuses_lengths_and_steps_that_cannot_work(tmp_path, capsys):
    checkpoint = tmp_path / "tiny"
    assert main(["model-init", str(checkpoint), "--sample_size", str(2048 * 24)]) == 0
    for option, value, said in (
        ("-s", "0", "--seconds-total 0.0: must be more than 0"),
        ("-s", "-3", "--seconds-total -3.0: must be more than 0"),
        ("--seconds-start", "-1", "--seconds-start -1.0: must be 0 or more"),
        ("--steps", "0", "--steps 0: must be at least 1"),
        ("--steps", "-2", "--steps -2: must be at least 1"),
    ):
        capsys.readouterr()
        assert main(["sample", str(checkpoint), "-p", "x", option, value, "-o", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_sample_reads_the_text_encoder_from_another_folder(tmp_path, capsys):
    checkpoint, out = tmp_path / "tiny", tmp_path / "samples"
    assert main(["model-init", str(checkpoint), "--sample_size", str(2048 * 24)]) == 0
    assert (
        main(
            [
                "sample",
                str(checkpoint),
                "-p",
                "x",
                "--steps",
                "2",
                "--text-encoder",
                str(tmp_path / "gone"),
                "-o",
                str(out),
            ]
        )
        == 2
    )
    assert f"text encoder folder {tmp_path / 'gone'}: no config.json" in capsys.readouterr().err
    moved = tmp_path / "t5-here"
    (checkpoint / "text_encoder").rename(moved)  # the encoder is somewhere else on this machine
    assert (
        main(
            [
                "sample",
                str(checkpoint),
                "-p",
                "x",
                "--steps",
                "2",
                "-s",
                "0.5",
                "--text-encoder",
                str(moved),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert soundfile.info(out / "sample-0-00.wav").frames == 22050
