/* tribunal report: the transcript browser, the disagreement view and the score figure.
 *
 * Shipped with the package (analysis/report_assets/) and inlined into report.html by analysis.report_browser;
 * the page's Content-Security-Policy allows this script by its hash and nothing else.
 *
 * Every model, rater and configuration text is untrusted. It reaches the page only as JSON in
 * the application/json block #tribunal-data and is put into the DOM with textContent and
 * createElement/createElementNS: never innerHTML, insertAdjacentHTML, document.write, or an attribute
 * string built from data (select options carry their index, not their value).
 *
 * State lives in the URL fragment (see analysis/report_browser.py for the keys), read on load and on
 * hashchange, written with history.replaceState whenever the reader filters, pages, sorts or opens a row.
 */
(function () {
  "use strict";

  var source = document.getElementById("tribunal-data");
  var root = document.getElementById("tribunal-app");
  if (!source || !root) return;
  var DATA = JSON.parse(source.textContent);
  var BROWSER = DATA.browser || {};
  var ROWS = BROWSER.transcripts || [];
  var DISAGREEMENT = DATA.disagreement || [];
  var PAGE_SIZE = DATA.page_size || 100;
  var MAX_POINTS = DATA.max_points || 3000;
  var NONE = "(none)";
  var BY_ID = new Map();
  ROWS.forEach(function (t) { BY_ID.set(String(t.id), t); });

  // fragment key -> transcript field, in menu order
  var FACETS = [
    ["model", "model", "model"],
    ["persona", "persona_id", "persona"],
    ["target", "target_id", "target group"],
    ["template", "template_id", "template"],
    ["language", "language", "language"],
    ["outcome", "outcome", "outcome"],
  ];
  var GROUPS = FACETS.filter(function (f) { return f[0] !== "outcome"; });
  var KEYS = ["view", "model", "persona", "target", "template", "language", "outcome", "min", "max", "q",
              "sort", "page", "group", "open"];
  var SORTS = {
    id: function (t) { return Number(t.id); },
    score: function (t) { return t.score; },
    spread: function (t) { return t.spread; },
  };
  var CSV_COLUMNS = ["id", "model", "persona_id", "persona_category", "target_id", "template_id", "language",
                     "is_baseline", "outcome", "score", "spread", "mitigation_rounds", "stop_reason", "system",
                     "user", "reply"];

  var state = {};
  var lastHash = null;
  var currentView = null;
  var ui = {};

  // ---------------------------------------------------------------- DOM helpers (text only)
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function svgEl(tag, attrs) {
    var node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function key(value) { return value === null || value === undefined || value === "" ? NONE : String(value); }
  function fmt(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(3);
    if (typeof value === "boolean") return value ? "yes" : "no";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }
  function snippet(text, n) {
    var s = text === null || text === undefined ? "" : String(text).replace(/\s+/g, " ");
    return s.length > n ? s.slice(0, n - 1) + "\u2026" : s;
  }
  function button(label, className, onClick) {
    var b = el("button", className, label);
    b.type = "button";
    b.addEventListener("click", onClick);
    return b;
  }
  function labelled(text, control) {
    var label = el("label", "tb-field");
    label.appendChild(el("span", null, text));
    label.appendChild(control);
    return label;
  }
  function table(headers) {
    var t = el("table", "tb-table");
    var head = el("thead");
    var tr = el("tr");
    headers.forEach(function (h) { tr.appendChild(typeof h === "string" ? el("th", null, h) : h); });
    head.appendChild(tr);
    t.appendChild(head);
    var body = el("tbody");
    t.appendChild(body);
    return { table: t, body: body };
  }
  function cells(tr, values) {
    values.forEach(function (v) { tr.appendChild(el("td", null, fmt(v))); });
  }
  function clickable(tr, onOpen) {
    tr.tabIndex = 0;
    tr.classList.add("tb-clickable");
    tr.addEventListener("click", onOpen);
    tr.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onOpen(); }
    });
  }

  // ---------------------------------------------------------------- state <-> fragment
  function readHash() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    var next = {};
    KEYS.forEach(function (k) { if (params.has(k) && params.get(k) !== "") next[k] = params.get(k); });
    return next;
  }
  function writeHash() {
    var params = new URLSearchParams();
    KEYS.forEach(function (k) { if (state[k] !== undefined && state[k] !== "") params.set(k, state[k]); });
    var text = params.toString();
    lastHash = text;
    var url = location.pathname + location.search + (text ? "#" + text : "");
    try {
      history.replaceState(null, "", url);
    } catch (e) {
      location.hash = text;
    }
  }
  function number(value) {
    if (value === undefined || value === "") return null;
    var n = Number(value);
    return Number.isFinite(n) ? n : null;
  }
  function setState(changes, keepPage) {
    Object.keys(changes).forEach(function (k) {
      if (changes[k] === undefined || changes[k] === null || changes[k] === "") delete state[k];
      else state[k] = String(changes[k]);
    });
    if (!keepPage) delete state.page;
    writeHash();
    render();
  }

  // ---------------------------------------------------------------- filtering
  var haystacks = new Map();
  function haystack(t) {
    var cached = haystacks.get(t);
    if (cached !== undefined) return cached;
    var parts = [t.system, t.user, t.reply];
    (t.ratings || []).forEach(function (r) { parts.push(r.rationale); });
    (t.rounds || []).forEach(function (r) {
      parts.push(r.critique, r.text);
      (r.ratings || []).forEach(function (x) { parts.push(x.rationale); });
    });
    var text = parts.filter(function (p) { return p !== null && p !== undefined; }).join("\n").toLowerCase();
    haystacks.set(t, text);
    return text;
  }
  function matches(t) {
    for (var i = 0; i < FACETS.length; i++) {
      var wanted = state[FACETS[i][0]];
      if (wanted !== undefined && key(t[FACETS[i][1]]) !== wanted) return false;
    }
    var lo = number(state.min), hi = number(state.max);
    if (lo !== null || hi !== null) {
      if (typeof t.score !== "number") return false;
      if (lo !== null && t.score < lo) return false;
      if (hi !== null && t.score > hi) return false;
    }
    if (state.q && haystack(t).indexOf(state.q.toLowerCase()) < 0) return false;
    return true;
  }
  function filtered() {
    var rows = ROWS.filter(matches);
    var sort = state.sort || "id";
    var desc = sort.charAt(0) === "-";
    var get = SORTS[desc ? sort.slice(1) : sort] || SORTS.id;
    return rows.slice().sort(function (a, b) {
      var x = get(a), y = get(b);
      var xMissing = typeof x !== "number", yMissing = typeof y !== "number";
      if (xMissing || yMissing) return xMissing === yMissing ? Number(a.id) - Number(b.id) : xMissing ? 1 : -1;
      return (desc ? y - x : x - y) || Number(a.id) - Number(b.id);
    });
  }

  // ---------------------------------------------------------------- CSV export
  function csvCell(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "number" || typeof value === "boolean") return String(value);
    var s = String(value);
    // a cell starting like a formula is kept as text by spreadsheets (CSV injection)
    if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;
    return '"' + s.replace(/"/g, '""') + '"';
  }
  function csvText(rows) {
    var lines = [CSV_COLUMNS.join(",")];
    rows.forEach(function (t) {
      lines.push(CSV_COLUMNS.map(function (c) { return csvCell(t[c]); }).join(","));
    });
    return lines.join("\r\n") + "\r\n";
  }
  function exportCsv() {
    var blob = new Blob(["\ufeff" + csvText(filtered())], { type: "text/csv;charset=utf-8" });
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "tribunal-transcripts.csv";
    document.body.appendChild(link);
    link.click();
    document.body.removeChild(link);
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 10000);
  }

  // ---------------------------------------------------------------- layout (built once)
  function build() {
    var nav = document.getElementById("tb-nav") || root;
    ui.tabs = {};
    [["report", "Report"], ["browser", "Transcript browser"], ["disagreement", "Where the judges disagree"]]
      .forEach(function (v) {
        var b = button(v[1], "tb-tab", function () { setState({ view: v[0] === "report" ? "" : v[0] }, true); });
        ui.tabs[v[0]] = b;
        nav.appendChild(b);
      });

    ui.browser = el("div", "tb-view");
    ui.browser.id = "tb-browser";
    var form = el("div", "tb-filters");
    ui.menus = {};
    FACETS.forEach(function (f) {
      var select = el("select");
      select.appendChild(el("option", null, "all"));
      var values = ((BROWSER.facets || {})[f[1]] || []).map(key);
      if (values.indexOf(NONE) < 0 && ROWS.some(function (t) { return key(t[f[1]]) === NONE; })) values.push(NONE);
      values.forEach(function (v, i) {
        var option = el("option", null, v);
        option.value = String(i + 1);
        select.appendChild(option);
      });
      select.options[0].value = "0";
      select.addEventListener("change", function () {
        var change = {};
        change[f[0]] = select.value === "0" ? undefined : values[Number(select.value) - 1];
        setState(change);
      });
      ui.menus[f[0]] = { select: select, values: values };
      form.appendChild(labelled(f[2], select));
    });
    ["min", "max"].forEach(function (k) {
      var input = el("input", "tb-num");
      input.type = "number";
      input.step = "any";
      input.addEventListener("change", function () {
        var change = {};
        change[k] = number(input.value) === null ? undefined : input.value;
        setState(change);
      });
      ui[k] = input;
      form.appendChild(labelled("score " + k, input));
    });
    var search = el("input", "tb-search");
    search.type = "search";
    search.placeholder = "text in prompts, replies, rationales, critiques";
    var timer = null;
    search.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { setState({ q: search.value }); }, 200);
    });
    ui.q = search;
    form.appendChild(labelled("search", search));
    form.appendChild(button("reset", "tb-button", function () {
      setState({ model: "", persona: "", target: "", template: "", language: "", outcome: "", min: "", max: "",
                 q: "", sort: "" });
    }));
    ui.exportButton = button("export CSV", "tb-button", exportCsv);
    form.appendChild(ui.exportButton);
    ui.browser.appendChild(form);

    ui.count = el("p", "tb-count");
    ui.count.id = "tb-count";
    ui.browser.appendChild(ui.count);

    var figure = el("figure", "tb-figure");
    figure.id = "tb-figure";
    var caption = el("figcaption");
    ui.group = el("select");
    GROUPS.forEach(function (g, i) {
      var option = el("option", null, g[2]);
      option.value = String(i);
      ui.group.appendChild(option);
    });
    ui.group.addEventListener("change", function () {
      setState({ group: GROUPS[Number(ui.group.value)][0] }, true);
    });
    caption.appendChild(el("span", null, "Scores of the shown transcripts by "));
    caption.appendChild(ui.group);
    ui.figureNote = el("span", "coverage");
    caption.appendChild(ui.figureNote);
    figure.appendChild(caption);
    ui.chart = el("div", "tb-chart");
    ui.groupTable = el("div", "tb-group-table");
    var side = el("div", "tb-figure-body");
    side.appendChild(ui.chart);
    side.appendChild(ui.groupTable);
    figure.appendChild(side);
    ui.browser.appendChild(figure);

    ui.sortButtons = {};
    var headers = ["#", "model", "persona", "target", "template", "lang", "outcome", "score", "spread", "rounds",
                   "stop", "reply"].map(function (h) {
      var th = el("th");
      var sortKey = { "#": "id", score: "score", spread: "spread" }[h];
      if (!sortKey) { th.textContent = h; return th; }
      var b = button(h, "tb-sort", function () {
        var current = state.sort || "id";
        setState({ sort: current === sortKey ? "-" + sortKey : sortKey });
      });
      ui.sortButtons[sortKey] = b;
      th.appendChild(b);
      return th;
    });
    var results = table(headers);
    results.table.id = "tb-results";
    ui.rows = results.body;
    ui.browser.appendChild(results.table);
    var pager = el("div", "tb-pager");
    ui.prev = button("\u2190 previous page", "tb-button", function () {
      setState({ page: Math.max(1, Number(state.page || 1) - 1) }, true);
    });
    ui.next = button("next page \u2192", "tb-button", function () {
      setState({ page: Number(state.page || 1) + 1 }, true);
    });
    ui.pageInfo = el("span", "tb-page");
    pager.appendChild(ui.prev);
    pager.appendChild(ui.pageInfo);
    pager.appendChild(ui.next);
    ui.browser.appendChild(pager);
    root.appendChild(ui.browser);

    ui.disagreement = el("div", "tb-view");
    ui.disagreement.id = "tb-disagreement";
    root.appendChild(ui.disagreement);
    buildDisagreement();

    ui.detail = el("aside", "tb-detail");
    ui.detail.id = "tb-detail";
    ui.detail.setAttribute("role", "dialog");
    ui.detail.hidden = true;
    document.body.appendChild(ui.detail);
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && state.open !== undefined) setState({ open: "" }, true);
    });
  }

  function buildDisagreement() {
    var box = ui.disagreement;
    box.appendChild(el("p", null, "The generations whose raters disagree most (score spread = highest \u2212 " +
      "lowest rater's score), ranked by spread. A row opens its transcript."));
    if (!DISAGREEMENT.length) {
      box.appendChild(el("p", "absent", "No generation was scored by two or more raters."));
      return;
    }
    var framed = DISAGREEMENT.some(function (d) { return typeof d.framed_spread === "number"; });
    var headers = ["rank", "#", "dimension", "spread", "raters", "lowest", "highest", "framed spread", "model",
                   "persona", "target", "template", "lang", "reply"];
    var t = table(headers.filter(function (h) { return framed || h !== "framed spread"; }));
    t.table.id = "tb-disagreement-table";
    DISAGREEMENT.forEach(function (d, i) {
      var tr = el("tr");
      var transcript = BY_ID.get(String(d.generation_id));
      var values = [i + 1, d.generation_id, d.dimension, d.spread, d.n_raters,
                    fmt(d.min_rater) + ": " + fmt(d.min_score), fmt(d.max_rater) + ": " + fmt(d.max_score)];
      if (framed) values.push(d.framed_spread);
      cells(tr, values.concat([d.model, d.persona_id, d.target_id, d.template_id, d.language]));
      var text = el("td", "tb-snippet", transcript ? snippet(transcript.reply, 160) : "(not in the embedded sample)");
      tr.appendChild(text);
      if (transcript) clickable(tr, function () { setState({ open: String(d.generation_id) }, true); });
      else tr.classList.add("absent");
      t.body.appendChild(tr);
    });
    box.appendChild(t.table);
  }

  // ---------------------------------------------------------------- rendering
  function render() {
    var view = state.view === "disagreement" || state.view === "browser" ? state.view : "report";
    if (view !== currentView && currentView !== null && view !== "report") window.scrollTo(0, 0);
    currentView = view;
    document.body.classList.toggle("tb-focus", view !== "report");
    ui.browser.hidden = view === "disagreement";
    ui.disagreement.hidden = view !== "disagreement";
    Object.keys(ui.tabs).forEach(function (k) { ui.tabs[k].classList.toggle("tb-active", k === view); });
    syncControls();
    var rows = filtered();
    if (view === "browser") {
      renderResults(rows);
      renderFigure(rows);
    }
    renderDetail(rows);
  }

  function syncControls() {
    FACETS.forEach(function (f) {
      var menu = ui.menus[f[0]];
      var at = state[f[0]] === undefined ? -1 : menu.values.indexOf(state[f[0]]);
      menu.select.value = String(at + 1);
    });
    ui.min.value = state.min || "";
    ui.max.value = state.max || "";
    if (document.activeElement !== ui.q) ui.q.value = state.q || "";
    var g = GROUPS.map(function (x) { return x[0]; }).indexOf(state.group || "template");
    ui.group.value = String(Math.max(g, 0));
    var sort = state.sort || "id";
    Object.keys(ui.sortButtons).forEach(function (k) {
      var b = ui.sortButtons[k];
      b.textContent = b.textContent.replace(/ [\u25b2\u25bc]$/, "");
      if (sort === k) b.textContent += " \u25b2";
      if (sort === "-" + k) b.textContent += " \u25bc";
    });
  }

  function renderResults(rows) {
    var pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    var page = Math.min(Math.max(1, Math.floor(number(state.page) || 1)), pages);
    var start = (page - 1) * PAGE_SIZE;
    var shown = rows.slice(start, start + PAGE_SIZE);
    ui.count.textContent = rows.length + " of " + ROWS.length + " shown";
    ui.exportButton.textContent = "export CSV (" + rows.length + " rows)";
    ui.pageInfo.textContent = rows.length
      ? "rows " + (start + 1) + "\u2013" + (start + shown.length) + ", page " + page + " of " + pages
      : "no transcript matches";
    ui.prev.disabled = page <= 1;
    ui.next.disabled = page >= pages;
    clear(ui.rows);
    shown.forEach(function (t) {
      var tr = el("tr");
      tr.dataset.id = String(Number(t.id));
      if (t.mitigation_rounds) tr.classList.add("tb-mitigated");
      cells(tr, [t.id, t.model, t.persona_id, t.target_id, t.template_id, t.language, t.outcome, t.score, t.spread,
                 t.mitigation_rounds, t.stop_reason]);
      tr.appendChild(el("td", "tb-snippet", snippet(t.reply, 140)));
      clickable(tr, function () { setState({ open: String(t.id) }, true); });
      ui.rows.appendChild(tr);
    });
  }

  function renderFigure(rows) {
    var group = GROUPS.filter(function (g) { return g[0] === (state.group || "template"); })[0] || GROUPS[3];
    var field = group[1];
    var byGroup = new Map();
    rows.forEach(function (t) {
      var g = key(t[field]);
      if (!byGroup.has(g)) byGroup.set(g, []);
      byGroup.get(g).push(t);
    });
    var names = Array.from(byGroup.keys()).sort();
    var scores = rows.filter(function (t) { return typeof t.score === "number"; }).map(function (t) { return t.score; });
    var lo = Math.min(0, Math.min.apply(null, scores.length ? scores : [0]));
    var hi = Math.max(1, Math.max.apply(null, scores.length ? scores : [1]));
    var left = 150, width = 560, rowH = 30, top = 10;
    var height = top + names.length * rowH + 34;
    var svg = svgEl("svg", { viewBox: "0 0 " + (left + width + 20) + " " + height, width: left + width + 20,
                             height: height, role: "img" });
    var title = svgEl("title");
    title.textContent = "Score (" + fmt(BROWSER.dimension) + ") of each shown transcript, by " + group[2];
    svg.appendChild(title);
    function x(v) { return left + (v - lo) / (hi - lo || 1) * width; }
    for (var tick = 0; tick <= 4; tick++) {
      var v = lo + (hi - lo) * tick / 4;
      svg.appendChild(svgEl("line", { x1: x(v), x2: x(v), y1: top, y2: height - 28, class: "tb-grid" }));
      var label = svgEl("text", { x: x(v), y: height - 14, "text-anchor": "middle", class: "tb-axis" });
      label.textContent = fmt(Math.round(v * 100) / 100);
      svg.appendChild(label);
    }
    var axis = svgEl("text", { x: left + width / 2, y: height - 1, "text-anchor": "middle", class: "tb-axis" });
    axis.textContent = "score (" + fmt(BROWSER.dimension) + ")";
    svg.appendChild(axis);
    var drawn = 0, unscored = 0;
    var stats = [];
    names.forEach(function (name, gi) {
      var y0 = top + gi * rowH + rowH / 2;
      var label = svgEl("text", { x: left - 8, y: y0 + 4, "text-anchor": "end", class: "tb-axis" });
      label.textContent = snippet(name, 22);
      svg.appendChild(label);
      var members = byGroup.get(name);
      var scored = members.filter(function (t) { return typeof t.score === "number"; });
      unscored += members.length - scored.length;
      scored.forEach(function (t) {
        if (drawn >= MAX_POINTS) return;
        drawn++;
        var jitter = ((Number(t.id) * 2654435761) % 1000) / 1000 - 0.5;
        var dot = svgEl("circle", { cx: x(t.score), cy: y0 + jitter * (rowH - 10), r: 4,
                                    class: t.mitigation_rounds ? "tb-dot tb-dot-mitigated" : "tb-dot" });
        var tip = svgEl("title");
        tip.textContent = "#" + t.id + " \u00b7 " + [t.model, t.persona_id, t.target_id, t.template_id, t.language]
          .map(fmt).join(" \u00b7 ") + " \u00b7 score " + fmt(t.score) +
          (t.mitigation_rounds ? " \u00b7 mitigated (" + fmt(t.stop_reason) + ")" : "");
        dot.appendChild(tip);
        dot.addEventListener("click", function () { setState({ open: String(t.id) }, true); });
        svg.appendChild(dot);
      });
      var values = scored.map(function (t) { return t.score; });
      var mean = values.length ? values.reduce(function (a, b) { return a + b; }, 0) / values.length : null;
      if (mean !== null) {
        var bar = svgEl("line", { x1: x(mean), x2: x(mean), y1: y0 - rowH / 2 + 3, y2: y0 + rowH / 2 - 3,
                                  class: "tb-mean" });
        var barTip = svgEl("title");
        barTip.textContent = name + ": mean " + fmt(mean) + " (" + values.length + " scored of " +
          members.length + ")";
        bar.appendChild(barTip);
        svg.appendChild(bar);
      }
      stats.push([name, members.length, values.length, mean,
                  values.length ? Math.min.apply(null, values) : null,
                  values.length ? Math.max.apply(null, values) : null]);
    });
    clear(ui.chart);
    ui.chart.appendChild(svg);
    var note = " \u2014 each dot a transcript (hover for its cell, click to open it), the bar each group's mean";
    if (unscored) note += "; " + unscored + " unscored not drawn";
    if (drawn >= MAX_POINTS) note += "; the first " + MAX_POINTS + " drawn";
    ui.figureNote.textContent = note + ".";
    var t = table([group[2], "n", "scored", "mean", "min", "max"]);
    stats.forEach(function (s) {
      var tr = el("tr");
      cells(tr, s);
      t.body.appendChild(tr);
    });
    clear(ui.groupTable);
    ui.groupTable.appendChild(t.table);
  }

  function block(parent, label, text, className) {
    var box = el("div", "tb-msg " + (className || ""));
    box.appendChild(el("div", "tb-msg-label", label));
    box.appendChild(el("pre", null, text === null || text === undefined ? "(no text)" : text));
    parent.appendChild(box);
    return box;
  }

  function ratingsTable(parent, ratings) {
    if (!ratings || !ratings.length) {
      parent.appendChild(el("p", "absent", "No rating."));
      return;
    }
    var t = table(["rater", "judge model", "framing", "dimension", "score", "outcome", "rationale"]);
    t.table.classList.add("tb-ratings");
    ratings.forEach(function (r) {
      var tr = el("tr");
      cells(tr, [r.rater, r.model, r.framing, r.dimension, r.score, r.outcome]);
      var why = el("td", "tb-rationale");
      why.appendChild(el("div", null, fmt(r.rationale)));
      if (r.raw !== null && r.raw !== undefined && r.raw !== "") {
        var raw = el("details");
        raw.appendChild(el("summary", null, "raw reply"));
        raw.appendChild(el("pre", null, r.raw));
        why.appendChild(raw);
      }
      tr.appendChild(why);
      t.body.appendChild(tr);
    });
    parent.appendChild(t.table);
  }

  function renderDetail(rows) {
    var t = state.open === undefined ? undefined : BY_ID.get(state.open);
    clear(ui.detail);
    if (state.open === undefined) {
      ui.detail.hidden = true;
      return;
    }
    ui.detail.hidden = false;
    var bar = el("div", "tb-detail-bar");
    var at = t ? rows.indexOf(t) : -1;
    bar.appendChild(el("h3", null, t ? "Transcript #" + t.id : "Transcript #" + state.open));
    var prev = button("\u2190", "tb-button", function () { setState({ open: String(rows[at - 1].id) }, true); });
    prev.title = "previous shown transcript";
    prev.disabled = at <= 0;
    var next = button("\u2192", "tb-button", function () { setState({ open: String(rows[at + 1].id) }, true); });
    next.title = "next shown transcript";
    next.disabled = at < 0 || at >= rows.length - 1;
    bar.appendChild(prev);
    bar.appendChild(next);
    bar.appendChild(button("close \u00d7", "tb-button", function () { setState({ open: "" }, true); }));
    ui.detail.appendChild(bar);
    var body = el("div", "tb-detail-body");
    body.id = "tb-detail-body";
    ui.detail.appendChild(body);
    if (!t) {
      body.appendChild(el("p", "absent", "This transcript is not in the embedded sample (" + fmt(BROWSER.sample_note) +
        "); the run's tables cover every generation."));
      return;
    }
    var meta = el("dl", "tb-meta");
    [["model", t.model], ["persona", t.persona_id + (t.persona_category ? " (" + t.persona_category + ")" : "")],
     ["target group", t.target_id], ["template", t.template_id], ["language", t.language],
     ["baseline (no persona)", t.is_baseline], ["outcome", t.outcome], ["score (" + fmt(BROWSER.dimension) + ")", t.score],
     ["rater spread", t.spread], ["mitigation rounds", t.mitigation_rounds], ["stop reason", t.stop_reason]]
      .forEach(function (pair) {
        if (pair[1] === null || pair[1] === undefined) return;
        meta.appendChild(el("dt", null, pair[0]));
        meta.appendChild(el("dd", null, fmt(pair[1])));
      });
    body.appendChild(meta);
    var why = Array.isArray(t.why) ? t.why.join(", ") : t.why;
    if (why && why !== "all") body.appendChild(el("p", "coverage", "In this page's sample as: " + why + "."));
    body.appendChild(el("h4", null, "Chat"));
    block(body, "system (persona)", t.system, "tb-system");
    block(body, "user", t.user, "tb-user");
    block(body, "reply", t.reply, "tb-reply");
    body.appendChild(el("h4", null, "Ratings"));
    ratingsTable(body, t.ratings);
    if (t.rounds && t.rounds.length) {
      body.appendChild(el("h4", null, "Mitigation: critique \u2192 rewrite \u2192 scores"));
      t.rounds.forEach(function (r) {
        var round = el("section", "tb-round");
        round.appendChild(el("h5", null, "Round " + fmt(r.round) + (r.outcome ? " \u00b7 " + r.outcome : "") +
          (r.score !== null && r.score !== undefined ? " \u00b7 score " + fmt(r.score) : "")));
        block(round, "critique by " + fmt(r.critic) + (r.critique_outcome ? " (" + r.critique_outcome + ")" : ""),
              r.critique, "tb-critique");
        block(round, "rewrite", r.text, "tb-rewrite");
        ratingsTable(round, r.ratings);
        body.appendChild(round);
      });
    }
    if (t.stop_reason) {
      body.appendChild(el("p", "tb-stop", "Stopped: " + t.stop_reason + " after " + fmt(t.mitigation_rounds || 0) +
        " round(s)."));
    }
  }

  // ---------------------------------------------------------------- start
  function apply() {
    state = readHash();
    lastHash = location.hash.replace(/^#/, "");
    render();
  }
  document.body.classList.add("tb-js");
  build();
  apply();
  window.addEventListener("hashchange", function () {
    if (location.hash.replace(/^#/, "") !== lastHash) apply();
  });
  window.tribunalReport = { csv: function () { return csvText(filtered()); }, state: function () { return state; } };
})();
