// app.js -- kitgate's dashboard: renders the state the plugin streams over server-sent events
// (/api/v1/events; the same document as /api/v1/state), charts one stream with uPlot, sends test
// measurements and looks up client ids through the JSON API. No framework, no build step.
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

let state = null;
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
  for (const k of state.kits) {
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
  if (!selected && state.kits.length) select(state.kits[0].serial, true);
}

function select(serial, quiet) {
  selected = serial;
  selStream = null;
  const f = document.forms['test-form'];
  if (!quiet || !f.serial.value) f.serial.value = serial;
  render();
}

function renderDetail() {
  const kit = state.kits.find((k) => k.serial === selected);
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
  for (const s of state.streams) {
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
  for (const k of s.kits) for (const st of k.streams) remember(s.now, st);
  for (const st of s.streams) remember(s.now, st);
  render();
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
document.forms['lookup-form'].addEventListener('submit', lookup);
window.addEventListener('resize', () => { if (plot) plot.setSize({ width: Math.max(280, $('#chart').clientWidth - 2), height: 220 }); });
fetch('api/v1/state').then((r) => r.ok ? r.json() : null).then((s) => { if (s && !state) onState(s); });
connect();
