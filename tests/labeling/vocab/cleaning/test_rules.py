import pytest

from labeling.vocab.cleaning.corpus_rules import DUPLICATE, EVAL_OVERLAP, NEAR_DUPLICATE, Deduplicator, EvalCaptions
from labeling.vocab.cleaning.near_duplicates import NearDuplicateIndex, content_words, jaccard, overlap_words
from labeling.vocab.cleaning.rules import (
    NAMES_SONG,
    NOT_ABOUT_MUSIC,
    NOT_PROSE,
    TOO_LONG,
    TOO_SHORT,
    SentenceRules,
    name_variants,
)
from labeling.vocab.cleaning.sentences import split_sentences
from labeling.vocab.config import CleaningConfig
from labeling.vocab.table import caption_id

CHATTY_ANSWER = """Sure! Here are five sentences describing the song:

1. **Instrumentation:** The track opens with a warm Rhodes piano, e.g. in the style of Mr. James.
2. "A laid-back groove at 90 bpm carries the tune." The drums are brushed.
- *Soft tape hiss* adds warmth, with 1.5 seconds of reverb tail.
### Production
* [Vinyl crackle](http://example.com) sits under the mix.
```
I hope this helps! Let me know if you want more.
"""


def test_a_chatty_answer_becomes_plain_sentences():
    split = split_sentences(CHATTY_ANSWER)
    assert split.sentences == [
        "The track opens with a warm Rhodes piano, e.g. in the style of Mr. James.",
        "A laid-back groove at 90 bpm carries the tune.",
        "The drums are brushed.",
        "Soft tape hiss adds warmth, with 1.5 seconds of reverb tail.",
        "Vinyl crackle sits under the mix.",
    ]
    assert split.preambles == 5  # Sure!, Here are..., the heading, I hope..., Let me know...


@pytest.mark.parametrize(
    "answer,expected",
    [
        (
            "Here are three sentences: A calm piano piece.",
            ["A calm piano piece."],
        ),  # the lead-in goes, the sentence stays
        ("Here is a fast techno track with a pounding kick.", ["Here is a fast techno track with a pounding kick."]),
        ("Sure! Here are some notes: a mellow piano melody.", ["A mellow piano melody."]),
        ("Of course! Below are five descriptions of the song. A calm piano piece.", ["A calm piano piece."]),
        (
            "Okay so the guitar, the drums and the organ all start together on the downbeat.",
            ["Okay so the guitar, the drums and the organ all start together on the downbeat."],
        ),
        ("1) Slow strings.\n2) Fast drums.\n(3) Loud horns.", ["Slow strings.", "Fast drums.", "Loud horns."]),
        ("“A dreamy synth pad floats above.”", ["A dreamy synth pad floats above."]),
        ("Mood: calm and warm.", ["Calm and warm."]),
        ("At 12:30 the choir enters.", ["At 12:30 the choir enters."]),
        (
            "J. S. Bach would have liked the fugue. It ends softly!",
            ["J. S. Bach would have liked the fugue.", "It ends softly!"],
        ),
        ("", []),
    ],
)
def test_splitting_keeps_content_and_strips_decoration(answer, expected):
    assert split_sentences(answer).sentences == expected


RULES = SentenceRules(CleaningConfig())


@pytest.mark.parametrize(
    "sentence,names,expected",
    [
        # kept
        ("A warm Rhodes piano plays over brushed drums.", (), None),
        ("The mix is dry, with a punchy kick drum.", (), None),
        ("Soft female vocals float over an ambient pad.", ("Golden Garden", "Saltmarsh"), None),
        ("A single guitar plays a slow melody.", (), None),  # "single" alone is no release fact
        (
            "An upbeat jazz tune with a walking bass line.",
            ("Jazz", "Duke"),
            None,
        ),  # a title that is a music word is not searched
        # dropped
        ("Great!", (), TOO_SHORT),
        ("Piano.", (), TOO_SHORT),
        ("A " + "very " * 45 + "slow piano piece.", (), TOO_LONG),
        ("See https://example.com for the piano part.", (), NOT_PROSE),
        ("### 1234 5678 ---- ????", (), NOT_PROSE),
        ("Golden Garden opens with a soft piano.", ("Golden Garden", "Saltmarsh"), NAMES_SONG),
        ("Saltmarsh layers warm synth pads here.", ("Golden Garden", "Saltmarsh"), NAMES_SONG),
        ("Lea Moreau sings over a nylon-string guitar.", ("Tide", "Léa Moreau"), NAMES_SONG),  # accents folded
        (
            "Winter Postcard 2.0 drifts along on soft strings.",
            ("Winter Postcard 2.0 (Clean)", "X"),
            NAMES_SONG,
        ),  # release suffix dropped
        ("As an AI, I cannot hear the piano in this song.", (), "non_descriptive:about_the_assistant"),
        ("You might enjoy the guitar solo in this track.", (), "non_descriptive:talks_to_reader"),
        ("Does the drum groove make you want to dance?", (), "non_descriptive:talks_to_reader"),
        ("The song was released as the lead single in 1985.", (), "non_descriptive:release_facts"),
        ("It reached number one on the Billboard charts with its piano hook.", (), "non_descriptive:release_facts"),
        ("The lyrics tell of a lost love over acoustic guitar.", (), "non_descriptive:lyrics_and_credits"),
        ("The band was formed in Leeds and is best known for guitar rock.", (), "non_descriptive:biography"),
        ("It reminds me of a long summer afternoon in the park.", (), NOT_ABOUT_MUSIC),
    ],
)
def test_each_rule_keeps_and_drops(sentence, names, expected):
    assert RULES.check(sentence, names) == expected


def test_rules_are_configurable():
    relaxed = SentenceRules(
        CleaningConfig(min_words=1, require_music_word=False, drop_song_names=False, non_descriptive={})
    )
    assert relaxed.check("Great!") is None
    assert relaxed.check("Golden Garden was released in 1999.", ("Golden Garden",)) is None
    custom = SentenceRules(CleaningConfig(non_descriptive={"no_covers": r"\bcover\b"}))
    assert custom.check("A cover of a folk song on solo guitar.") == "non_descriptive:no_covers"


def test_a_broken_rule_is_a_config_error():
    with pytest.raises(ValueError, match="rule 'bad': not a valid regular expression"):
        CleaningConfig(non_descriptive={"bad": "(unclosed"})


def test_release_suffixes_are_name_variants():
    assert name_variants("Tide (Remastered 2011)") == ["Tide (Remastered 2011)", "Tide"]
    assert name_variants("Harbor - Live at Home") == ["Harbor - Live at Home", "Harbor"]
    assert name_variants("Plain") == ["Plain"]


@pytest.mark.parametrize(
    "a,b,near",
    [
        ("A calm piano piece with soft strings.", "a calm piano piece with soft strings!", True),
        ("A calm piano piece with soft strings.", "A calm piano piece with soft strings and pads.", True),
        ("A calm piano piece with soft strings.", "A calm piano piece with the soft string.", True),
        ("A calm piano piece with soft strings.", "A calm organ piece with loud brass.", False),
        (
            "Fast techno with a pounding kick drum.",
            "Slow techno with a pounding kick drum.",
            False,
        ),  # one word, other meaning
        ("Fast techno with a pounding kick drum.", "A calm piano piece with soft strings.", False),
    ],
)
def test_near_duplicates_are_found_by_verified_jaccard(a, b, near):
    index = NearDuplicateIndex(threshold=0.8, num_perm=64)
    assert index.find_or_add("a", a) is None
    assert (index.find(b) == "a") == near
    assert (jaccard(content_words(a), content_words(b)) >= 0.8) == near


def test_the_deduplicator_counts_exact_eval_and_near_in_that_order():
    config = CleaningConfig()
    eval_captions = EvalCaptions(config)
    eval_captions.add(["A mellow jazz trio with upright bass and brushed snare drums."])
    dedup = Deduplicator(config, eval_captions)
    assert dedup.check("A warm Rhodes piano plays over brushed drums.") is None
    assert dedup.check("a warm rhodes piano plays over brushed drums") == DUPLICATE
    assert dedup.check("A warm Rhodes piano plays over brushed drums!!") == DUPLICATE
    assert dedup.check("A warm Rhodes piano plays over the brushed drums.") == NEAR_DUPLICATE
    assert dedup.check("A mellow jazz trio with upright bass and brushed snare drums.") == EVAL_OVERLAP
    assert dedup.check("A mellow jazz trio with an upright bass and brushed snare drums.") == EVAL_OVERLAP
    assert dedup.check("Fast techno with a pounding kick drum.") is None


def test_exact_deduplication_only_when_near_duplicates_are_off():
    dedup = Deduplicator(CleaningConfig(near_duplicate_threshold=None))
    assert dedup.check("A warm Rhodes piano plays over brushed drums.") is None
    assert dedup.check("A warm Rhodes piano plays over the brushed drums.") is None


EVALUATION = (
    "This is a low-quality recording of a live rock song with male vocals and a loud electric guitar. "
    "The drummer is playing a fast beat while the crowd cheers."
)


@pytest.mark.parametrize(
    "text",
    [
        # hyphen, an added article, a plural made singular: content-word Jaccard 0.82 before normalizing
        "This is a low quality recording of a live rock song with a male vocal and a loud electric guitar.",
        "A low-quality recording of a live rock song with male vocals and loud electric guitars.",
        "The drummer plays a fast beat while the crowd is cheering.",
        "The drummers are playing fast beats while the crowds cheer.",
        "this is a low quality recording of a live rock song with male vocals and a loud electric guitar",
        "Low-quality live rock recording: male vocal, loud electric guitar.",
    ],
)
def test_paraphrases_of_an_evaluation_caption_are_caught(text):
    eval_captions = EvalCaptions(CleaningConfig())
    eval_captions.add([EVALUATION, *split_sentences(EVALUATION).sentences])
    assert eval_captions.overlaps(text, caption_id(text))


@pytest.mark.parametrize(
    "text",
    [
        "This is a high-quality studio recording of a rock song with female vocals and an acoustic guitar.",
        "The drummer is playing a slow beat while the crowd is silent.",
        "A live rock song without vocals, with a loud electric guitar and a fast drum beat.",
        "A quiet jazz trio plays a slow ballad with brushed drums.",
        "The recording is of low quality.",
    ],
)
def test_captions_that_only_share_words_with_an_evaluation_caption_are_kept(text):
    eval_captions = EvalCaptions(CleaningConfig())
    eval_captions.add([EVALUATION, *split_sentences(EVALUATION).sentences])
    assert not eval_captions.overlaps(text, caption_id(text))


def test_overlap_words_fold_hyphens_inflections_and_keep_negations():
    assert overlap_words("A low-quality recording") == overlap_words("the low quality recordings")
    assert overlap_words("drummers playing strummed guitars") == overlap_words("drummer plays strumming guitar")
    assert overlap_words("a song with drums") != overlap_words("a song without drums")
    assert overlap_words("melodies") == {"melody"} and overlap_words("string") == {"string"}
