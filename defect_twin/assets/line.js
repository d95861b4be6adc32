// The line twin's dashboard: station tiles, alarms, Pareto, control charts. Live by server-sent events
// (/api/v1/line/stream), polling every 2 s if the stream fails. Uses the API key from ?key= or the prompt.
const $ = id => document.getElementById(id);
const params = new URLSearchParams(location.search);
let key = params.get('key') || sessionStorage.getItem('twin_key') || '';
let chartStation = null, lastVersion = -1, source = null, pollTimer = null;
const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));

async function api(path, opts = {}) {
  const headers = Object.assign({'Content-Type': 'application/json'}, opts.headers || {});
  if (key) headers['X-API-Key'] = key;
  const r = await fetch('/api/v1' + path, Object.assign({}, opts, {headers}));
  if (r.status === 401) { $('keybox').hidden = false; throw new Error('API key required'); }
  if (!r.ok) throw new Error(r.status + ' ' + (await r.text()));
  return r.json();
}

function tiles(snap) {
  $('title').textContent = 'line twin: ' + snap.line;
  $('station-tiles').innerHTML = snap.stations.map(s => {
    const y = s.yield_ == null ? '-' : (100 * s.yield_).toFixed(1) + ' %';
    const la = s.last_alarm ? `<div class="alarm-line">${s.last_alarm.acked ? 'last alarm' : 'ALARM'}: ${esc(s.last_alarm.rule)} (#${s.last_alarm.id})</div>` : '';
    const ph = s.phase && !s.phase.monitoring ? `<div class="num">baseline ${esc(s.phase.rate)} parts</div>` : '';
    return `<div class="tile ${esc(s.state)} ${s.open_alarms ? 'alarm' : ''}" data-station="${esc(s.id)}"><h3>${esc(s.name)}</h3>
      <div class="state">${esc(s.state)}${s.reason ? ' - ' + esc(s.reason) : ''}</div>
      <div class="num">parts ${s.parts} - defects ${s.defects} - yield ${y}</div>${ph}${la}</div>`;
  }).join('');
  const sel = $('chart-station'), insp = snap.stations.filter(s => s.inspects);
  if (sel.options.length !== insp.length) {
    sel.innerHTML = insp.map(s => `<option value="${esc(s.id)}">${esc(s.name)}</option>`).join('');
    chartStation = chartStation || (insp[0] && insp[0].id);
    sel.value = chartStation;
  }
}

async function alarms() {
  const al = await api('/line/alarms?limit=50');
  $('no-alarms').hidden = al.length > 0;
  $('alarm-rows').innerHTML = al.map(a => `<tr class="alarm ${a.acked ? 'acked' : 'open'}" data-alarm="${a.id}"><td>${a.id}</td>
    <td>${new Date(a.raised * 1000).toLocaleString()}</td><td>${esc(a.station)}</td><td>${esc(a.rule)}</td><td>${esc(a.first_part)}</td>
    <td>${a.count}</td><td>${esc(a.action)}</td><td>${a.acked ? 'acked' : `<button data-ack="${a.id}">ack</button> <button data-ack="${a.id}" data-rb="1">ack + re-baseline</button>`}</td></tr>`).join('');
}

async function pareto() {
  const p = await api('/line/pareto'); const tot = p.reduce((a, b) => a + b.count, 0) || 1; let cum = 0;
  $('pareto').innerHTML = p.length ? '<table>' + p.map(r => { cum += r.count;
    return `<tr><td>${esc(r.type)}</td><td style="width:55%"><div style="background:#d62828;height:10px;width:${100 * r.count / p[0].count}%"></div></td><td>${r.count}</td><td>${(100 * cum / tot).toFixed(0)} %</td></tr>`; }).join('') + '</table>'
    : '<p class="muted">No defects yet.</p>';
}

function svgLines(series, opts = {}) {
  const all = series.flatMap(s => s.y.filter(v => v != null));
  if (!all.length) return '<p class="muted">waiting for the baseline</p>';
  let lo = Math.min(...all), hi = Math.max(...all); if (hi === lo) { hi += 1; lo -= 1; }
  const n = Math.max(...series.map(s => s.y.length)), W = 600, H = 160;
  const X = i => 30 + (W - 40) * (n > 1 ? i / (n - 1) : 0), Y = v => 10 + (H - 20) * (1 - (v - lo) / (hi - lo));
  const path = s => s.y.map((v, i) => v == null ? '' : `${i && s.y[i - 1] != null ? 'L' : 'M'}${X(i).toFixed(1)},${Y(v).toFixed(1)}`).join('');
  return `<svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none">` + series.map(s =>
    `<path d="${path(s)}" fill="none" stroke="${s.color}" stroke-width="${s.width || 1.5}" ${s.dash ? 'stroke-dasharray="4 3"' : ''}/>`).join('') +
    `<text x="2" y="14" font-size="11">${hi.toPrecision(3)}</text><text x="2" y="${H - 4}" font-size="11">${lo.toPrecision(3)}</text></svg>`;
}

async function charts() {
  if (!chartStation) return;
  const c = await api('/line/stations/' + encodeURIComponent(chartStation));
  const box = [], flat = (v, n) => Array(n).fill(v);
  if (c.pchart) { const n = c.pchart.points.length;
    box.push(['p-chart: defect share per ' + c.pchart.subgroup + ' parts', svgLines([{y: c.pchart.points, color: '#1d232b'},
      {y: flat(c.pchart.centre, n), color: '#2a9d4b', dash: 1}, {y: flat(c.pchart.ucl3, n), color: '#d62828', dash: 1}, {y: flat(c.pchart.ucl2, n), color: '#e9a23b', dash: 1}])]); }
  if (c.ewma) box.push(['EWMA of passed scores', svgLines([{y: c.ewma.series, color: '#2f6fde'}, {y: c.ewma.ucl, color: '#d62828', dash: 1}, {y: c.ewma.lcl, color: '#d62828', dash: 1}])]);
  if (c.cusum) { const n = c.cusum.high.length;
    box.push(['CUSUM of passed scores (upper, -lower)', svgLines([{y: c.cusum.high, color: '#2f6fde'}, {y: c.cusum.low, color: '#7b2cbf'},
      {y: flat(c.cusum.h, n), color: '#d62828', dash: 1}, {y: flat(-c.cusum.h, n), color: '#d62828', dash: 1}])]); }
  if (c.rate_cusum) box.push(['Bernoulli CUSUM of verdicts', svgLines([{y: c.rate_cusum.series, color: '#1d232b'}, {y: flat(c.rate_cusum.h, c.rate_cusum.series.length), color: '#d62828', dash: 1}])]);
  if (!box.length) box.push(['scores of passed parts (baseline ' + c.phase.score + ')', svgLines([{y: c.scores, color: '#2f6fde'}])]);
  $('charts').innerHTML = box.map(([t, s]) => `<div class="chart"><h4>${esc(t)}</h4>${s}</div>`).join('');
}

async function refresh(snap) {
  try {
    if (!snap) snap = await api('/line');
    tiles(snap);
    if (snap.version !== lastVersion) { lastVersion = snap.version; await Promise.all([alarms(), pareto(), charts()]); }
    $('error').textContent = '';
  } catch (e) { $('error').textContent = String(e.message || e); }
}

function poll() { if (!pollTimer) { $('conn').textContent = 'polling every 2 s'; pollTimer = setInterval(() => refresh(), 2000); } }

function live() {
  if (!window.EventSource) return poll();
  source = new EventSource('/api/v1/line/stream' + (key ? '?key=' + encodeURIComponent(key) : ''));
  source.addEventListener('line', e => { $('conn').textContent = 'live'; refresh(JSON.parse(e.data)); });
  source.onerror = () => { $('conn').textContent = 'reconnecting...'; if (source.readyState === EventSource.CLOSED) poll(); };
}

document.addEventListener('click', async e => {
  const id = e.target.dataset && e.target.dataset.ack;
  if (!id) return;
  const by = 'dashboard', rebaseline = !!e.target.dataset.rb;
  try { await api(`/line/alarms/${id}/ack`, {method: 'POST', body: JSON.stringify({by, rebaseline})}); await refresh(); lastVersion = -1; await refresh(); }
  catch (err) { $('error').textContent = String(err.message || err); }
});
$('chart-station').onchange = e => { chartStation = e.target.value; charts(); };
$('keygo').onclick = () => { key = $('key').value; sessionStorage.setItem('twin_key', key); $('keybox').hidden = true; if (source) source.close(); refresh().then(live); };
if (key) sessionStorage.setItem('twin_key', key);
refresh().then(live);
