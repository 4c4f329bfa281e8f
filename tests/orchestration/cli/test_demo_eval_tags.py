"""The demo's eval stage measures tag distributions over the demo corpus's own aspect tags."""

from orchestration.cli.run import _write_demo_tags


def test_demo_eval_tags_are_the_rater_captions_aspect_tags(tmp_path):
    rows = "ytid,caption,aspect_list\na,one,\"['ambient', 'slow tempo']\"\nb,two,\"['techno', 'ambient']\"\n"
    (tmp_path / "captions.csv").write_text(rows)
    path = _write_demo_tags(tmp_path / "captions.csv", tmp_path / "eval_tags.txt")
    assert path.read_text().splitlines() == ["ambient", "slow tempo", "techno"]
