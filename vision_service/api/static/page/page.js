// The live page: one card per source, from /v1/sources, /v1/sources/{id} and /v1/sources/{id}/samples.
// Plain DOM and uPlot (vendored, /ui/uPlot.iife.min.js); no build step, nothing from another origin.
// Text from the API is only ever set as textContent, never parsed as HTML.
"use strict";

(() => {
  const REFRESH_MS = 5000;
  const SIGNALS = [
    // [signal, label, digits, threshold name (drawn dashed), lower is worse, log scale]
    ["brightness", "brightness", 3, "low_brightness_ratio", true, false],
    ["contrast", "contrast", 3, null, true, false],
    ["sharpness", "sharpness", 0, "blurry_sharpness", true, true],
    ["noise_sigma", "noise σ", 1, "high_noise_sigma", false, false],
    ["detections", "detections / image", 2, null, true, false],
  ];
  const cards = new Map(); // source id -> {root, charts: Map(signal -> uPlot), parts}
  let timer = null;
  let focused = false;

  class NeedLogin extends Error {}

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  async function api(path, options) {
    const response = await fetch(path, {credentials: "same-origin", headers: {Accept: "application/json"}, ...options});
    if (response.status === 401) throw new NeedLogin();
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.status === 204 ? null : response.json();
  }

  function ago(seconds) {
    if (seconds == null) return "never";
    const s = Math.max(0, Date.now() / 1000 - seconds);
    if (s < 90) return `${Math.round(s)} s ago`;
    if (s < 5400) return `${Math.round(s / 60)} min ago`;
    return `${(s / 3600).toFixed(1)} h ago`;
  }

  function fmt(value, digits) {
    return value == null ? "–" : Number(value).toFixed(digits);
  }

  // -- login ------------------------------------------------------------------------------------

  function showLogin(message) {
    stop();
    $("sources").replaceChildren();
    cards.clear();
    $("status").textContent = "";
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("api-key").focus();
  }

  async function logIn(event) {
    event.preventDefault();
    const body = new URLSearchParams({api_key: $("api-key").value});
    const response = await fetch("/v1/session", {method: "POST", body, credentials: "same-origin"});
    $("api-key").value = "";
    if (response.status === 204) {
      $("login").hidden = true;
      $("logout").hidden = false;
      run();
    } else {
      $("login-error").textContent = response.status === 401 ? "Wrong key." : `Login failed (HTTP ${response.status}).`;
    }
  }

  async function logOut() {
    await fetch("/v1/session", {method: "DELETE", credentials: "same-origin"});
    showLogin("Logged out.");
  }

  // -- refreshing -------------------------------------------------------------------------------

  function stop() {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  }

  function run() {
    stop();
    if (document.hidden) return; // nobody looks: ask the service for nothing
    refresh()
      .then(() => { timer = setTimeout(run, REFRESH_MS); })
      .catch((error) => {
        if (error instanceof NeedLogin) showLogin("Your session ended; log in again.");
        else {
          $("status").textContent = `Could not refresh: ${error.message}; retrying.`;
          timer = setTimeout(run, REFRESH_MS);
        }
      });
  }

  async function refresh() {
    const list = await api("/v1/sources");
    const details = await Promise.all(
      list.sources.map((s) => Promise.all([api(s.url), api(s.samples_url)]))
    );
    const seen = new Set();
    list.sources.forEach((source, i) => {
      seen.add(source.id);
      render(details[i][0], details[i][1], list.thresholds);
    });
    for (const [id, card] of cards) {
      if (!seen.has(id)) {
        card.root.remove();
        cards.delete(id);
      }
    }
    $("status").textContent = list.sources.length ? "" : "No sources yet.";
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    if (!focused) focusFromHash();
  }

  function focusFromHash() {
    const match = /^#source=([a-z0-9_-]+)$/.exec(location.hash);
    focused = true;
    if (!match || !cards.has(match[1])) return;
    const root = cards.get(match[1]).root;
    root.classList.add("focus");
    root.scrollIntoView({block: "start"});
  }

  // -- one card ---------------------------------------------------------------------------------

  function card(id) {
    let entry = cards.get(id);
    if (entry) return entry;
    const root = el("article", {class: "card", id: `source-${id}`, "data-source": id});
    const parts = {
      title: el("h2"),
      meta: el("p", {class: "meta muted"}),
      conditions: el("div", {class: "conditions"}),
      signals: el("div", {class: "signals"}),
      drift: el("div"),
      evidence: el("div", {class: "evidence"}),
    };
    root.append(
      parts.title, parts.meta, parts.conditions, parts.signals, parts.drift,
      el("h3", {text: "Evidence frames"}), parts.evidence
    );
    entry = {root, parts, charts: new Map(), values: new Map(), samples: ""};
    for (const [signal, label] of SIGNALS) {
      const value = el("span", {class: "value"});
      const spark = el("div", {class: "spark"});
      entry.values.set(signal, value);
      entry.charts.set(signal, {node: spark, plot: null});
      parts.signals.append(el("div", {class: "signal"}, el("span", {class: "label", text: label}, value), spark));
    }
    // Keep the cards in source order.
    const grid = $("sources");
    const after = [...grid.children].find((node) => node.dataset.source > id);
    grid.insertBefore(root, after || null);
    cards.set(id, entry);
    return entry;
  }

  function render(source, samples, thresholds) {
    const entry = card(source.id);
    const {parts} = entry;
    const badges = [el("span", {text: source.id}), el("span", {class: "badge", text: source.kind})];
    if (source.camera) {
      const up = source.camera.up;
      badges.push(el("span", {class: `badge ${up ? "up" : "down"}`,
        text: `${source.camera.status} · ${source.camera.measured_fps.toFixed(1)} fps`}));
    }
    parts.title.replaceChildren(...badges);
    const frames = source.recent.frames;
    parts.meta.textContent = `last frame ${ago(source.last_frame_at)} · ${frames} frames in 5 min` +
      (source.camera && source.camera.error ? ` · ${source.camera.error}` : "");

    parts.conditions.replaceChildren(
      ...(source.conditions.length
        ? source.conditions.map((c) => el("span", {class: "chip", title: `${c.alert}: ${c.detail}`, text: c.name}))
        : [el("span", {class: "chip ok", text: frames ? "no condition holds" : "no recent frames"})])
    );

    for (const [signal, , digits, thresholdName, lowerIsWorse, log] of SIGNALS) {
      const mean = source.recent.means[signal];
      const threshold = thresholdName ? thresholds[thresholdName] : null;
      const value = entry.values.get(signal);
      value.textContent = fmt(mean, digits);
      value.classList.toggle("bad", threshold != null && mean != null && (lowerIsWorse ? mean < threshold : mean > threshold));
      plot(entry.charts.get(signal), source.series, signal, threshold, log);
    }
    renderDrift(parts.drift, source.drift, thresholds);
    renderEvidence(entry, samples);
  }

  function plot(chart, series, signal, threshold, log) {
    const t = series.t;
    const values = series.values[signal];
    chart.node.hidden = values.every((v) => v == null);
    if (chart.node.hidden) return; // no frames in the last minutes: no chart
    const data = [t, values];
    if (threshold != null) data.push(t.map(() => threshold));
    chart.sparse = values.filter((v) => v != null).length < 40; // few frames: mark each point
    const width = Math.max(120, chart.node.clientWidth || 240);
    if (chart.plot === null) {
      const step = t.length > 1 ? t[1] - t[0] : 5;
      const lines = [{}, {stroke: "#2563eb", width: 1.5, spanGaps: false,
        points: {show: () => chart.sparse, size: 5, fill: "#2563eb"}}];
      if (threshold != null) lines.push({stroke: "#dc2626", width: 1, dash: [4, 4], points: {show: false}});
      chart.plot = new uPlot({
        width, height: 56,
        legend: {show: false},
        cursor: {show: false},
        // The last step is still filling: leave room for it on the right.
        scales: {x: {time: true, range: (u, min, max) => [min, max + step]}, y: log ? {distr: 3} : {}},
        axes: [{show: false}, {size: 42, font: "10px system-ui", gap: 2, ticks: {show: false}, grid: {stroke: "#eef0f3"}}],
        series: lines,
      }, data, chart.node);
    } else {
      if (Math.abs(chart.plot.width - width) > 2) chart.plot.setSize({width, height: 56});
      chart.plot.setData(data);
    }
  }

  function renderDrift(node, drift, thresholds) {
    if (!drift || !drift.baseline) {
      node.replaceChildren(el("p", {class: "none muted",
        text: drift
          ? `drift: no ${drift.regime} baseline yet (window ${drift.window_size} ${drift.regime} frames)`
          : "drift: no frames yet"}));
      return;
    }
    const rows = Object.entries(drift.scores).map(([signal, s]) => el("tr", {},
      el("td", {text: signal}),
      el("td", {class: s.psi > thresholds.drift_psi ? "bad" : "", text: fmt(s.psi, 3)}),
      el("td", {class: s.ks > thresholds.drift_ks ? "bad" : "", text: fmt(s.ks, 3)})));
    node.replaceChildren(
      el("h3", {text: `Drift against the ${drift.regime} baseline (window ${drift.window_size} frames)`}),
      ...(drift.alerted ? [] : [el("p", {class: "note muted", text: "a transition: shown, not alerted on"})]),
      rows.length
        ? el("table", {class: "drift"}, el("thead", {}, el("tr", {},
            el("th", {text: "signal"}), el("th", {text: "PSI"}), el("th", {text: "KS"}))), el("tbody", {}, ...rows))
        : el("p", {class: "none muted", text: "too few frames in the window for scores"})
    );
  }

  const KEY_VALUE = {
    darkest: (s) => `brightness ${fmt(s.quality.brightness, 3)}`,
    blurriest: (s) => `sharpness ${fmt(s.quality.sharpness, 0)}`,
    noisiest: (s) => `noise σ ${fmt(s.quality.noise_sigma, 1)}`,
    lowest_confidence: (s) => `confidence ${fmt(s.mean_confidence, 2)}`,
  };

  function renderEvidence(entry, list) {
    const key = list.samples.map((s) => `${s.id}:${s.kinds.join(",")}`).join(" ");
    if (key === entry.samples) {
      // Same frames: only the ages in the captions move.
      for (const node of entry.parts.evidence.querySelectorAll("[data-time]")) {
        node.textContent = ago(Number(node.dataset.time));
      }
      return;
    }
    entry.samples = key;
    if (!list.samples.length) {
      entry.parts.evidence.replaceChildren(el("p", {class: "none muted",
        text: list.evidence ? "none kept yet" : "evidence frames are switched off"}));
      return;
    }
    entry.parts.evidence.replaceChildren(...list.samples.map((s) => {
      const frame = el("a", {class: "frame", href: s.image_url, target: "_blank", rel: "noopener"},
        el("img", {src: s.image_url, alt: `${s.kinds.join(", ")} frame of ${list.source}`, loading: "lazy",
          width: String(s.image_width), height: String(s.image_height)}));
      for (const d of s.detections) {
        const [x1, y1, x2, y2] = d.box_xyxy;
        const box = el("span", {class: "box", title: `${d.class_name} ${d.confidence.toFixed(2)}`});
        box.style.left = `${(100 * x1) / s.width}%`;
        box.style.top = `${(100 * y1) / s.height}%`;
        box.style.width = `${(100 * (x2 - x1)) / s.width}%`;
        box.style.height = `${(100 * (y2 - y1)) / s.height}%`;
        frame.append(box);
      }
      const detail = s.kinds.map((k) => KEY_VALUE[k]).find(Boolean);
      const names = s.kinds.map((k) => (list.onsets.includes(k) ? `${k} began` : k));
      return el("figure", {"data-sample": s.id, title: s.kinds.map((k) => list.descriptions[k]).join("; ")}, frame,
        el("figcaption", {}, el("b", {text: names.join(" · ")}),
          el("span", {"data-time": String(s.time), text: ago(s.time)}),
          detail ? el("span", {text: ` · ${detail(s)}`}) : null));
    }));
  }

  // -- start ------------------------------------------------------------------------------------

  async function start() {
    $("login-form").addEventListener("submit", logIn);
    $("logout").addEventListener("click", logOut);
    document.addEventListener("visibilitychange", () => { if (!document.hidden && $("login").hidden) run(); });
    window.addEventListener("hashchange", () => { focused = false; focusFromHash(); });
    fetch("/readyz").then((r) => r.json()).then((ready) => {
      $("model").textContent = ready.ready ? `${ready.model} on ${ready.device}` : `model loading (${ready.model})`;
    }).catch(() => {});
    const session = await api("/v1/session");
    $("logout").hidden = !session.required || !session.authenticated;
    if (session.required && !session.authenticated) showLogin();
    else run();
  }

  start().catch((error) => { $("status").textContent = `Could not start: ${error.message}`; });
})();
