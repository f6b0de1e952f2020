"""The report's transcript browser: a bounded sample of the run's transcripts, searchable and filterable offline,
with the generations the raters disagree on most and a score figure that opens them.

:func:`browser_section` writes the HTML of the section: the sample note, an empty ``<div id="tribunal-app">``, the
data as JSON in ``<script type="application/json" id="tribunal-data">`` (:func:`script_json`) and the page's
script (``analysis/report_assets/report.js``, inlined). The data are :func:`browser_payload`'s: the transcripts of
:func:`analysis.transcripts.transcript_data` (at most ``max_transcripts`` of them, a sample whose note says how it
was drawn; the tables cover every generation) and the rows of :func:`analysis.transcripts.disagreement_table`.

**Escaping.** Every model, rater and configuration text is untrusted. In the JSON block ``<``, ``>``, ``&``,
U+2028 and U+2029 are written as ``\\u003c`` and so on, so no text can close the block (``</script>``) or open
markup; the script builds every node with ``createElement``/``createElementNS`` and ``textContent``, never
``innerHTML``, ``insertAdjacentHTML``, ``document.write`` or an attribute string made from data (menu options
carry their index). Defence in depth: the page's Content-Security-Policy (:func:`content_security_policy`) runs
only the script whose SHA-256 it names, allows no inline event handler, and loads nothing from the network
(``default-src 'none'``; images only as ``data:`` URIs), so even a text that did become markup could not act.

**Figures.** The standard and headline figures stay the base64 PNGs of :mod:`analysis.figures` and
:mod:`analysis.studies` (each with its table beside it). The browser adds one figure drawn by the page itself as
inline SVG: each shown transcript's score as a dot, grouped by a menu's factor (template by default), each
group's mean as a bar, its table of n, mean, min and max beside it. It was chosen over SVG from matplotlib
because it follows the filters, its dots carry their cell as a ``<title>`` tooltip and open their transcript on
a click, it zooms without blur, and it needs no network and no library.

**State in the URL fragment**, applied on load and on ``hashchange``, rewritten (``history.replaceState``) when
the reader filters, pages, sorts or opens a transcript, so that a note can link to the transcripts it is about
and a headless browser can drive the page without an automation library:

=============  ==================================================================================
``view``       ``browser`` (default) or ``disagreement``
``model``      a facet value of the menus: ``model``, ``persona`` (persona id), ``target`` (target
``persona``    group id), ``template``, ``language``, ``outcome``; ``(none)`` selects a missing
``target``     value
``template``
``language``
``outcome``
``min``        scores at or above; with ``max``, unscored transcripts are left out
``max``        scores at or below
``q``          case-insensitive text in the system prompt, user prompt, reply, rationales,
               critiques and rewrites
``sort``       ``id``, ``score`` or ``spread``; ``-score`` sorts descending
``page``       the results page (1-based, :data:`PAGE_SIZE` rows a page)
``group``      the figure's factor: ``model``, ``persona``, ``target``, ``template``, ``language``
``open``       the id of the transcript shown in the detail view
=============  ==================================================================================

For example ``report.html#view=browser&model=gen&q=hello&min=0.5&open=17``. The CSV button exports the rows that
match the filters (a ``Blob`` saved by the browser; nothing leaves the machine).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.frames import jsonable
from analysis.io import RunTables, load_run
from analysis.transcripts import DISAGREEMENT_COLUMNS, disagreement_table, transcript_data

__all__ = [
    "DEFAULT_MAX_TRANSCRIPTS",
    "DISAGREEMENT_TOP",
    "PAGE_SIZE",
    "app_script_html",
    "browser_payload",
    "browser_section",
    "content_security_policy",
    "make_payload",
    "page_css",
    "script_json",
]

#: Transcripts embedded in the page unless told otherwise (``tribunal report --max-transcripts``).
DEFAULT_MAX_TRANSCRIPTS = 2000
#: Results table rows a page.
PAGE_SIZE = 100
#: Rows of the disagreement view.
DISAGREEMENT_TOP = 50
#: The most dots the figure draws (the table beside it counts them all).
MAX_POINTS = 3000

ASSETS = Path(__file__).with_name("report_assets")
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def script_json(value: Any) -> str:
    """``value`` as JSON that is safe inside ``<script type="application/json">``.

    ``<``, ``>``, ``&``, U+2028 and U+2029 are written as ``\\u003c``-style escapes (JSON reads them back as the
    same characters), so ``</script>`` or ``<!--`` in a text cannot end or change the block. Non-finite numbers
    and missing values become ``null`` (:func:`analysis.frames.jsonable`).

    Examples:
        >>> script_json({"reply": "</script><b>"})
        '{"reply": "\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e"}'
    """
    text = json.dumps(jsonable(value), ensure_ascii=False, allow_nan=False)
    return "".join(_JSON_ESCAPES.get(ch, ch) for ch in text)


def _asset(name: str, closing: str) -> str:
    text = (ASSETS / name).read_text(encoding="utf-8")
    for marker in (closing, "<!--", "<script"):
        if marker in text.lower():
            raise ValueError(f"{ASSETS / name} contains {marker!r}, which would change its inline block's parsing")
    return text


def page_css() -> str:
    """The report's stylesheet (``report_assets/report.css``)."""
    return _asset("report.css", "</style")


def _app_script() -> str:
    return _asset("report.js", "</script")


def content_security_policy(script: str | None = None) -> str:
    """The page's policy: no network, no inline handlers, only ``script`` (by its SHA-256) runs."""
    scripts = "'none'"
    if script is not None:
        scripts = f"'sha256-{base64.b64encode(hashlib.sha256(script.encode('utf-8')).digest()).decode('ascii')}'"
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )


def app_script_html() -> tuple[str, str]:
    """``(policy, tag)``: the page's Content-Security-Policy and the inline ``<script>`` it allows."""
    script = _app_script()
    return content_security_policy(script), f"<script id='tribunal-app-script'>{script}</script>"


def browser_payload(
    run_dir: str | Path, max_transcripts: int = DEFAULT_MAX_TRANSCRIPTS, run: RunTables | None = None
) -> dict[str, Any]:
    """The data the page embeds: a sample of at most ``max_transcripts`` transcripts and the disagreement rows.

    Every rater's rating is listed, trusted or not (the browser is where a reader audits them). Returns
    ``{"browser": transcript_data(...), "disagreement": [row, ...], "page_size": ..., "max_points": ...}``.
    ``run``: the run's tables when the caller has loaded them already (a 1.4M-generation store takes ~40 s to load).
    """
    tables = run if run is not None else load_run(run_dir)
    data = transcript_data(run_dir, limit=max_transcripts, tables=tables)
    # transcript_data ranked the disputed rows already (top `extremes` per dimension): their first rows are ours
    if data.get("disagreement") is not None and len(data["disagreement"]) and DISAGREEMENT_TOP <= 100:
        ranked = pd.DataFrame(data["disagreement"], columns=DISAGREEMENT_COLUMNS)
        rows = ranked.groupby("dimension", sort=False).head(DISAGREEMENT_TOP).reset_index(drop=True)
    else:
        rows = disagreement_table(tables, top=DISAGREEMENT_TOP)
    return make_payload(data, rows)


def make_payload(data: dict[str, Any], disagreement: pd.DataFrame | None) -> dict[str, Any]:
    """The embedded payload from a :func:`~analysis.transcripts.transcript_data` dict and a disagreement table.

    The disagreement rows are ranked by spread over every dimension (ties by generation id); the copy of them
    that ``data`` carries for its own dimension is not embedded twice.
    """
    rows: list[dict[str, Any]] = []
    if disagreement is not None and len(disagreement):
        ranked = disagreement.sort_values(["spread", "generation_id", "dimension"], ascending=[False, True, True])
        rows = ranked.to_dict(orient="records")
    browser = {k: v for k, v in data.items() if k != "disagreement"}
    return {"browser": browser, "disagreement": rows, "page_size": PAGE_SIZE, "max_points": MAX_POINTS}


def browser_section(payload: dict[str, Any] | None) -> list[str]:
    """The HTML of the transcript section: its note, the app's container and the data block (script: see
    :func:`app_script_html`, placed at the end of the body)."""
    esc = html.escape
    parts = ["<section id='transcripts'>", "<h2>Transcripts</h2>"]
    if payload is None:
        parts.append("<p class='absent'>No transcript browser: this report was written without one.</p>")
        return [*parts, "</section>"]
    data = payload.get("browser") or {}
    shown = f"{data.get('n_shown')} of {data.get('n_total')} transcripts in this page"
    if data.get("sampled"):
        shown += " (a sample)"
    note = f"{shown}: {data.get('sample_note') or 'all of them'}."
    if data.get("dimension"):
        note += f" Scores are the panel's {data['dimension']}."
    note += " The tables below cover every generation."
    parts.append(f"<p id='tb-sample-note' class='coverage'>{esc(note)}</p>")
    parts.append(
        "<noscript><p class='absent'>The transcript browser needs JavaScript (it runs offline, from this file "
        "only).</p></noscript>"
    )
    parts.append("<div id='tribunal-app'></div>")
    parts.append(f"<script type='application/json' id='tribunal-data'>{script_json(payload)}</script>")
    parts.append("</section>")
    return parts
