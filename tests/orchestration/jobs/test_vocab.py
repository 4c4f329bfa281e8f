"""`soundry vocab` end to end: the three vocabularies, versions, the manifest, resume, the CLI."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from chat_completions_server import ChatCompletionsServer

from curation.clip import CLIP_SCHEMA
from curation.demo.corpus import write_demo_captions
from labeling.vocab.llm.backend import LLMError
from labeling.vocab.table import read_vocabularies
from orchestration.cli.main import main
from orchestration.configs.jobs import VocabJob
from orchestration.jobs.vocab import build_vocabularies

SONGS = [
    ("Paper Signal", "Saltmarsh", "Sea Charts", "ambient", "2019"),
    ("Silver Signal", "Neon Cartographer", "Low Light", "techno", "1996"),
    ("Golden Garden", "Østfold Tape Club", "Field Notes", "lo-fi hip hop; Chillhop", "2018"),
]


@pytest.fixture()
def inputs(tmp_path):
    """A curated corpus's tag columns (two clips per song), a MusicCaps-like caption file and eval captions."""
    clips = tmp_path / "curated" / "clips"
    clips.mkdir(parents=True)
    fields = [CLIP_SCHEMA.field(name) for name in ("clip_id", "title", "artist", "album", "genre", "date")]
    for part, songs in enumerate([SONGS[:2], SONGS[2:]]):
        rows = [
            {"clip_id": f"{title}-{i}", "title": title, "artist": artist, "album": album, "genre": genre, "date": date}
            for title, artist, album, genre, date in songs
            for i in range(2)
        ]
        pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema(fields)), clips / f"part-{part:06d}.parquet")
    (tmp_path / "curated" / "summary.json").write_text("{}")
    captions = tmp_path / "musiccaps.csv"
    captions.write_text(
        "ytid,caption,aspect_list\n"
        'a,"A mellow piano melody plays over soft strings. The recording is noisy and in mono.","[\'mellow piano '
        "melody', 'mono', 'jazz']\"\n"
        'b,"Here is a fast techno track with a pounding kick drum. A mellow piano melody plays over the soft '
        "strings.\",\"['techno', 'pounding kick']\"\n"
        "c,\"A male choir sings a slow hymn in a large church hall with long reverb.\",\"['male choir', 'church', "
        "'long reverb']\"\n"
        "d,,\"['empty caption row']\"\n"
    )
    evaluation = tmp_path / "eval.csv"
    evaluation.write_text('caption\n"A male choir sings a slow hymn in a large church hall with a long reverb."\n')
    return tmp_path


def job(root: Path, output: str = "vocab", **overrides) -> VocabJob:
    data = {
        "output": str(root / output),
        "corpus": [str(root / "curated")],
        "captions": [{"path": str(root / "musiccaps.csv"), "tags_column": "aspect_list"}],
        "cleaning": {"exclude": [{"path": str(root / "eval.csv")}]},
        "prompts": {"combinations": 6},
        "runner": {"workers": 1},
    }
    for key, value in overrides.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return VocabJob.model_validate(data)


def test_the_template_backend_builds_all_three_vocabularies(inputs):
    summary = build_vocabularies(job(inputs))
    vocabularies = read_vocabularies(str(inputs / "vocab"))
    assert set(vocabularies) == {"llm_long", "rater_long", "tags"}

    llm = vocabularies["llm_long"].table.to_pylist()
    assert {r["source"] for r in llm} == {"template"} and {r["kind"] for r in llm} == {"long_form"}
    origins = {json.loads(r["provenance"])["origin"] for r in llm}
    assert origins == {f"corpus:{inputs / 'curated'}", "aspects"}
    assert summary["llm"]["prompts"] == 3 + 6 and summary["llm"]["songs"] == {"prompted": 3}
    assert not any(title in r["text"] for r in llm for title, *_ in SONGS)

    rater = [r["text"] for r in vocabularies["rater_long"].table.to_pylist()]
    assert rater == [
        "A mellow piano melody plays over soft strings.",
        "The recording is noisy and in mono.",
        "Here is a fast techno track with a pounding kick drum.",
    ]
    assert summary["cleaning"]["rater_long"]["removed"] == {"empty_caption": 1, "eval_overlap": 1, "near_duplicate": 1}

    tags = {r["text"]: r for r in vocabularies["tags"].table.to_pylist()}
    assert tags["jazz"]["source"] == "builtin" and tags["jazz"]["aspect"] == "genre"
    assert tags["Chillhop"]["source"] == "metadata" and tags["Chillhop"]["aspect"] == "genre"
    assert (
        tags["mellow piano melody"]["source"] == "rater:musiccaps"
        and tags["mellow piano melody"]["aspect"] == "instrument"
    )
    assert tags["pounding kick"]["aspect"] == "other"
    assert (
        len(tags) == 1147 + 1 + 5
    )  # built-in, Chillhop, five new rater tags ('mono', 'jazz', 'techno' ... are built in)

    manifest = json.loads((inputs / "vocab" / "manifest.json").read_text())
    for name, entry in manifest["vocabularies"].items():
        assert (
            entry["count"] == vocabularies[name].table.num_rows
            and entry["file"] == f"{name}-{entry['version']}.parquet"
        )
    assert manifest["vocabularies"]["tags"]["sources"] == {"builtin": 1147, "metadata": 1, "rater:musiccaps": 5}
    assert manifest["inputs"][str(inputs / "musiccaps.csv")]["rows"] == 3
    assert manifest["inputs"][str(inputs / "eval.csv")]["rows"] == 1
    assert len(manifest["inputs"][str(inputs / "musiccaps.csv")]["sha256"]) == 64
    assert manifest["config"]["llm"]["backend"] == "template"
    for name in ("llm_long", "rater_long"):
        counts = manifest["cleaning"][name]
        assert counts["sentences"] == counts["kept"] + sum(
            n
            for rule, n in counts["removed"].items()
            if rule not in ("chat_preamble", "empty_caption", "caption_too_long")
        )
    assert not (inputs / "vocab" / "work").exists()


def test_the_same_inputs_give_the_same_versions(inputs):
    first = build_vocabularies(job(inputs, "a"))["vocabularies"]
    second = build_vocabularies(job(inputs, "b"))["vocabularies"]
    assert {n: e["version"] for n, e in first.items()} == {n: e["version"] for n, e in second.items()}
    again = build_vocabularies(job(inputs, "a"))
    assert again["vocabularies"] == first and again["replaced_files"] == []
    changed = build_vocabularies(job(inputs, "a", prompts={"combinations": 7}))
    assert changed["vocabularies"]["llm_long"]["version"] != first["llm_long"]["version"]
    assert changed["replaced_files"] == [first["llm_long"]["file"]]
    assert sorted(p.name for p in (inputs / "a").glob("*.parquet")) == sorted(
        e["file"] for e in changed["vocabularies"].values()
    )


def test_llm_sentences_and_tags_are_checked_against_the_evaluation_captions(inputs):
    build_vocabularies(job(inputs, "vocab-0"))
    llm = [r["text"] for r in read_vocabularies(str(inputs / "vocab-0"))["llm_long"].table.to_pylist()]
    leaked = llm[len(llm) // 2]
    evaluation = inputs / "eval-2.csv"
    # The LLM sentence in other words (upper case, no end mark), and a tag as an evaluation caption.
    evaluation.write_text(f'caption\n"{leaked.upper().rstrip(".")}"\n"Mellow piano melodies."\n')
    summary = build_vocabularies(job(inputs, "vocab-1", cleaning={"exclude": [{"path": str(evaluation)}]}))
    vocabularies = read_vocabularies(str(inputs / "vocab-1"))
    kept = [r["text"] for r in vocabularies["llm_long"].table.to_pylist()]
    assert leaked not in kept and len(kept) < len(llm)
    assert summary["cleaning"]["llm_long"]["removed"]["eval_overlap"] >= 1
    tags = {r["text"] for r in vocabularies["tags"].table.to_pylist()}
    assert "mellow piano melody" not in tags and summary["cleaning"]["tags"]["removed"]["eval_overlap"] == 1


def test_a_caption_dataset_that_is_also_an_evaluation_file_is_named_in_the_manifest(inputs):
    captions = str(inputs / "musiccaps.csv")
    build_vocabularies(job(inputs, cleaning={"exclude": [{"path": captions}]}))
    manifest = json.loads((inputs / "vocab" / "manifest.json").read_text())
    assert manifest["evaluation_sources"] == ["rater:musiccaps"]
    assert manifest["inputs"][captions]["evaluation"] is True
    rater = read_vocabularies(str(inputs / "vocab"))["rater_long"].table.to_pylist()
    assert "A mellow piano melody plays over soft strings." in {r["text"] for r in rater}
    assert {r["source"] for r in rater} == {"rater:musiccaps"}


def test_without_caption_datasets_rater_long_is_left_out(inputs):
    summary = build_vocabularies(job(inputs, captions=[], cleaning={"exclude": []}, builtin_tags=False))
    assert set(read_vocabularies(str(inputs / "vocab"))) == {"llm_long", "tags"}
    assert summary["vocabularies"]["tags"]["sources"] == {"metadata": 4}  # ambient, techno, lo-fi hip hop, Chillhop


def test_an_endpoint_run_resumes_without_paying_twice(inputs, monkeypatch):
    """A run that fails on one prompt keeps every answer it got; the rerun asks only for the rest."""
    broken = {"on": True}

    def behaviour(text: str, attempt: int) -> str:
        return "500" if broken["on"] and "Silver Signal" in text else "ok"

    monkeypatch.setenv("SOUNDRY_TEST_KEY", "sk-test-secret-42")
    with ChatCompletionsServer(behaviour, api_key="sk-test-secret-42") as server:
        llm = {
            "backend": "openai",
            "model": "test-model",
            "prompts_per_unit": 2,
            "openai": {
                "base_url": server.base_url,
                "api_key_env": "SOUNDRY_TEST_KEY",
                "max_retries": 1,
                "backoff_s": 0.01,
            },
        }
        with pytest.raises(LLMError, match="no answer after 2 attempts"):
            build_vocabularies(job(inputs, llm=llm))
        paid_before = sum(server.answered.values())
        assert 0 < paid_before < 9 and not (inputs / "vocab" / "manifest.json").exists()

        broken["on"] = False
        summary = build_vocabularies(job(inputs, llm=llm))
        assert summary["llm"]["answers_cached"] == paid_before
        assert summary["llm"]["answers_generated"] == 9 - paid_before
        assert max(server.answered.values()) == 1 and len(server.answered) == 9  # every prompt paid exactly once

        third = build_vocabularies(job(inputs, llm=llm))
        assert (third["llm"]["answers_generated"], third["llm"]["answers_cached"]) == (0, 9)
        assert third["vocabularies"] == summary["vocabularies"]
    vocabulary = read_vocabularies(str(inputs / "vocab"))["llm_long"].table
    assert set(vocabulary["source"].to_pylist()) == {"llm:test-model"}
    for path in (inputs / "vocab").rglob("*"):
        if path.is_file():
            assert b"sk-test-secret-42" not in path.read_bytes(), path


def test_the_demo_corpus_rater_captions_give_all_three_kinds(demo_corpus, tmp_path):
    """What `soundry demo` hands the vocab stage beside the corpus's tags: its rater caption file."""
    _, pieces = demo_corpus
    captions = write_demo_captions(pieces, tmp_path / "rater_captions.csv")
    summary = build_vocabularies(
        VocabJob.model_validate(
            {
                "output": str(tmp_path / "vocab"),
                "prompts": {"combinations": 4},
                "captions": [{"path": str(captions), "name": "soundry-demo", "tags_column": "aspect_list"}],
            }
        )
    )
    vocabularies = read_vocabularies(str(tmp_path / "vocab"))
    assert {name: v.table["kind"].unique().to_pylist() for name, v in vocabularies.items()} == {
        "llm_long": ["long_form"],
        "rater_long": ["long_form"],
        "tags": ["short_form"],
    }
    assert set(vocabularies["rater_long"].table["source"].to_pylist()) == {"rater:soundry-demo"}
    rater = summary["cleaning"]["rater_long"]
    assert rater["captions"] == len(pieces) and 2 * len(pieces) <= rater["sentences"] <= 3 * len(pieces)
    assert set(rater["removed"]) <= {"duplicate", "near_duplicate"}  # every sentence passes the per-sentence rules
    tags = {r["text"]: r for r in vocabularies["tags"].table.to_pylist()}
    assert summary["vocabularies"]["tags"]["sources"]["rater:soundry-demo"] >= 1
    assert tags["synth pad"]["source"] == "builtin"  # an aspect tag the built-in list already holds keeps its aspect
    assert (tags["low fidelity"]["source"], tags["low fidelity"]["aspect"]) == ("rater:soundry-demo", "production")


def test_the_clap_check_drops_sentences_far_from_the_references(inputs):
    """Random CLAP weights put every sentence near every other (cosine 0.98-0.999), but only
    a sentence itself at 1.0: with a threshold between, exactly the references are kept."""
    plain = build_vocabularies(job(inputs, "plain"))
    kept = read_vocabularies(str(inputs / "plain"))["llm_long"].table["text"].to_pylist()
    rater = "The recording is noisy and in mono."
    check = {
        "clap": {"backend": "random", "architecture": "HTSAT-mini"},
        "references": [kept[3], rater],
        "threshold": 0.9999,
    }
    checked = build_vocabularies(job(inputs, "checked", cleaning={"clap_check": check}))
    vocabularies = read_vocabularies(str(inputs / "checked"))
    assert vocabularies["llm_long"].table["text"].to_pylist() == [kept[3]]
    assert vocabularies["rater_long"].table["text"].to_pylist() == [rater]
    cleaning = checked["cleaning"]
    assert cleaning["rater_long"]["removed"] == {"empty_caption": 1, "non_descriptive:clap": 4}
    survivors = plain["cleaning"]["llm_long"]["kept"] + sum(
        n
        for rule, n in plain["cleaning"]["llm_long"]["removed"].items()
        if rule in ("duplicate", "near_duplicate", "eval_overlap")
    )
    llm = cleaning["llm_long"]
    assert llm["removed"]["non_descriptive:clap"] == survivors - 1 - llm["removed"].get("duplicate", 0)
    assert list(llm["clap_similarity"]) == ["p1", "p5", "p25", "p50", "p75", "p95"]  # 0.01 bins: all 1.0 here
    assert checked["config"]["cleaning"]["clap_check"]["threshold"] == 0.9999

    # A new threshold re-cleans the cached answers: the part files of the last run are not reused.
    again = build_vocabularies(job(inputs, "checked", cleaning={"clap_check": {**check, "threshold": -1.0}}))
    assert again["vocabularies"]["llm_long"]["version"] == plain["vocabularies"]["llm_long"]["version"]
    assert again["cleaning"]["rater_long"]["kept"] == 3


@pytest.mark.slow
def test_two_local_worker_processes_share_the_work(inputs):
    with ChatCompletionsServer(delay_s=0.2) as server:
        llm = {
            "backend": "openai",
            "model": "m",
            "prompts_per_unit": 3,
            "openai": {"base_url": server.base_url, "api_key_env": None, "concurrency": 2},
        }
        summary = build_vocabularies(job(inputs, llm=llm, runner={"workers": 2}))
        assert summary["runner"] == "local" and summary["llm"]["workers"] == 2 and summary["llm"]["units"] == 3
        assert len(server.answered) == 9
        # concurrency is per unit, and each worker runs one unit at a time (as the option says)
        assert 2 <= server.max_in_flight <= 2 * 2
    one = build_vocabularies(job(inputs, "one", llm={**llm, "cache": str(inputs / "vocab" / "llm_cache")}))
    assert one["llm"]["answers_cached"] == 9
    assert one["vocabularies"]["llm_long"]["version"] == summary["vocabularies"]["llm_long"]["version"]


def test_the_command_line(inputs, capsys):
    out = inputs / "cli"
    code = main(
        [
            "vocab",
            str(inputs / "curated"),
            "--output",
            str(out),
            "--captions-file",
            str(inputs / "musiccaps.csv"),
            "--exclude-file",
            str(inputs / "eval.csv"),
            "--prompts.combinations",
            "3",
        ]
    )
    assert code == 0
    assert set(read_vocabularies(str(out))) == {"llm_long", "rater_long", "tags"}
    err = capsys.readouterr().err
    assert "llm_long" in err and "removed:" in err

    assert main(["vocab", "--output", str(out), "--print-config", "--llm.backend", "openai", "--llm.model", "m"]) == 0
    assert "api_key_env: OPENAI_API_KEY" in capsys.readouterr().out


@pytest.mark.parametrize(
    "arguments,message",
    [
        (["--captions-file", "{root}/missing.csv"], "missing.csv: no such file"),
        (["--captions", "[{path: '{root}/eval.csv', caption_column: text}]"], "captions[].caption_column"),
        (["{root}/nothing-here"], "no clip table"),
        (["--llm.backend", "transformers", "--llm.model", "{root}/no-model"], "not a model folder"),
        (["--llm.backend", "openai"], "llm.model is required"),
        (["--prompts.song", "Describe {song}"], "unknown field {song}"),
        (["--cleaning.clap_check.clap.backend", "random"], "cleaning.clap_check.threshold: required"),
        (
            ["--cleaning.clap_check.clap.backend", "hf", "--cleaning.clap_check.threshold", "0.2"],
            "needs clap.model_dir",
        ),
    ],
)
def test_user_mistakes_are_one_line_errors(inputs, capsys, arguments, message):
    code = main(
        [
            "vocab",
            "--output",
            str(inputs / "err"),
            "--prompts.combinations",
            "2",
            *[a.replace("{root}", str(inputs)) for a in arguments],
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
