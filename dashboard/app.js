// app.js -- kitgate's dashboard: renders the summary the plugin streams over server-sent events
// (/api/v1/events: status and recent rejections, bounded whatever the number of kits), and on each
// event (at most once a second) fetches the page of kits shown (/api/v1/kits?prefix=&offset=&limit=,
// sorted by serial), the selected kit with its streams and the generic streams; charts one stream
// with uPlot, sends test measurements and looks up client ids. No framework, no build step.
'use strict';

const $ = (s) => document.querySelector(s);
const fmt = (v, d = 3) => (v === null || v === undefined) ? '–' : (+v).toFixed(d).replace(/\.?0+$/, '');
const bytes = (n) => n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(1) + ' MiB';
const ago = (ms, now) => {
  if (!ms) return '–';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  return s < 60 ? s + ' s ago' : s < 3600 ? Math.round(s / 60) + ' min ago' : new Date(ms).toLocaleString();
};
function cell(tr, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

let state = null;             // the summary: {now, status, rejections}
let kits = [];                // the page of kits shown
let kitTotal = 0;
let kitOffset = 0;
let kitPrefix = '';
let detail = null;            // the selected kit, with its streams
let generic = [];             // generic stats topics' streams
const PAGE = 50;
let selected = null;          // kit serial
let selStream = null;         // stream topic charted
const history = new Map();    // stream topic -> {t: [], latest: [], avg1: []}
const HISTORY_MAX = 720;
let plot = null;

function remember(now, s) {
  let h = history.get(s.topic);
  if (!h) history.set(s.topic, h = { t: [], latest: [], avg1: [] });
  h.t.push(now / 1000);
  h.latest.push(s.latest);
  h.avg1.push(s.avg_1min);
  if (h.t.length > HISTORY_MAX) { h.t.shift(); h.latest.shift(); h.avg1.shift(); }
}

function renderHealth(st) {
  const rej = Object.values(st.rejected).reduce((a, b) => a + b, 0);
  $('#h-accepted').textContent = st.accepted;
  $('#h-rejected').textContent = rej;
  $('#h-kits').textContent = `${st.kits.online} / ${st.kits.known}`;
  const sink = $('#h-sink');
  sink.textContent = `${st.sink.kind} ${st.sink.kind === 'none' ? '' : st.sink.connected ? 'connected' : 'DOWN'}`;
  sink.className = st.sink.kind === 'none' || st.sink.connected ? '' : 'off';
  $('#h-queue').textContent = st.queue_depth + (st.spilling ? ' (spilling)' : '');
  $('#h-lag').textContent = st.sink.lag_records;
  $('#h-spool').textContent = st.spool.enabled ? `${bytes(st.spool.bytes)} (${bytes(st.spool.backlog_bytes)} behind)` : 'off';
  const tb = $('#reasons tbody');
  tb.replaceChildren();
  for (const [reason, n] of Object.entries(st.rejected)) {
    const tr = document.createElement('tr');
    cell(tr, reason);
    cell(tr, n, n ? 'off' : 'muted');
    tb.appendChild(tr);
  }
}

function renderKits(now) {
  const tb = $('#kits tbody');
  tb.replaceChildren();
  $('#kit-range').textContent = kitTotal ? `${kitOffset + 1}–${kitOffset + kits.length} of ${kitTotal}` : 'no kits';
  $('#kit-prev').disabled = kitOffset === 0;
  $('#kit-next').disabled = kitOffset + kits.length >= kitTotal;
  for (const k of kits) {
    const tr = document.createElement('tr');
    tr.dataset.serial = k.serial;
    if (k.serial === selected) tr.className = 'sel';
    cell(tr, k.serial);
    const b = document.createElement('span');
    b.className = 'badge ' + (k.online ? 'on' : 'off');
    b.textContent = k.online ? 'online' : 'offline';
    cell(tr, '').appendChild(b);
    cell(tr, k.client_id || '–');
    cell(tr, ago(k.last_seen, now));
    cell(tr, k.accepted);
    const rej = Object.entries(k.rejected).filter(([, n]) => n).map(([r, n]) => `${r}: ${n}`).join(', ');
    cell(tr, rej || '0', rej ? 'off' : 'muted');
    tr.addEventListener('click', () => select(k.serial));
    tb.appendChild(tr);
  }
  if (!selected && kits.length) select(kits[0].serial, true);
}

function select(serial, quiet) {
  if (selected !== serial) detail = kits.find((k) => k.serial === serial) || null;
  selected = serial;
  selStream = null;
  const f = document.forms['test-form'];
  if (!quiet || !f.serial.value) f.serial.value = serial;
  render();
  refresh(true);
}

function renderDetail() {
  const kit = detail && detail.serial === selected ? detail : null;
  $('#kit-detail').hidden = !kit;
  if (!kit) return;
  $('#kd-serial').textContent = kit.serial;
  const tb = $('#streams tbody');
  tb.replaceChildren();
  const streams = [...kit.streams].sort((a, b) => a.peripheral - b.peripheral || a.quantity_type - b.quantity_type);
  if (!selStream && streams.length) selStream = streams[0].topic;
  for (const s of streams) {
    const tr = document.createElement('tr');
    tr.dataset.topic = s.topic;
    if (s.topic === selStream) tr.className = 'sel';
    cell(tr, s.peripheral); cell(tr, s.quantity_type); cell(tr, fmt(s.latest));
    cell(tr, fmt(s.avg_1min)); cell(tr, fmt(s.avg_5min)); cell(tr, fmt(s.avg_30min)); cell(tr, s.count_30min);
    tr.addEventListener('click', () => { selStream = s.topic; render(); });
    tb.appendChild(tr);
  }
  drawChart();
}

function drawChart() {
  const h = selStream && history.get(selStream);
  const el = $('#chart');
  if (!h || typeof uPlot === 'undefined') return;
  const data = [h.t, h.latest, h.avg1];
  const width = Math.max(280, el.clientWidth - 2);
  if (!plot || plot._topic !== selStream) {
    if (plot) plot.destroy();
    plot = new uPlot({
      width, height: 220, title: selStream,
      series: [{}, { label: 'latest', stroke: '#1f5eff', width: 2 }, { label: 'avg 1 min', stroke: '#137333', dash: [6, 4] }],
      axes: [{}, { size: 60 }],
    }, data, el);
    plot._topic = selStream;
  } else {
    plot.setData(data);
  }
}

function renderGeneric() {
  const tb = $('#generic tbody');
  tb.replaceChildren();
  for (const s of generic) {
    const tr = document.createElement('tr');
    cell(tr, s.topic); cell(tr, fmt(s.latest)); cell(tr, fmt(s.avg_1min)); cell(tr, fmt(s.avg_5min)); cell(tr, fmt(s.avg_30min));
    tb.appendChild(tr);
  }
}

function renderRejections() {
  const tb = $('#rejections tbody');
  tb.replaceChildren();
  for (const r of state.rejections.slice(0, 50)) {
    const tr = document.createElement('tr');
    cell(tr, new Date(r.at).toLocaleTimeString()); cell(tr, r.serial); cell(tr, r.reason, 'off');
    cell(tr, r.detail); cell(tr, r.topic);
    tb.appendChild(tr);
  }
}

function render() {
  if (!state) return;
  renderHealth(state.status);
  renderKits(state.now);
  renderDetail();
  renderGeneric();
  renderRejections();
}

function onState(s) {
  state = s;
  render();
  refresh(false);
}

// The page of kits, the selected kit and the generic streams: fetched on each event, at most once
// a second (now = at once, e.g. after a click or a search).
let lastRefresh = 0;
let inFlight = false;
let again = false;
async function refresh(now) {
  if (inFlight) { again = again || now; return; }
  if (!now && Date.now() - lastRefresh < 1000) return;
  inFlight = true;
  lastRefresh = Date.now();
  try {
    const q = new URLSearchParams({ offset: kitOffset, limit: PAGE });
    if (kitPrefix) q.set('prefix', kitPrefix);
    const [rk, rd, rg] = await Promise.all([
      fetch(`api/v1/kits?${q}`),
      selected ? fetch(`api/v1/kits/${encodeURIComponent(selected)}`) : null,
      fetch('api/v1/streams?limit=100'),
    ]);
    const t = Date.now();
    if (rk.ok) { kits = await rk.json(); kitTotal = +(rk.headers.get('X-Total-Count') || kits.length); }
    if (rd && rd.ok) { detail = await rd.json(); for (const st of detail.streams) remember(t, st); }
    if (rg.ok) { generic = await rg.json(); for (const st of generic) remember(t, st); }
    render();
  } catch (e) {
    // the next event retries
  } finally {
    inFlight = false;
    if (again) { again = false; refresh(true); }
  }
}

function page(delta) {
  kitOffset = Math.max(0, Math.min(kitOffset + delta, Math.max(0, kitTotal - 1)));
  refresh(true);
}
let searchTimer = null;
function onSearch() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => { kitPrefix = $('#kit-search').value.trim(); kitOffset = 0; refresh(true); }, 200);
}

function connect() {
  const es = new EventSource('api/v1/events');
  const conn = $('#conn');
  es.addEventListener('state', (e) => {
    conn.textContent = 'live';
    conn.className = 'badge on';
    onState(JSON.parse(e.data));
  });
  es.onerror = () => { conn.textContent = 'reconnecting…'; conn.className = 'badge off'; };
}

async function sendTest(ev) {
  ev.preventDefault();
  const f = ev.target;
  const out = $('#test-result');
  const m = {
    id: crypto.randomUUID ? crypto.randomUUID() : uuid4(), kitSerial: '', datetime: Date.now(),
    peripheral: +f.peripheral.value, quantityType: +f.quantityType.value, value: +f.value.value,
  };
  out.className = '';
  out.textContent = 'sending…';
  try {
    const r = await fetch(`api/v1/kits/${encodeURIComponent(f.serial.value.trim())}/test-measurement`,
      { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(m) });
    const j = await r.json();
    if (r.status === 202) {
      out.className = 'ok';
      out.textContent = `accepted ${j.id} on ${j.topic}`;
      out.dataset.id = j.id;
      selected = f.serial.value.trim();
    } else {
      out.className = 'err';
      out.textContent = `${r.status} ${j.reason || j.error}${j.detail ? ' (' + j.detail + ')' : ''}`;
    }
  } catch (e) {
    out.className = 'err';
    out.textContent = 'failed: ' + e;
  }
}

function uuid4() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

async function lookup(ev) {
  ev.preventDefault();
  const cid = ev.target.cid.value.trim();
  const r = await fetch(`api/v1/clients/${encodeURIComponent(cid)}`);
  const j = await r.json();
  $('#lookup-result').textContent = r.ok
    ? `${cid} → kit ${j.kit.serial}, ${j.kit.online ? 'online' : 'offline'}, ${j.kit.address || '?'}, MQTT v${j.kit.protocol_version}, accepted ${j.kit.accepted}`
    : `${cid}: ${j.message || j.error}`;
  if (r.ok) select(j.kit.serial);
}

document.forms['test-form'].addEventListener('submit', sendTest);
$('#kit-search').addEventListener('input', onSearch);
$('#kit-prev').addEventListener('click', () => page(-PAGE));
$('#kit-next').addEventListener('click', () => page(PAGE));
document.forms['lookup-form'].addEventListener('submit', lookup);
window.addEventListener('resize', () => { if (plot) plot.setSize({ width: Math.max(280, $('#chart').clientWidth - 2), height: 220 }); });
fetch('api/v1/status').then((r) => r.ok ? r.json() : null).then((st) => {
  if (st && !state) onState({ now: Date.now(), status: st, rejections: [] });
});
connect();
