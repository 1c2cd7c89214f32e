// The live chart page: draws /chart/<token>/data with Lightweight Charts and follows /chart/<token>/live.
// Everything drawn comes from the server's chart spec (the same one the PNG chart is drawn from);
// this script only lays it out, keeps the last bar moving and marks the plan's events.
(function () {
  "use strict";
  const LWC = window.LightweightCharts;
  const boot = JSON.parse(document.body.dataset.boot || "{}");
  const base = window.location.pathname.replace(/\/+$/, "");
  const $ = (id) => document.getElementById(id);
  const STYLE = { "-": 0, ":": 1, "--": 2, "-.": 3 };
  // data age thresholds of the pill (seconds): green up to FRESH, yellow up to STALE, red beyond
  const FRESH = 15, STALE = 60;

  // what tests and curious traders can read from the console
  const state = (window.coachChart = {
    ready: false, interval: null, priceLines: [], moreLines: [], lines: [], bands: [], markers: [],
    lastBar: null, pill: { text: "", level: "grey", age: null }, updates: 0, planState: null, error: null,
  });

  let chart = null, candles = null, volume = null, markersApi = null, bandsPrim = null;
  let data = null, source = null, ageAt = null, ageBase = null;
  let priceLines = [], moreLines = [], planStatus = "";

  function fmt(p) {
    const tick = (data && data.tick) || 0.01;
    const d = Math.max(0, Math.min(6, Math.round(-Math.log10(tick))));
    return Number(p).toFixed(p >= 1000 ? Math.min(d, 2) : d);
  }
  function ago(s) {
    if (s < 60) return Math.round(s) + "s";
    if (s < 3600) return Math.round(s / 60) + "m";
    if (s < 86400 * 2) return Math.round(s / 3600) + "h";
    return Math.round(s / 86400) + "d";
  }

  // --- zones as bands: a series primitive drawing translucent rectangles behind the candles
  class Bands {
    constructor() { this.items = []; this.series = null; this.chart = null; this.request = null; }
    attached(p) { this.series = p.series; this.chart = p.chart; this.request = p.requestUpdate; }
    detached() { this.series = null; }
    set(items) { this.items = items; if (this.request) this.request(); }
    updateAllViews() {}
    paneViews() {
      const self = this;
      return [{
        zOrder() { return "bottom"; },
        renderer() {
          return {
            draw(target) {
              if (!self.series) return;
              target.useBitmapCoordinateSpace((scope) => {
                const ctx = scope.context, hr = scope.horizontalPixelRatio, vr = scope.verticalPixelRatio;
                for (const b of self.items) {
                  const y1 = self.series.priceToCoordinate(b.high), y2 = self.series.priceToCoordinate(b.low);
                  if (y1 === null || y2 === null) continue;
                  let x1 = 0;
                  if (b.from !== null && b.from !== undefined) {
                    const x = self.chart.timeScale().timeToCoordinate(b.from);
                    x1 = x === null ? 0 : Math.max(0, x);
                  }
                  ctx.globalAlpha = Math.min(0.35, (b.alpha || 0.16) + 0.04);
                  ctx.fillStyle = b.color;
                  ctx.fillRect(Math.round(x1 * hr), Math.round(Math.min(y1, y2) * vr),
                    Math.round(scope.bitmapSize.width - x1 * hr), Math.max(1, Math.round(Math.abs(y2 - y1) * vr)));
                  ctx.globalAlpha = 1;
                }
              });
            },
          };
        },
      }];
    }
  }

  function makeChart(th) {
    const el = $("chart");
    el.innerHTML = "";
    chart = LWC.createChart(el, {
      autoSize: true,
      layout: { background: { color: th.bg }, textColor: th.text, fontSize: 12,
        fontFamily: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", attributionLogo: true },
      grid: { vertLines: { color: th.grid }, horzLines: { color: th.grid } },
      rightPriceScale: { borderColor: th.grid, scaleMargins: { top: 0.06, bottom: 0.2 } },
      timeScale: { borderColor: th.grid, timeVisible: true, secondsVisible: false, rightOffset: 8 },
      crosshair: { mode: 0 },
      localization: { priceFormatter: fmt },
    });
    candles = chart.addSeries(LWC.CandlestickSeries, {
      upColor: th.up, downColor: th.down, borderVisible: false, wickUpColor: th.up, wickDownColor: th.down,
      priceLineVisible: false,
      // the plan's price range stays in view however the bars move (focus on the plan)
      autoscaleInfoProvider: (orig) => {
        const r = orig();
        if (!data || !data.focus || !r || !r.priceRange || !state.focusPrices) return r;
        return { priceRange: {
          minValue: Math.min(r.priceRange.minValue, data.focus.low),
          maxValue: Math.max(r.priceRange.maxValue, data.focus.high),
        }, margins: r.margins };
      },
    });
    volume = chart.addSeries(LWC.HistogramSeries, {
      priceScaleId: "vol", priceFormat: { type: "volume" }, priceLineVisible: false, lastValueVisible: false,
    });
    chart.priceScale("vol").applyOptions({ scaleMargins: { top: 0.84, bottom: 0 } });
    markersApi = LWC.createSeriesMarkers(candles, []);
    bandsPrim = new Bands();
    candles.attachPrimitive(bandsPrim);
  }

  const isPlan = (lv) => lv.role === "entry" || lv.role === "stop" || lv.role === "target";
  function drawLines(levels, list) {
    // the plan's lines last, so a level at the same price (ORH at the entry) cannot hide them
    const ordered = levels.filter((lv) => !isPlan(lv)).concat(levels.filter(isPlan));
    for (const lv of ordered) {
      list.push(candles.createPriceLine({
        price: lv.price, color: lv.color, lineWidth: isPlan(lv) ? 2 : 1,
        lineStyle: STYLE[lv.style] !== undefined ? STYLE[lv.style] : 2,
        axisLabelVisible: true, title: lv.label, lineVisible: true,
      }));
    }
  }

  function bandLabels(bands, list) {
    // a zone is named in the price gutter at its middle, like the chart image's right-edge labels
    for (const b of bands) {
      if (!b.label || b.kind === "entry_zone") continue;
      list.push(candles.createPriceLine({ price: (b.low + b.high) / 2, color: b.color, lineVisible: false,
        axisLabelVisible: true, title: b.label }));
    }
  }

  function setMore(on) {
    state.more = on;
    for (const pl of moreLines) candles.removePriceLine(pl);
    moreLines = [];
    if (on) { drawLines(data.more_levels, moreLines); bandLabels(data.more_bands, moreLines); }
    bandsPrim.set(on ? data.bands.concat(data.more_bands) : data.bands);
    state.moreLines = on ? data.more_levels.map((l) => ({ title: l.label, price: l.price, kind: l.kind })) : [];
  }

  function focus() {
    if (!data) return;
    state.focusPrices = true;
    const f = data.focus, c = data.candles;
    const idx = (t) => { let i = c.findIndex((b) => b.time >= t); return i < 0 ? c.length - 1 : i; };
    // the PNG's window, plus room on the right for the newest bars, their markers and labels
    const from = idx(f.from), to = Math.max(idx(f.to), c.length - 1);
    chart.timeScale().setVisibleLogicalRange({ from, to: to + Math.max(12, Math.round((to - from) * 0.18)) });
    chart.priceScale("right").applyOptions({ autoScale: true });
  }

  function legend() {
    // built with the DOM, not markup: the page's CSP allows no inline style attributes
    const box = document.createElement("span");
    box.className = "legend";
    for (const l of data.lines) {
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.setProperty("--c", l.color);
      box.appendChild(sw);
      box.appendChild(document.createTextNode(l.label));
    }
    return box;
  }

  function render(d) {
    data = d;
    makeChart(d.theme);
    candles.setData(d.candles);
    volume.setData(d.volume);
    state.lines = [];
    for (const ln of d.lines) {
      const s = chart.addSeries(LWC.LineSeries, {
        color: ln.color, lineWidth: Math.max(1, Math.round(ln.width)), title: ln.label,
        priceLineVisible: false, lastValueVisible: true, crosshairMarkerVisible: false,
      });
      s.setData(ln.data);
      state.lines.push({ label: ln.label, color: ln.color, points: ln.data.filter((p) => "value" in p).length });
    }
    priceLines = [];
    bandLabels(d.bands, priceLines);
    drawLines(d.levels, priceLines);
    state.priceLines = d.levels.map((l) => ({ title: l.label, price: l.price, role: l.role, text: l.text }));
    setMore($("more").checked);
    state.bands = d.bands.map((b) => ({ label: b.label, low: b.low, high: b.high }));
    $("title").textContent = d.title;
    const chip = $("direction");
    chip.hidden = !d.direction;
    chip.textContent = d.direction ? d.direction.toUpperCase() : "";
    chip.className = "chip " + (d.direction || "");
    $("refocus").textContent = d.plan ? "Focus plan" : "Reset view";
    $("subtitle").innerHTML = "";
    for (const [text, color] of d.subtitle) {
      const s = document.createElement("span");
      s.textContent = text;
      s.style.color = color;
      $("subtitle").appendChild(s);
    }
    $("subtitle").appendChild(legend());
    $("footer").textContent = [d.footer, d.footer_right].filter(Boolean).join(" · ");
    const last = d.candles[d.candles.length - 1];
    state.lastBar = Object.assign({}, last, { volume: d.volume[d.volume.length - 1].value });
    ageBase = d.data_age_s; ageAt = performance.now();
    if (d.last_price && d.last_price.time >= last.time) applyPrice(d.last_price, false);
    banner();
    applyState(d.state);
    focus();
    state.interval = d.interval;
    state.ready = true;
    tickPill();
  }

  function banner() {
    const s = data.session;
    const words = { open: "market open", pre: "pre-market", post: "after hours", closed: "market closed" };
    let text = `${words[s.status] || s.status} · bars as of ${new Date(s.as_of).toLocaleString("en-US",
      { timeZone: s.tz, month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false })} ET · ${s.source}`;
    if (s.status !== "open") {
      text += ` · next open ${new Date(s.next_open).toLocaleString("en-US",
        { timeZone: s.tz, weekday: "short", hour: "2-digit", minute: "2-digit", hour12: false })} ET`;
    }
    if (data.plan) text += ` · plan ${data.plan.plan_id} v${data.plan.version}`;
    if (planStatus) text += ` · ${planStatus}`;
    $("banner").textContent = text;
    $("banner").dataset.planStatus = planStatus;
  }

  // --- live prices: move the last bar (or open the next one) and reset the data age
  function applyPrice(p, live) {
    const iv = data.interval_seconds;
    let bar = state.lastBar;
    if (!bar) return;
    if (p.time < bar.time) return; // an older print than the bar shown
    if (p.time >= bar.time + iv) {
      const k = Math.floor((p.time - bar.time) / iv);
      bar = { time: bar.time + k * iv, open: p.price, high: p.price, low: p.price, close: p.price, volume: 0 };
    }
    bar.high = Math.max(bar.high, p.price, p.bar ? p.bar.high : p.price);
    bar.low = Math.min(bar.low, p.price, p.bar ? p.bar.low : p.price);
    bar.close = p.price;
    bar.volume = (bar.volume || 0) + (p.size || 0);
    state.lastBar = bar;
    candles.update({ time: bar.time, open: bar.open, high: bar.high, low: bar.low, close: bar.close });
    volume.update({ time: bar.time, value: bar.volume, color: bar.close >= bar.open ? "#1f6f68" : "#8e3434" });
    ageBase = p.age_s; ageAt = performance.now();
    if (live) state.updates += 1;
    tickPill();
  }

  function tickPill() {
    if (ageBase === null) return;
    const age = ageBase + (performance.now() - ageAt) / 1000;
    const level = age <= FRESH ? "green" : age <= STALE ? "yellow" : "red";
    const text = `${state.updates ? "live" : "data"} · ${ago(age)} old`;
    const pill = $("pill");
    pill.className = "pill " + level;
    pill.textContent = text;
    pill.title = `newest price ${ago(age)} old (green ≤ ${FRESH}s, yellow ≤ ${STALE}s, red beyond)`;
    state.pill = { text, level, age };
  }

  // --- the plan's events as markers, worked out from its tracked state and the bars
  function barAt(t) {
    // bars opened by live prices count too: an event after the loaded bars marks the bar it happened in
    const lb = state.lastBar;
    if (lb && lb.time > data.candles[data.candles.length - 1].time && t >= lb.time) return lb.time;
    const c = data.candles;
    let lo = 0, hi = c.length - 1;
    if (t <= c[0].time) return c[0].time;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (c[mid].time <= t) lo = mid; else hi = mid - 1; }
    return c[lo].time;
  }
  function applyState(st) {
    state.planState = st;
    if (!data.plan) { markersApi.setMarkers(specMarkers()); return; }
    const th = data.theme, p = data.plan, long = p.direction === "long";
    const marks = specMarkers();
    if (st && st.entry_at) {
      const t = barAt(st.entry_at);
      marks.push({ time: t, position: long ? "belowBar" : "aboveBar", shape: long ? "arrowUp" : "arrowDown",
        color: th.entry, text: `Triggered ${fmt(p.entry)}` });
      // a target is marked on the first bar since the trigger that reached it (the live bar included)
      const bars = data.candles.slice();
      const lb = state.lastBar;
      if (lb && lb.time > bars[bars.length - 1].time) bars.push(lb);
      let from = Math.max(0, bars.findIndex((c) => c.time >= t));
      for (let k = 0; k < (st.targets_hit || 0) && k < p.targets.length; k++) {
        const tgt = p.targets[k];
        const i = bars.slice(from).findIndex((c) => (long ? c.high >= tgt : c.low <= tgt));
        if (i < 0) break;
        from += i;
        marks.push({ time: bars[from].time, position: long ? "aboveBar" : "belowBar", shape: "circle",
          color: th.target, text: `T${k + 1} hit ${fmt(tgt)}` });
      }
    }
    if (st && st.exit_at) {
      const words = { stopped: "Stopped", exited: "Exited", expired: "Expired", invalidated: "Invalidated" };
      const stopped = st.status === "stopped";
      marks.push({ time: barAt(st.exit_at), position: long ? "aboveBar" : "belowBar", shape: "square",
        color: stopped ? th.stop : th.muted, text: `${words[st.status] || st.status} ${st.exit_price ? fmt(st.exit_price) : ""}`.trim() });
    }
    if (st && st.replan) {
      const at = st.exit_at ? barAt(st.exit_at) : data.candles[data.candles.length - 1].time;
      marks.push({ time: at, position: "inBar", shape: "circle", color: "#f5c542", text: `Re-plan ${st.replan.plan_id}` });
    }
    marks.sort((a, b) => a.time - b.time);
    markersApi.setMarkers(marks);
    state.markers = marks.map((m) => m.text);
    replanBox(st && st.replan);
    planStatus = st ? (st.tracked ? st.status : "not tracked") : "";
    banner();
  }
  function specMarkers() {
    // when the plan was made: on the other side of the bars from where its trigger is marked
    const pos = data.plan && data.plan.direction === "short" ? "belowBar" : "aboveBar";
    return data.markers.map((m) => ({ time: m.time, position: pos, shape: "circle", color: m.color, text: m.label }));
  }
  function replanBox(rp) {
    const box = $("replan");
    if (!rp) { box.hidden = true; box.innerHTML = ""; return; }
    box.hidden = false;
    box.innerHTML = "";
    const t = document.createElement("span");
    t.textContent = `Re-plan ${rp.plan_id}: ${rp.direction} entry ${fmt(rp.entry)}, stop ${fmt(rp.stop)}, ` +
      `targets ${rp.targets.map(fmt).join(", ")}` + (rp.adopted ? " · adopted" : "");
    box.appendChild(t);
    const open = document.createElement("a");
    open.href = rp.url; open.textContent = "Open re-plan chart"; open.className = "button";
    box.appendChild(open);
    if (!rp.adopted) {
      const adopt = document.createElement("button");
      adopt.type = "button"; adopt.className = "button primary"; adopt.textContent = `Adopt: ${rp.command}`;
      adopt.title = "Copies the command: paste it in the chat (or click Adopt on the re-plan message)";
      adopt.addEventListener("click", () => {
        if (navigator.clipboard) navigator.clipboard.writeText(rp.command).catch(() => {});
        adopt.textContent = `Copied ${rp.command}: paste it in the chat`;
      });
      box.appendChild(adopt);
    }
  }

  // --- loading and following
  function showError(msg) {
    state.error = msg;
    const e = $("error");
    e.hidden = false;
    e.textContent = msg;
  }

  async function load(interval) {
    if (source) { source.close(); source = null; }
    state.ready = false;
    let resp;
    try {
      resp = await fetch(`${base}/data?interval=${encodeURIComponent(interval)}`, { cache: "no-store" });
    } catch (err) {
      showError("The chart server is not answering; try again shortly.");
      return;
    }
    const d = await resp.json().catch(() => ({ error: "the chart server answered something unreadable" }));
    if (!resp.ok) { showError(d.error || `the chart server answered ${resp.status}`); return; }
    $("error").hidden = true;
    for (const b of document.querySelectorAll("#intervals button")) b.classList.toggle("on", b.dataset.iv === interval);
    render(d);
    follow(interval);
  }

  function follow(interval) {
    source = new EventSource(`${base}/live?interval=${encodeURIComponent(interval)}`);
    source.addEventListener("price", (ev) => applyPrice(JSON.parse(ev.data), true));
    source.addEventListener("status", (ev) => {
      const s = JSON.parse(ev.data);
      if (s.last && state.lastBar && s.last.time >= state.lastBar.time) { ageBase = s.last.age_s; ageAt = performance.now(); }
      if ("state" in s) applyState(s.state);
      tickPill();
    });
    source.addEventListener("expired", (ev) => {
      source.close();
      showError(JSON.parse(ev.data).reason);
    });
  }

  function init() {
    if (!LWC) { showError("the chart library did not load"); return; }
    const ivs = boot.intervals || [];
    for (const iv of ivs) {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = iv; b.dataset.iv = iv;
      b.addEventListener("click", () => load(iv));
      $("intervals").appendChild(b);
    }
    $("more").addEventListener("change", (e) => setMore(e.target.checked));
    $("refocus").addEventListener("click", focus);
    setInterval(tickPill, 1000);
    load(ivs[0]);
  }
  init();
})();
