"""User tables (caption datasets, song lists, evaluation captions): a clear error or a counted skip; and the
build's inputs read from them, each recorded with its digest."""

import collections
import hashlib
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.clip import ClipTableError
from labeling.vocab.config import CaptionSource, CleaningConfig, SongList, VocabConfig
from labeling.vocab.inputs import file_sha256, rater_sentences, read_exclusions, song_prompts
from labeling.vocab.rater_captions import caption_reader, rater_items
from labeling.vocab.songs import corpus_songs, era_of, list_songs, split_genres
from labeling.vocab.tags import TagCollector
from labeling.vocab.text_tables import TableFileError, TableReader
from labeling.vocab.writer import VocabularyWriter


def read(path, required=("caption",), optional=(), **options):
    reader = TableReader(str(path), list(required), list(optional), **options)
    return [row for _, row in reader], reader


def test_csv_with_a_missing_column_names_it(tmp_path):
    path = tmp_path / "captions.csv"
    path.write_text("text,aspect_list\nA calm piano piece.,[]\n")
    with pytest.raises(
        TableFileError, match=r"captions.csv: no column 'caption' \(it has: text, aspect_list\); set captions"
    ):
        list(TableReader(str(path), ["caption"], option="captions[].caption_column"))


def test_empty_rows_bad_bytes_and_huge_lines_are_counted_not_fatal(tmp_path):
    path = tmp_path / "captions.csv"
    huge = "x" * (10 * 2**20)  # one 10 MB line
    path.write_bytes(
        b"\xef\xbb\xbfcaption,aspect_list\n"  # a byte-order mark before the header
        b"A calm piano piece.,\"['piano']\"\n"
        b"\n"  # empty line
        b",\n"  # empty fields
        b"Caf\xe9 jazz in Latin-1.,x\n" + huge.encode() + b",y\n"  # not UTF-8
        b'"A caption over\ntwo lines.",z\n'
        b"one,two,three\n"  # too many fields
        b"Last row without newline.,w"
    )
    rows, reader = read(path, optional=["aspect_list"])
    assert [r["caption"] for r in rows] == [
        "A calm piano piece.",
        "A caption over\ntwo lines.",
        "Last row without newline.",
    ]
    assert reader.skipped == {"empty_row": 2, "not_utf-8": 1, "line_too_long": 1, "wrong_field_count": 1}
    assert reader.summary()["examples"][:2] == ["line 3: empty_row", "line 4: empty_row"]


def test_another_encoding_can_be_named(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("caption\nCafé jazz.\n".encode("latin-1"))
    rows, reader = read(path, encoding="latin-1")
    assert rows == [{"caption": "Café jazz."}] and not reader.skipped


def test_jsonl_skips_malformed_lines_and_json_needs_a_list(tmp_path):
    path = tmp_path / "captions.jsonl"
    path.write_text('{"caption": "A calm piano piece."}\n{"caption": \n[1, 2]\n\n{"caption": null}\n')
    rows, reader = read(path)
    assert rows == [{"caption": "A calm piano piece."}, {"caption": None}]
    assert reader.skipped == {"malformed_json": 1, "not_an_object": 1, "empty_row": 1}
    listed = tmp_path / "captions.json"
    listed.write_text(json.dumps([{"caption": "Soft strings."}, "stray", {"caption": "Loud drums."}]))
    rows, reader = read(listed)
    assert [r["caption"] for r in rows] == ["Soft strings.", "Loud drums."] and reader.skipped == {"not_an_object": 1}
    (tmp_path / "object.json").write_text('{"caption": "x"}')
    with pytest.raises(TableFileError, match="expected a JSON list of objects"):
        read(tmp_path / "object.json")
    (tmp_path / "broken.json").write_text('[{"caption": ')
    with pytest.raises(TableFileError, match="not valid JSON"):
        read(tmp_path / "broken.json")
    (tmp_path / "other.jsonl").write_text('{"text": "x"}\n')
    with pytest.raises(TableFileError, match="no column 'caption'"):
        read(tmp_path / "other.jsonl")


def test_parquet_with_list_tags(tmp_path):
    path = tmp_path / "captions.parquet"
    pq.write_table(pa.table({"caption": ["A calm piece.", None], "tags": [["piano", "calm"], []]}), path)
    rows, _ = read(path, optional=["tags"])
    assert rows == [{"caption": "A calm piece.", "tags": ["piano", "calm"]}, {"caption": None, "tags": []}]
    with pytest.raises(TableFileError, match="no column 'aspect_list'"):
        read(path, optional=["aspect_list"])
    (tmp_path / "fake.parquet").write_text("not parquet")
    with pytest.raises(TableFileError, match="not a Parquet file"):
        read(tmp_path / "fake.parquet")


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("captions.xlsx", "x", "cannot tell the format"),
        ("empty.csv", "", "empty file"),
        ("missing.csv", None, "no such file"),
    ],
)
def test_files_that_cannot_be_read_say_why(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(TableFileError, match=message):
        read(path)


def test_rater_captions_become_sentences_and_tags(tmp_path):
    path = tmp_path / "musiccaps.csv"
    path.write_text(
        "ytid,caption,aspect_list\n"
        'a,"This is a low quality recording. A mellow piano melody plays over soft strings. I love it!",'
        "\"['low quality', 'mellow piano melody']\"\n"
        "b,,\"['rock']\"\n"
        f"c,{'A long caption about drums. ' * 100},[]\n"
    )
    source = CaptionSource(path=str(path), tags_column="aspect_list")
    cleaning = CleaningConfig(max_caption_chars=500)
    removed = collections.Counter()
    read_counts = collections.Counter()
    items = list(
        rater_items(caption_reader(source, cleaning, "x"), source, cleaning, removed, lambda k: read_counts.update([k]))
    )
    assert [(kind, text) for kind, text, _ in items] == [
        ("tag", "low quality"),
        ("tag", "mellow piano melody"),
        ("sentence", "This is a low quality recording."),
        ("sentence", "A mellow piano melody plays over soft strings."),
        ("tag", "rock"),
    ]
    assert items[3][2] == {"file": str(path), "line": 2, "sentence": 1}
    assert removed == {"too_short": 1, "empty_caption": 1, "caption_too_long": 1}
    assert read_counts == {"captions": 1, "sentences": 3}
    assert source.dataset_name == "musiccaps"


def test_song_lists_and_their_tags(tmp_path):
    path = tmp_path / "songs.csv"
    path.write_text('title,artist,tags\nSo What,Miles Davis,"jazz; trumpet; cool"\nNo Artist,,\n')
    songs = list(list_songs(SongList(path=str(path), tags_column="tags"), 2**17))
    assert songs[0].facts == {"genre": ("jazz",), "instrument": ("trumpet",), "mood": ("cool",)}
    assert songs[0].names == ("So What", "Miles Davis") and songs[1].artist is None
    with pytest.raises(TableFileError, match="no column 'name'"):
        list(list_songs(SongList(path=str(path), title_column="name"), 2**17))


def test_corpus_songs_are_distinct_and_read_from_the_tag_columns(tmp_path):
    clips = tmp_path / "curated" / "clips"
    clips.mkdir(parents=True)
    rows = [
        {
            "clip_id": f"c{i}",
            "title": "Tide",
            "artist": "Saltmarsh",
            "album": "Sea",
            "genre": "Rock/Pop",
            "date": "1987-02-01",
        }
        for i in range(3)
    ] + [{"clip_id": "d", "title": None, "artist": None, "album": None, "genre": None, "date": None}]
    pq.write_table(pa.Table.from_pylist(rows), clips / "part-000000.parquet")
    (tmp_path / "curated" / "summary.json").write_text("{}")
    songs = list(corpus_songs(str(tmp_path / "curated")))
    assert len(songs) == 1 and songs[0].facts == {"genre": ("Rock", "Pop"), "era": ("1980s",)}
    with pytest.raises(ClipTableError, match="no clip table"):
        list(corpus_songs(str(tmp_path)))


@pytest.mark.parametrize(
    "value,expected", [("Rock; Pop", ["Rock", "Pop"]), ("R&B/Soul", ["R&B", "Soul"]), ("", []), (None, [])]
)
def test_genre_tags_split(value, expected):
    assert split_genres(value) == expected


@pytest.mark.parametrize(
    "value,expected", [("2019", "2010s"), ("1969-07-20", "1960s"), ("n/a", None), (None, None), ("2999", None)]
)
def test_dates_become_decades(value, expected):
    assert era_of(value) == expected


def write_corpus(folder, rows):
    """A finished curate output holding only the tag columns the vocabulary reads."""
    (folder / "clips").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), folder / "clips" / "part-000000.parquet")
    (folder / "summary.json").write_text("{}")
    return str(folder)


def test_evaluation_captions_are_read_whole_and_in_sentences_and_recorded(tmp_path):
    path = tmp_path / "eval.csv"
    path.write_text('caption,id\n"A mellow piano melody plays. Soft strings join it.",a\n,b\n')
    config = VocabConfig(output=str(tmp_path / "out"), cleaning=CleaningConfig(exclude=[CaptionSource(path=str(path))]))
    inputs = {}
    eval_captions = read_exclusions(config, inputs)
    assert len(eval_captions) == 3  # the caption and its two sentences
    assert inputs == {
        str(path): {
            "role": "eval_exclusion",
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "rows": 1,
            "skipped": {"empty_caption": 1},
            "examples": ["line 3: empty_caption"],
        }
    }


def test_songs_are_prompted_once_and_their_genres_become_tags(tmp_path):
    corpus = write_corpus(
        tmp_path / "curated",
        [
            {"title": "Tide", "artist": "Saltmarsh", "album": "Sea", "genre": "Rock/Pop", "date": "1987"},
            {"title": "Tide", "artist": "Saltmarsh", "album": "Sea", "genre": "Rock/Pop", "date": "1987"},
            {"title": "Untitled", "artist": None, "album": None, "genre": "Ambient", "date": None},
        ],
    )
    songs = tmp_path / "songs.csv"
    songs.write_text("title,artist\nTIDE,saltmarsh\nSo What,Miles Davis\n")
    config = VocabConfig(output=str(tmp_path / "out"), corpus=[corpus], songs=[SongList(path=str(songs))])
    tags = TagCollector(VocabularyWriter("tags", "short_form"), config.cleaning)
    inputs = {}
    prompts, counts = song_prompts(config, tags, inputs)
    assert [p.origin for p in prompts] == [f"corpus:{corpus}", f"songs:{songs}"]
    assert counts == {"prompted": 2, "repeated": 1, "without_title_or_artist": 1}
    assert tags.summary()["kept"] == 3  # Rock, Pop, Ambient
    assert inputs[f"corpus:{corpus}"]["songs"] == 2
    assert inputs[str(songs)]["sha256"] == file_sha256(str(songs)) and inputs[str(songs)]["rows"] == 2


def test_rater_sentences_pass_the_rules_and_the_evaluation_exclusion(tmp_path):
    path = tmp_path / "musiccaps.csv"
    path.write_text(
        "caption,aspect_list\n"
        '"A mellow piano melody plays over soft strings. A fast techno beat pounds under a synth.",'
        "\"['techno', 'piano']\"\n"
    )
    excluded = tmp_path / "eval.csv"
    excluded.write_text("caption\nA mellow piano melody plays over soft strings.\n")
    config = VocabConfig(
        output=str(tmp_path / "out"),
        captions=[CaptionSource(path=str(path), tags_column="aspect_list")],
        cleaning=CleaningConfig(exclude=[CaptionSource(path=str(excluded))]),
    )
    inputs = {}
    writer = VocabularyWriter("rater_long", "long_form")
    tags = TagCollector(VocabularyWriter("tags", "short_form"), config.cleaning)
    summary = rater_sentences(config, writer, tags, read_exclusions(config, inputs), inputs)
    assert summary == {"captions": 1, "sentences": 2, "removed": {"eval_overlap": 1}, "kept": 1}
    assert writer.sources == {"rater:musiccaps": 1} and tags.summary()["kept"] == 2
    assert inputs[str(path)]["role"] == "captions" and inputs[str(path)]["rows"] == 1


def test_file_digests_stream_the_whole_file(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(range(256)) * 9000)  # over one read chunk
    assert file_sha256(str(path)) == hashlib.sha256(path.read_bytes()).hexdigest()
