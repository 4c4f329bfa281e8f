"""The explorer page `publish` writes (explore/index.html, Opus excerpts), `soundry view`'s server,
and the page in a real browser (headless Chromium: players load and play, filters and search
change the rows, a screenshot kept under build/test-artifacts/)."""

from __future__ import annotations

import html.parser
import io
import json
import shutil
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest
import soundfile

from shards.explorer.choose import choose_clips, top_label
from shards.explorer.serve import NoExplorer, make_server

ARTIFACTS = Path(__file__).parents[2] / "build" / "test-artifacts"


class Rows(html.parser.HTMLParser):
    """The clip table's rows (their data attributes) and the page's audio sources."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self.audio: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "tr" and "data-split" in attributes:
            self.rows.append(attributes)
        if tag == "audio":
            self.audio.append(attributes["src"])


def parse(page: Path) -> Rows:
    rows = Rows()
    rows.feed(page.read_text())
    return rows


def test_publish_writes_a_page_with_a_player_per_clip(labeled_version, curated):
    version, manifest, _ = labeled_version
    page = Path(version, "explore", "index.html")
    rows = parse(page)
    assert len(rows.rows) == len(curated.rows) == manifest["totals"]["clips"]  # fewer than the 500 bound
    assert {row["data-split"] for row in rows.rows} == set(manifest["splits"])
    for src in rows.audio:
        info = soundfile.info(io.BytesIO(Path(version, "explore", src).read_bytes()))
        assert info.format == "OGG" and info.subtype == "OPUS" and 0.9 < info.duration <= 1.1
    text = page.read_text()
    assert all(f'src="../card/{name}.png"' in text for name in ("durations", "loudness", "top_labels"))
    assert "Left out of this version" in text and Path(version, "explore", "explorer.js").exists()


def test_the_sample_is_bounded_seeded_and_covers_every_group(labeled_version):
    version, manifest, _ = labeled_version
    chosen = choose_clips(version, manifest, limit=6, seed=0)
    assert len(chosen) == 6
    assert [c["key"] for c in chosen] == [c["key"] for c in choose_clips(version, manifest, limit=6, seed=0)]
    assert [c["key"] for c in chosen] != [c["key"] for c in choose_clips(version, manifest, limit=6, seed=1)]
    everything = choose_clips(version, manifest, limit=1000, seed=0)
    groups = {(c["split"], top_label(c)) for c in everything}
    # Taken in turns: with as many slots as groups, every group has its clip.
    assert {(c["split"], top_label(c)) for c in choose_clips(version, manifest, len(groups), 0)} == groups


def test_each_group_contributes_its_first_clips_in_seeded_order(labeled_version):
    import hashlib

    import pyarrow.parquet as pq

    version, manifest, _ = labeled_version
    rows = [r for s in manifest["shards"] for r in pq.read_table(Path(version, s["sidecar"])).to_pylist()]
    groups: dict = {}
    for row in sorted(rows, key=lambda r: hashlib.sha256(f"7:{r['key']}".encode()).digest()):
        groups.setdefault((row["split"], top_label(row)), []).append(row["key"])
    order = [keys for _, keys in sorted(groups.items())]
    assert max(len(keys) for keys in order) >= 3  # some groups are cut by the smaller limits
    for limit in (1, 2, 3, 5, len(rows)):
        expected = [keys[turn] for turn in range(len(rows)) for keys in order if turn < len(keys)][:limit]
        assert [c["key"] for c in choose_clips(version, manifest, limit=limit, seed=7)] == expected


def test_rejects_by_reason_with_examples_and_the_kept_copy_of_a_duplicate(labeled_version, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curation.clip import REJECT_SCHEMA
    from shards.explorer.page import render_page
    from shards.explorer.write import curation_rejects

    version, manifest, _ = labeled_version
    clips = choose_clips(version, manifest, limit=100, seed=0)
    kept = clips[0]["key"]
    rows = [
        {"source_uri": f"/c/quiet {i}.wav", "step": "filter", "reason": "too_quiet", "detail": f"quiet {i}"}
        for i in range(5)
    ] + [{"source_uri": "/c/copy.wav", "step": "dedup", "reason": "duplicate", "detail": "same", "duplicate_of": kept}]
    (tmp_path / "rejects").mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=REJECT_SCHEMA), tmp_path / "rejects" / "part-000000.parquet")
    rejects = curation_rejects(str(tmp_path))
    assert rejects["counts"] == {("filter", "too_quiet"): 5, ("dedup", "duplicate"): 1}
    assert len(rejects["examples"]) == 4  # up to 3 per reason
    stats = json.loads(Path(version, "stats.json").read_text())
    page = render_page(manifest, stats, clips, {}, [], rejects)
    assert f'<a href="#clip-{kept}">the kept copy</a>' in page and f'<tr id="clip-{kept}"' in page
    assert "quiet 3" not in page and "quiet 2" in page


def test_view_serves_the_explorer_and_nothing_else(labeled_version, tmp_path):
    version, _, _ = labeled_version
    server = make_server(version)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with urllib.request.urlopen(f"{base}/") as response:  # redirected to the page
            assert b'id="clip-table"' in response.read()
        src = parse(Path(version, "explore", "index.html")).audio[0]
        with urllib.request.urlopen(f"{base}/explore/{src}") as response:
            assert response.headers["Content-Type"] == "audio/ogg"
            assert response.headers["Accept-Ranges"] == "bytes"
            whole = response.read()
        # A player seeks with ranges: the bytes asked for, 206, and the whole length named.
        for asked, part in (("bytes=10-19", whole[10:20]), ("bytes=-16", whole[-16:]), ("bytes=5-", whole[5:])):
            request = urllib.request.Request(f"{base}/explore/{src}", headers={"Range": asked})
            with urllib.request.urlopen(request) as response:
                assert response.status == 206 and response.read() == part
                assert response.headers["Content-Range"].endswith(f"/{len(whole)}")
        request = urllib.request.Request(f"{base}/explore/{src}", headers={"Range": f"bytes={len(whole)}-"})
        with pytest.raises(urllib.error.HTTPError, match="416"):
            urllib.request.urlopen(request)
        for private in ("/manifest.json", "/shards/", "/explore/../manifest.json"):
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(base + private)
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(NoExplorer, match="no explore/index.html"):
        make_server(str(tmp_path))


CHECK_PAGE = """<!doctype html><meta charset="utf-8"><iframe id="f" src="index.html" width="1200" height="800"></iframe>
<script>
const post = (result) => fetch("/result", {method: "POST", body: JSON.stringify(result)});
document.getElementById("f").addEventListener("load", async () => {
  const doc = document.getElementById("f").contentDocument;
  const visible = () => [...doc.querySelectorAll("#clip-table tbody tr")].filter((r) => !r.hidden).length;
  const result = {rows: visible(), filtersShown: !doc.getElementById("filters").hidden, audio: []};
  for (const audio of [...doc.querySelectorAll("audio")].slice(0, 3)) {
    audio.preload = "auto";
    audio.load();
    // Poll the element's own state rather than wait for one event: Chromium may report an Ogg
    // stream's duration as Infinity until it has read the last page (this server, like
    // `soundry view`'s, answers no Range requests), and a busy machine takes its time.
    const start = Date.now();
    while ((audio.readyState < 1 || !isFinite(audio.duration)) && !audio.error && Date.now() - start < 30000) {
      await new Promise((done) => setTimeout(done, 100));
    }
    let played = false;
    try { await audio.play(); played = true; audio.pause(); } catch (e) { played = String(e); }
    result.audio.push({duration: isFinite(audio.duration) ? audio.duration : String(audio.duration),
                       error: audio.error && audio.error.code, played,
                       readyState: audio.readyState, networkState: audio.networkState});
  }
  const form = doc.getElementById("filters");
  const pick = (name, value) => { form.elements[name].value = value; form.dispatchEvent(new Event("input")); };
  pick("split", form.elements.split.options[1].value); result.afterSplit = visible(); pick("split", "");
  pick("q", "zzz-no-such-prompt"); result.afterNoMatch = visible();
  pick("q", QUERY); result.afterSearch = visible(); pick("q", "");
  doc.querySelector("th[data-sort] button").click();
  result.sorted = doc.querySelector("th[data-sort]").getAttribute("aria-sort");
  post(result);
});
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not found:
        pytest.skip("no Chromium found (apt-get install chromium; .ci/run installs it)")
    return found


@pytest.mark.slow
def test_the_page_in_headless_chromium(labeled_version, tmp_path):
    browser = chromium()
    version, manifest, _ = labeled_version
    site = tmp_path / "site"
    shutil.copytree(version, site, ignore=shutil.ignore_patterns("shards"))
    # A word of some prompts only: the test labels' long-form sentences name one genre each.
    (site / "explore" / "check.html").write_text(CHECK_PAGE.replace("QUERY", json.dumps("jazz")))
    results: list[dict] = []

    import http.server

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(site), **kwargs)

        def do_POST(self):  # noqa: N802
            results.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/explore"
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"]
    try:
        run = subprocess.Popen(
            [*flags, f"--user-data-dir={tmp_path / 'profile'}", f"{base}/check.html"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(1200):
                if results or run.poll() is not None:
                    break
                threading.Event().wait(0.1)
        finally:
            run.kill()
            run.wait()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "explorer.png"
        subprocess.run(
            [
                *flags,
                f"--user-data-dir={tmp_path / 'profile2'}",
                f"--screenshot={shot}",
                "--window-size=1400,1000",
                f"{base}/index.html",
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert results, "the check page never reported"
    result = results[0]
    total = manifest["totals"]["clips"]
    assert result["rows"] == total and result["filtersShown"]
    assert len(result["audio"]) == 3
    for audio in result["audio"]:
        assert audio["error"] is None and audio["played"] is True, audio
        assert isinstance(audio["duration"], (int, float)) and 0.9 < audio["duration"] <= 1.1, audio
    assert 0 < result["afterSplit"] < total
    assert result["afterNoMatch"] == 0 and 0 < result["afterSearch"] < total
    assert result["sorted"] == "descending"
    assert shot.stat().st_size > 10_000
