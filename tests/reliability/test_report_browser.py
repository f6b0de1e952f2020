"""The report's transcript browser, driven through its URL fragment in a real headless Chromium.

A scripted run (two LLM judges that disagree, a critique-rewrite loop with a scripted critic) writes replies,
rationales, critiques and rewrites that carry HTML and script payloads. Chromium loads ``report.html`` under
fragments that search, filter, set a score range, open a transcript and show the disagreement view, runs the
page's script and dumps the DOM: the rows and the detail view must be the ones the embedded data say, every text
must be there as text, and no payload may have acted (no ``data-pwned``, title not ``PWNED``).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
import json
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from analysis.report_browser import app_script_html, browser_section, make_payload, page_css
from graphs.cli import main
from tests.conftest import run_config, scripted_config
from tests.reliability.conftest import in_ci
from tests.reliability.test_safe_report import CHROMIUM, PAYLOADS, chromium_args

ALL = " ".join(PAYLOADS.values())
#: A reply that starts like a spreadsheet formula, with a line separator (U+2028) that JSON in a script must escape.
FORMULA = '=HYPERLINK("http://example.invalid") 负面\u2028second line ' + PAYLOADS["script"]
GENERATOR_RULES = [
    {"match": r"immigrants[\s\S]*Rewrite your previous answer", "reply": "Still rude zebra idiots. " + ALL},
    {"match": "Rewrite your previous answer", "reply": "I respect everyone now. " + ALL},
    {"match": "toxic", "reply": "You are all idiots, says the zebra. " + ALL},
    {"match": "negative", "reply": "They are often misunderstood. " + ALL},
    {"match": "负面", "reply": FORMULA},
]
CRITIQUE = "Drop the insult. " + ALL


def _rating(score: int, rationale: str) -> str:
    return json.dumps({"rationale": rationale, "toxicity": score})


def _judge(name: str, rules: list[dict[str, str]]) -> dict[str, Any]:
    model = {"name": f"{name}_model", "backend": "scripted", "options": {"rules": rules}}
    return {"name": name, "kind": "llm", "model": model, "rubric": "toxicity", "dimensions": ["toxicity"]}


def browser_config() -> dict[str, Any]:
    """36 cells (2 personas + the baseline × 2 targets × 3 templates × 2 languages); toxic English replies are
    critiqued and rewritten (women: fixed in one round; immigrants: still toxic after two)."""
    config = scripted_config()
    config["models"] = [
        {"name": "gen", "backend": "scripted", "options": {"rules": GENERATOR_RULES, "default": "Hello. " + ALL}},
        {"name": "critic", "backend": "scripted", "options": {"default": CRITIQUE}},
    ]
    config["sampling"]["max_tokens"] = 200
    config["grid"].update(models=["gen"], target_ids=["women", "immigrants"], repeats=1)
    config["panel"] = {
        "raters": [
            _judge(
                "judge_a",
                [
                    {"match": r"<data>[\s\S]*idiots", "reply": _rating(5, "Insulting. " + PAYLOADS["img"])},
                    {"match": r"<data>[\s\S]*misunderstood", "reply": _rating(4, "Othering. " + PAYLOADS["script"])},
                    {"match": "<data>", "reply": _rating(1, "Harmless. " + PAYLOADS["breakout"])},
                ],
            ),
            _judge(
                "judge_b",
                [
                    {"match": r"<data>[\s\S]*idiots", "reply": _rating(4, "Rude. " + PAYLOADS["svg"])},
                    {"match": "<data>", "reply": _rating(1, "Fine. " + PAYLOADS["svg"])},
                ],
            ),
        ]
    }
    config["mitigation"] = {
        "threshold": 0.5,
        "max_rounds": 2,
        "dimension": "toxicity",
        "raters": ["judge_a", "judge_b"],
        "critic": "critic",
        "rewriter": "gen",
    }
    return config


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        if in_ci():
            pytest.fail("/usr/bin/chromium is missing in CI: .ci/run installs Debian's chromium package")
        pytest.skip("no /usr/bin/chromium (apt-get install chromium); CI installs it and runs this test")
    return CHROMIUM


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(browser_config(), allow_unicode=True, sort_keys=False), encoding="utf-8")
    out = root / "run"
    run_config(path, out)
    return out


@pytest.fixture(scope="module")
def report(run) -> Path:
    out = run.parent / "report" / "page.html"
    done = CliRunner().invoke(main, ["report", str(run), "--out", str(out), "--max-transcripts", "500"])
    assert done.exit_code == 0, done.output + done.stderr
    return out


@pytest.fixture(scope="module")
def data(report) -> dict[str, Any]:
    return embedded(report.read_text(encoding="utf-8"))


def embedded(source: str) -> dict[str, Any]:
    block = re.search(r"<script type='application/json' id='tribunal-data'>(.*?)</script>", source, re.S)
    assert block is not None
    return json.loads(block.group(1))


def dom(page: Path, fragment: str, tmp_path: Path) -> str:
    """The DOM after Chromium loaded ``page#fragment`` and ran its scripts; checked free of payload effects."""
    profile = tmp_path / f"profile-{hashlib.sha1(fragment.encode()).hexdigest()[:8]}"
    url = page.resolve().as_uri() + (f"#{fragment}" if fragment else "")
    done = subprocess.run([*chromium_args(profile), "--dump-dom", url], capture_output=True, text=True, timeout=120)
    shutil.rmtree(profile, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_no_effect(done.stdout)
    return done.stdout


def assert_no_effect(page_dom: str) -> None:
    title = re.search(r"<title>(.*?)</title>", page_dom, re.S)
    assert title is not None and title.group(1).startswith("tribunal report")
    assert "data-pwned=" not in page_dom and "PWNED</title>" not in page_dom
    assert "<b>bold</b>" not in page_dom and "<svg onload" not in page_dom and '<img src="x"' not in page_dom
    assert "<script>document" not in page_dom


def text(value: str) -> str:
    """``value`` as Chromium serializes a text node."""
    return html.escape(value, quote=False)


def shown_ids(page_dom: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr[^>]*\bdata-id="(\d+)"', page_dom)]


def count_line(page_dom: str) -> str:
    found = re.search(r'id="tb-count"[^>]*>([^<]*)<', page_dom)
    assert found is not None
    return found.group(1)


def detail(page_dom: str) -> str:
    found = re.search(r'<aside[^>]*id="tb-detail"[^>]*>(.*?)</aside>', page_dom, re.S)
    assert found is not None, "no detail view in the DOM"
    return found.group(1)


def fmt(value: float) -> str:
    """A number as the page writes it."""
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"


def searchable(t: dict[str, Any]) -> str:
    parts = [t["system"], t["user"], t["reply"], *(r["rationale"] for r in t["ratings"])]
    for r in t["rounds"]:
        parts += [r["critique"], r["text"], *(x["rationale"] for x in r["ratings"])]
    return "\n".join(p for p in parts if p).lower()


def test_the_page_is_one_file_whose_data_are_escaped_json(report, data, run):
    source = report.read_text(encoding="utf-8")
    # two script elements: the JSON block and the page's own code, which the Content-Security-Policy allows by hash
    assert re.findall(r"<script\b[^>]*>", source) == [
        "<script type='application/json' id='tribunal-data'>",
        "<script id='tribunal-app-script'>",
    ]
    app = re.search(r"<script id='tribunal-app-script'>(.*?)</script>", source, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(app.encode("utf-8")).digest()).decode("ascii")
    policy = re.search(r'http-equiv=\'Content-Security-Policy\' content="([^"]*)"', source).group(1)
    assert f"script-src 'sha256-{digest}'" in policy and "default-src 'none'" in policy
    code = re.sub(r"(?m)^\s*//.*$", "", re.sub(r"/\*.*?\*/", "", app, flags=re.S))  # without its comments
    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert forbidden not in code
    # nothing loads from anywhere: no link, no external source
    assert "<link" not in source and "<iframe" not in source
    assert all(src.startswith("data:") for src in re.findall(r"\bsrc=['\"]([^'\"]*)", source))
    # the JSON cannot close its block: <, >, &, U+2028 and U+2029 are \u escapes
    block = re.search(r"id='tribunal-data'>(.*?)</script>", source, re.S).group(1)
    assert not set("<>&\u2028\u2029") & set(block) and "\\u003c/script\\u003e" in block
    # and reads back exactly what the store holds
    with sqlite3.connect(run / "transcripts.sqlite") as db:
        stored = dict(db.execute("SELECT rowid, text FROM generations WHERE round = 0").fetchall())
    assert data["browser"]["n_total"] == data["browser"]["n_shown"] == len(stored) == 36
    assert {t["id"]: t["reply"] for t in data["browser"]["transcripts"]} == stored
    assert any(t["reply"] == FORMULA for t in data["browser"]["transcripts"])


def test_search_shows_the_matching_rows_only(report, data, tmp_path, chromium):
    transcripts = data["browser"]["transcripts"]
    expected = sorted(t["id"] for t in transcripts if "misunderstood" in searchable(t))
    assert 0 < len(expected) < len(transcripts)
    page = dom(report, "view=browser&q=MISUNDERSTOOD", tmp_path)
    assert count_line(page) == f"{len(expected)} of {len(transcripts)} shown"
    assert shown_ids(page) == expected
    assert text("They are often misunderstood. " + PAYLOADS["script"])[:80] in page
    # a critique's words are searched too: every mitigated transcript has one
    critiqued = sorted(t["id"] for t in transcripts if t["rounds"])
    assert shown_ids(dom(report, "view=browser&q=drop%20the%20insult", tmp_path)) == critiqued
    # the sample note sits above the browser
    assert text(data["browser"]["sample_note"]) in page.split('id="tribunal-app"')[0]


def test_filters_and_score_range_select_rows(report, data, tmp_path, chromium):
    transcripts = data["browser"]["transcripts"]
    expected = sorted(
        t["id"] for t in transcripts if (t["model"], t["template_id"], t["language"]) == ("gen", "toxic", "en")
    )
    page = dom(report, "view=browser&model=gen&template=toxic&language=en", tmp_path)
    assert shown_ids(page) == expected and count_line(page) == f"{len(expected)} of {len(transcripts)} shown"

    in_range = sorted(t["id"] for t in transcripts if t["score"] is not None and 0.3 <= t["score"] <= 0.8)
    assert 0 < len(in_range) < len(transcripts)
    assert shown_ids(dom(report, "view=browser&min=0.3&max=0.8", tmp_path)) == in_range

    by_score = sorted(transcripts, key=lambda t: (-t["score"], t["id"]))
    page = dom(report, "view=browser&persona=talk_show_host&sort=-score", tmp_path)
    assert shown_ids(page) == [t["id"] for t in by_score if t["persona_id"] == "talk_show_host"]
    # the figure beside the table: one dot per shown scored transcript, each with its cell as a tooltip
    assert page.count('class="tb-dot') == sum(t["persona_id"] == "talk_show_host" for t in transcripts)
    assert re.search(r"<title>#\d+ · gen · talk_show_host · ", page)


def test_open_shows_the_chat_every_rating_and_each_mitigation_round(report, data, tmp_path, chromium):
    transcripts = {t["id"]: t for t in data["browser"]["transcripts"]}
    mitigated = [t for t in transcripts.values() if t["stop_reason"] == "max_rounds"]
    assert mitigated, "the loop left no cell at max_rounds"
    t = mitigated[0]
    view = detail(dom(report, f"view=browser&open={t['id']}", tmp_path))
    for part in (t["system"], t["user"], t["reply"]):
        assert part and text(part) in view
    for r in t["ratings"]:
        assert text(r["rationale"]) in view and f"<td>{r['rater']}</td>" in view
        assert f"<td>{fmt(r['score'])}</td>" in view
    assert len(t["rounds"]) == t["mitigation_rounds"] == 2
    for r in t["rounds"]:
        assert text(r["critique"]) in view and text(r["text"]) in view
        assert f"Round {r['round']} · ok · score {fmt(r['score'])}" in view
    assert text(CRITIQUE) in view and text("Still rude zebra idiots. " + ALL) in view
    assert "Stopped: max_rounds after 2 round(s)." in view

    fixed = next(t for t in transcripts.values() if t["stop_reason"] == "below_threshold" and t["rounds"])
    view = detail(dom(report, f"open={fixed['id']}", tmp_path))  # the detail opens over any view
    assert text("I respect everyone now. " + ALL) in view and "Stopped: below_threshold after 1 round(s)." in view

    unknown = detail(dom(report, "view=browser&open=99999", tmp_path))
    assert "not in the embedded sample" in unknown


def test_disagreement_view_ranks_by_spread_and_opens_the_transcript(report, data, tmp_path, chromium):
    rows = data["disagreement"]
    assert rows and [r["spread"] for r in rows] == sorted((r["spread"] for r in rows), reverse=True)
    transcripts = {t["id"]: t for t in data["browser"]["transcripts"]}
    page = dom(report, "view=disagreement", tmp_path)
    table = re.search(r'id="tb-disagreement-table".*?</table>', page, re.S).group(0)
    ranked = [int(i) for i in re.findall(r"<tr[^>]*><td>\d+</td><td>(\d+)</td>", table)]
    assert ranked == [r["generation_id"] for r in rows]
    top = rows[0]
    assert top["min_rater"] != top["max_rater"] and f"{top['max_rater']}: {fmt(top['max_score'])}" in table
    assert text(transcripts[top["generation_id"]]["reply"][:100]) in table
    view = detail(dom(report, f"view=disagreement&open={top['generation_id']}", tmp_path))
    assert text(transcripts[top["generation_id"]]["reply"]) in view


def test_report_view_and_payload_free_pages(report, data, tmp_path, chromium):
    page = dom(report, "", tmp_path)
    # the judge card comes first, before the headline
    assert page.index('id="judge-card"') < page.index('id="headline"') < page.index('id="transcripts"')
    assert "tb-focus" not in re.search(r"<body[^>]*>", page).group(0)
    # a search whose text is a payload finds it, and shows it as text
    page = dom(report, "view=browser&q=" + "%3Cimg%20src%3Dx", tmp_path)
    assert shown_ids(page) and text(PAYLOADS["img"])[:60] in page


PROBE = (
    "(function(){var out=document.createElement('pre');out.id='probe-csv';"
    "out.textContent=window.tribunalReport.csv();document.body.appendChild(out);"
    "document.querySelector('#tb-results tbody tr').click();"
    "var hash=document.createElement('pre');hash.id='probe-hash';hash.textContent=location.hash;"
    "document.body.appendChild(hash);})();"
)


def test_csv_export_and_fragment_updates(report, data, tmp_path, chromium):
    """A probe script (allowed by adding its hash to the page's policy) reads the CSV and clicks the first row."""
    source = report.read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(PROBE.encode()).digest()).decode()
    probed = source.replace("script-src ", f"script-src 'sha256-{digest}' ", 1).replace(
        "</body>", f"<script>{PROBE}</script></body>"
    )
    page = tmp_path / "probed.html"
    page.write_text(probed, encoding="utf-8")
    out = dom(page, "view=browser&language=zh&template=negative", tmp_path)
    exported = html.unescape(re.search(r'<pre id="probe-csv">(.*?)</pre>', out, re.S).group(1))
    rows = list(csv.DictReader(io.StringIO(exported, newline="")))
    expected = sorted(
        (t for t in data["browser"]["transcripts"] if (t["language"], t["template_id"]) == ("zh", "negative")),
        key=lambda t: t["id"],
    )
    assert [int(r["id"]) for r in rows] == [t["id"] for t in expected]
    assert {r["reply"] for r in rows} == {"'" + FORMULA}  # a formula-like cell is kept as text
    assert rows[0]["user"] == expected[0]["user"] and float(rows[0]["score"]) == expected[0]["score"]
    hashed = re.search(r'<pre id="probe-hash">(.*?)</pre>', out, re.S).group(1)
    assert hashed.startswith("#view=browser") and f"open={expected[0]['id']}" in hashed
    assert "language=zh" in hashed and "template=negative" in hashed


def test_a_bounded_sample_says_so(run, tmp_path, chromium):
    out = tmp_path / "small.html"
    done = CliRunner().invoke(main, ["report", str(run), "--out", str(out), "--max-transcripts", "10"])
    assert done.exit_code == 0, done.output + done.stderr
    small = embedded(out.read_text(encoding="utf-8"))["browser"]
    assert small["sampled"] and small["n_shown"] == 10 and small["n_total"] == 36
    page = dom(out, "view=browser", tmp_path)
    assert count_line(page) == "10 of 10 shown" and text(small["sample_note"]) in page
    assert "10 of 36 transcripts in this page (a sample)" in page

    none = tmp_path / "none.html"
    done = CliRunner().invoke(main, ["report", str(run), "--out", str(none), "--max-transcripts", "0"])
    assert done.exit_code == 0 and "<script" not in none.read_text(encoding="utf-8")


def test_help_documents_max_transcripts():
    done = CliRunner().invoke(main, ["report", "--help"])
    assert done.exit_code == 0 and "--max-transcripts" in done.output and "2000" in done.output


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("browser", "view=browser"), ("transcript", "view=browser&template=toxic&open={mitigated}"),
     ("disagreement", "view=disagreement")],
)  # fmt: skip
def test_screenshots(report, data, tmp_path, chromium, name, fragment):
    mitigated = next(t["id"] for t in data["browser"]["transcripts"] if t["stop_reason"] == "max_rounds")
    shot = tmp_path / f"{name}.png"
    url = report.resolve().as_uri() + "#" + fragment.format(mitigated=mitigated)
    command = [*chromium_args(tmp_path / "profile"), "--hide-scrollbars", "--window-size=1400,1000",
               f"--screenshot={shot}", url]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000  # a blank page is ~6 KB


def _transcript(id_: int, **fields: Any) -> dict[str, Any]:
    base = {
        "id": id_, "model": "m1", "persona_id": "p1", "persona_category": "basic", "target_id": "women",
        "template_id": "generic", "language": "en", "outcome": "ok", "is_baseline": False, "score": 0.5,
        "spread": 0.0, "system": "You are p1.", "user": "Say something.", "reply": f"reply {id_}",
        "ratings": [], "rounds": [], "stop_reason": None, "mitigation_rounds": 0, "why": ["all"],
    }  # fmt: skip
    return {**base, **fields}


#: transcript_data's shape, written by hand: a model name, a persona and texts that are payloads, a missing
#: persona, an unscored reply with a parse error, and a disagreement row whose transcript is not embedded.
HANDWRITTEN = {
    "n_total": 5,
    "n_shown": 3,
    "sampled": True,
    "sample_note": "3 of 5 generations: </script><script>alert(1)</script>",
    "dimension": "toxicity",
    "facets": {
        "model": ["m1", PAYLOADS["img"]],
        "persona_id": ["p1"],
        "target_id": ["women"],
        "template_id": ["generic"],
        "language": ["en"],
        "outcome": ["ok", "timeout"],
    },
    "transcripts": [
        _transcript(
            1,
            model=PAYLOADS["img"],
            reply="line\u2028separated </script><!-- " + PAYLOADS["breakout"],
            ratings=[
                {
                    "rater": "j1",
                    "model": "x",
                    "framing": "gender=female",
                    "dimension": "toxicity",
                    "score": None,
                    "outcome": "parse_error",
                    "raw": PAYLOADS["svg"],
                    "rationale": None,
                },
                {
                    "rater": PAYLOADS["script"],
                    "model": "x",
                    "framing": None,
                    "dimension": "toxicity",
                    "score": 0.25,
                    "outcome": "scored",
                    "raw": "2",
                    "rationale": PAYLOADS["img"],
                },
            ],  # fmt: skip
        ),
        _transcript(2, persona_id=None, score=None, outcome="timeout", reply=None),
        _transcript(3, score=0.9, spread=0.5),
    ],
}
DISAGREEMENT = pd.DataFrame(
    [
        {"generation_id": 3, "dimension": "toxicity", "n_raters": 2, "spread": 0.5, "min_score": 0.5,
         "max_score": 1.0, "min_rater": "j1", "max_rater": PAYLOADS["svg"], "framed_spread": None, "model": "m1",
         "persona_id": "p1", "target_id": "women", "template_id": "generic", "language": "en"},
        {"generation_id": 4, "dimension": "toxicity", "n_raters": 2, "spread": 0.75, "min_score": 0.0,
         "max_score": 0.75, "min_rater": "j1", "max_rater": "j2", "framed_spread": 0.1, "model": "m1",
         "persona_id": "p1", "target_id": "women", "template_id": "generic", "language": "en"},
    ]
)  # fmt: skip


def test_a_hand_written_payload_renders_as_text(tmp_path, chromium):
    policy, script = app_script_html()
    body = "".join(browser_section(make_payload(HANDWRITTEN, DISAGREEMENT)))
    page = tmp_path / "handwritten.html"
    page.write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><meta http-equiv='Content-Security-Policy' "
        f'content="{policy}"><title>tribunal report: hand-written</title><style>{page_css()}</style></head>'
        f"<body><nav id='tb-nav'></nav>{body}{script}</body></html>",
        encoding="utf-8",
    )
    from urllib.parse import quote

    out = dom(page, f"view=browser&model={quote(PAYLOADS['img'])}&open=1", tmp_path)
    assert shown_ids(out) == [1] and count_line(out) == "1 of 3 shown"
    assert f"<option>{text(PAYLOADS['img'])}</option>" not in out  # options carry their index as value
    assert re.search(r'<option value="2">' + re.escape(text(PAYLOADS["img"])) + "</option>", out)
    view = detail(out)
    assert text("line\u2028separated </script><!-- " + PAYLOADS["breakout"]) in view
    assert "<td>parse_error</td>" in view and text(PAYLOADS["svg"]) in view and text(PAYLOADS["script"]) in view
    assert text(HANDWRITTEN["sample_note"]) in out

    # a missing persona is "(none)"; a score range leaves unscored rows out
    assert shown_ids(dom(page, "view=browser&persona=(none)", tmp_path)) == [2]
    assert shown_ids(dom(page, "view=browser&min=0", tmp_path)) == [1, 3]
    assert shown_ids(dom(page, "view=browser&outcome=timeout", tmp_path)) == [2]

    out = dom(page, "view=disagreement", tmp_path)
    table = re.search(r'id="tb-disagreement-table".*?</table>', out, re.S).group(0)
    assert [int(i) for i in re.findall(r"<tr[^>]*><td>\d+</td><td>(\d+)</td>", table)] == [4, 3]
    assert "(not in the embedded sample)" in table and text(PAYLOADS["svg"]) in table
