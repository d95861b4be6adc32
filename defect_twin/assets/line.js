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
    const p = s.phase, ph = !p ? '' : `<div class="num judge">${p.rate_from === 'expected' ? 'defect rate vs expected ' + pct(p.expected_rate) : p.rate_from === 'baseline' ? 'defect rate vs own baseline' : 'defect rate: baseline ' + esc(p.rate) + ' parts'}; ` +
      `${p.score_from === 'reference' ? "scores vs the model's good scores" : p.score_from === 'baseline' ? 'scores vs own baseline' : 'scores: baseline ' + esc(p.score)}</div>`;
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

// Charts: SVG with axes (part number and time below, values at the left), control limits and the threshold as
// dashed lines labelled at the right, and the alarms as red rings where they were raised.
const NS = 'http://www.w3.org/2000/svg';
function niceTicks(lo, hi, n = 5) {
  const span = hi - lo || 1, step0 = span / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 2.5, 5, 10].map(m => m * mag).find(s => span / s <= n) || 10 * mag;
  const out = []; for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) out.push(+v.toPrecision(12));
  return out;
}
const fmt = v => Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toPrecision(3) : (+v.toPrecision(3)).toString();
const hhmmss = t => t == null ? '' : new Date(t * 1000).toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', second: '2-digit'});

function chartSVG(o) {
  // o: {ylabel, series: [{x, y, color, kind: 'line'|'dots', label, dash}], limits: [{y (number or array aligned with x), x, label, color, kind}],
  //     alarms: [{x, label}], timeOf: x -> epoch seconds, yfmt}
  const W = 640, H = 230, L = 56, R = 110, T = 10, B = 44, pw = W - L - R, ph = H - T - B;
  const pts = o.series.flatMap(s => s.x.map((x, i) => [x, s.y[i]])).filter(p => p[1] != null);
  const lims = o.limits.filter(l => l.y != null && !(Array.isArray(l.y) && !l.y.some(v => v != null)));
  if (!pts.length) return null;
  const xsAll = pts.map(p => p[0]).concat(o.alarms.map(a => a.x));
  let x0 = Math.min(...xsAll), x1 = Math.max(...xsAll); if (x1 === x0) x1 = x0 + 1;
  const ys = pts.map(p => p[1]).concat(lims.flatMap(l => Array.isArray(l.y) ? l.y.filter(v => v != null) : [l.y]));
  let y0 = Math.min(...ys), y1 = Math.max(...ys); if (y1 === y0) { y1 += 1; y0 -= 1; }
  const pad = 0.06 * (y1 - y0); y0 -= pad; y1 += pad; if (o.zeroFloor && y0 < 0 && Math.min(...ys) >= 0) y0 = 0;
  const X = x => L + pw * (x - x0) / (x1 - x0), Y = v => T + ph * (1 - (v - y0) / (y1 - y0));
  const el = [];
  el.push(`<rect class="plot" x="${L}" y="${T}" width="${pw}" height="${ph}" fill="#fff" stroke="#c9ced6"/>`);
  // y axis
  const yt = niceTicks(y0, y1, 5).filter(v => v >= y0 && v <= y1);
  el.push(`<g class="axis axis-y">` + yt.map(v => `<line x1="${L - 4}" x2="${L}" y1="${Y(v)}" y2="${Y(v)}" stroke="#555"/><line x1="${L}" x2="${L + pw}" y1="${Y(v)}" y2="${Y(v)}" stroke="#eef0f3"/>` +
    `<text class="tick" x="${L - 6}" y="${Y(v) + 4}" text-anchor="end">${(o.yfmt || fmt)(v)}</text>`).join('') +
    `<text class="axis-title" transform="translate(12,${T + ph / 2}) rotate(-90)" text-anchor="middle">${esc(o.ylabel)}</text></g>`);
  // x axis: part number, and the time of that part
  const xt = niceTicks(x0, x1, 5).filter(v => v >= x0 && v <= x1 && Number.isInteger(v));
  el.push(`<g class="axis axis-x">` + xt.map(v => `<line x1="${X(v)}" x2="${X(v)}" y1="${T + ph}" y2="${T + ph + 4}" stroke="#555"/>` +
    `<text class="tick" x="${X(v)}" y="${T + ph + 15}" text-anchor="middle">${v}</text>` +
    `<text class="tick time" x="${X(v)}" y="${T + ph + 27}" text-anchor="middle">${hhmmss(o.timeOf(v))}</text>`).join('') +
    `<text class="axis-title" x="${L + pw / 2}" y="${H - 3}" text-anchor="middle">part number (time)</text></g>`);
  // limits and threshold
  for (const l of lims) {
    let d, ylast;
    if (Array.isArray(l.y)) { d = l.y.map((v, i) => v == null ? '' : `${i && l.y[i - 1] != null ? 'L' : 'M'}${X(l.x[i]).toFixed(1)},${Y(v).toFixed(1)}`).join(''); ylast = [...l.y].reverse().find(v => v != null); }
    else { d = `M${L},${Y(l.y).toFixed(1)}H${L + pw}`; ylast = l.y; }
    el.push(`<path class="limit ${l.kind || ''}" data-label="${esc(l.label)}" d="${d}" fill="none" stroke="${l.color}" stroke-width="1.4" stroke-dasharray="6 4"/>` +
      `<text class="limit-label" x="${L + pw + 4}" y="${Y(ylast) + 4}" fill="${l.color}">${esc(l.label)}</text>`);
  }
  // data
  for (const s of o.series) {
    if (s.kind === 'dots') el.push(`<g class="series dots" data-label="${esc(s.label)}">` + s.x.map((x, i) => s.y[i] == null ? '' : `<circle cx="${X(x).toFixed(1)}" cy="${Y(s.y[i]).toFixed(1)}" r="2.2" fill="${s.color}"/>`).join('') + '</g>');
    else el.push(`<path class="series line" data-label="${esc(s.label)}" d="${s.y.map((v, i) => v == null ? '' : `${i && s.y[i - 1] != null ? 'L' : 'M'}${X(s.x[i]).toFixed(1)},${Y(v).toFixed(1)}`).join('')}" fill="none" stroke="${s.color}" stroke-width="1.6"/>`);
  }
  // alarms, where they were raised: on the first series' value at that part
  const main = o.series[0];
  for (const a of o.alarms) {     // an alarm raised: a ring and a line; a repeat on an open alarm: a small dot
    let j = main.x.findIndex(x => x >= a.x); if (j < 0) j = main.x.length - 1;
    const yv = Math.min(Math.max(main.y[j] ?? y1, y0), y1);
    el.push(a.opened ? `<g class="alarm-mark" data-x="${a.x}"><title>${esc(a.label)}</title><line x1="${X(a.x)}" x2="${X(a.x)}" y1="${T}" y2="${T + ph}" stroke="#d62828" stroke-opacity=".45"/>` +
      `<circle cx="${X(a.x).toFixed(1)}" cy="${Y(yv).toFixed(1)}" r="6.5" fill="none" stroke="#d62828" stroke-width="2.4"/></g>`
      : `<g class="alarm-repeat" data-x="${a.x}"><title>${esc(a.label)} (repeat of an open alarm)</title><circle cx="${X(a.x).toFixed(1)}" cy="${(T + 5).toFixed(1)}" r="2.5" fill="#d62828" fill-opacity=".6"/></g>`);
  }
  return `<svg class="chart-svg" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(o.ylabel)} by part">${el.join('')}</svg>`;
}

function legend(items) { return '<div class="legend">' + items.map(([c, t, dash]) => `<span><i style="border-color:${c};${dash ? 'border-top-style:dashed' : ''}"></i>${esc(t)}</span>`).join('') + '</div>'; }
const pct = v => v == null ? '-' : (100 * v).toFixed(v < 0.1 ? 1 : 0) + ' %';

async function charts() {
  if (!chartStation) return;
  const c = await api('/line/stations/' + encodeURIComponent(chartStation));
  const P = c.parts, ph = c.phase, box = [];
  const tmap = new Map(P.x.map((x, i) => [x, P.t[i]]));
  const timeOf = x => { if (tmap.has(x)) return tmap.get(x); let best = null, bd = Infinity; for (const [k, t] of tmap) { const d = Math.abs(k - x); if (d < bd) { bd = d; best = t; } } return best; };
  const marks = dets => (c.alarms || []).filter(a => dets.includes(a.detector)).map(a => ({x: a.x, opened: a.opened, label: `alarm: ${a.detector}/${a.rule} at part ${a.x}`}));
  // 1. the score of every part, the threshold, the EWMA and its limits
  const pass = P.score.map((v, i) => P.rejected[i] ? null : v), rej = P.score.map((v, i) => P.rejected[i] ? v : null);
  const sSeries = [{x: P.x, y: pass, color: '#2f6fde', kind: 'dots', label: 'passed'}, {x: P.x, y: rej, color: '#d62828', kind: 'dots', label: 'rejected'}];
  const sLims = [];
  if (c.threshold != null) sLims.push({y: c.threshold, label: 'threshold ' + fmt(c.threshold), color: '#1d232b', kind: 'threshold'});
  if (c.ewma) { sSeries.push({x: c.ewma.x, y: c.ewma.series, color: '#e07b00', label: 'EWMA'});
    sLims.push({x: c.ewma.x, y: c.ewma.ucl, label: 'UCL', color: '#d62828', kind: 'ucl'}, {x: c.ewma.x, y: c.ewma.lcl, label: 'LCL', color: '#d62828', kind: 'lcl'}); }
  const sNote = ph.score_from === 'reference' ? `limits from the model's good scores (upper side) until the station's baseline (${ph.score} passed parts)`
    : ph.score_from === 'baseline' ? "limits from the station's own baseline" : `no score limits yet: baseline ${ph.score} passed parts (the model folder keeps no good scores)`;
  box.push(['Anomaly score of each part', sNote, chartSVG({ylabel: 'anomaly score', series: sSeries, limits: sLims, alarms: marks(['ewma', 'cusum', 'ks']), timeOf}),
    legend([['#2f6fde', 'passed'], ['#d62828', 'rejected'], ['#1d232b', 'threshold', 1]].concat(c.ewma ? [['#e07b00', 'EWMA of passed'], ['#d62828', 'control limits', 1]] : []))]);
  // 2. the defect share in the last parts against the rate the limits come from (binomial window, or the p-chart's), the p-chart's subgroups
  const rNote = ph.rate_from === 'expected' ? `limits from the expected defect rate ${pct(ph.expected_rate)} (line file) until the station's baseline (${ph.rate} parts)`
    : ph.rate_from === 'baseline' ? "limits from the station's own baseline" : `no limits yet: baseline ${ph.rate} parts; state expected_defect_rate in the line file to judge from the first part`;
  const W = c.binomial ? c.binomial.window : (c.pchart ? c.pchart.subgroup : 50);
  let run = 0; const share = P.rejected.map((r, i) => { run += r ? 1 : 0; if (i >= W) run -= P.rejected[i - W] ? 1 : 0; return run / Math.min(i + 1, W); });
  const rS = [{x: P.x, y: share, color: '#1d232b', label: `share rejected in the last ${W} parts`}], rL = [];
  if (c.pchart && c.pchart.points.length) rS.push({x: c.pchart.x, y: c.pchart.points, color: '#7b2cbf', kind: 'dots', label: `p-chart: share per ${c.pchart.subgroup} parts`});
  const p0 = c.binomial ? c.binomial.p0 : (c.pchart ? c.pchart.centre : null);
  if (p0 != null) rL.push({y: p0, label: (ph.rate_from === 'expected' ? 'expected ' : 'centre ') + pct(p0), color: '#2a9d4b', kind: 'centre'});
  if (c.binomial) rL.push({x: c.binomial.x, y: c.binomial.ucl.map(v => v == null || v > 1 ? null : v), label: 'UCL', color: '#d62828', kind: 'ucl'});
  else if (c.pchart) rL.push({y: c.pchart.ucl3, label: 'UCL ' + pct(c.pchart.ucl3), color: '#d62828', kind: 'ucl'});
  box.push(['Defect share', rNote, chartSVG({ylabel: 'share rejected', series: rS, zeroFloor: true, yfmt: v => pct(v), limits: rL,
    alarms: marks(['binomial', 'pchart', 'rate_cusum']), timeOf}),
    legend([['#1d232b', `share in the last ${W} parts`]].concat(c.pchart ? [['#7b2cbf', 'p-chart subgroups']] : [], p0 != null ? [['#2a9d4b', 'expected / centre', 1]] : [],
      c.binomial ? [['#d62828', `upper limit (binomial tail ${c.binomial.alpha})`, 1]] : c.pchart ? [['#d62828', 'p-chart upper limit', 1]] : []))]);
  if (c.rate_cusum) box.push(['Bernoulli CUSUM of verdicts', `detects p0 ${pct(c.rate_cusum.p0)} rising`, chartSVG({ylabel: 'CUSUM', series: [{x: c.rate_cusum.x, y: c.rate_cusum.series, color: '#1d232b', label: 'CUSUM'}],
    limits: [{y: c.rate_cusum.h, label: 'h ' + fmt(c.rate_cusum.h), color: '#d62828', kind: 'ucl'}], alarms: marks(['rate_cusum']), timeOf, zeroFloor: true}), '']);
  if (c.cusum) box.push(['CUSUM of passed scores', 'upper and (negated) lower side', chartSVG({ylabel: 'CUSUM (sigmas)', series: [{x: c.cusum.x, y: c.cusum.high, color: '#2f6fde', label: 'upper'}, {x: c.cusum.x, y: c.cusum.low, color: '#7b2cbf', label: 'lower'}],
    limits: [{y: c.cusum.h, label: 'h ' + fmt(c.cusum.h), color: '#d62828', kind: 'ucl'}, {y: -c.cusum.h, label: '-h', color: '#d62828', kind: 'lcl'}], alarms: marks(['cusum']), timeOf}), '']);
  $('charts').innerHTML = box.map(([t, note, svg, leg]) => `<div class="chart"><h4>${esc(t)}</h4><div class="note">${esc(note)}</div>${svg || '<p class="muted">no parts yet</p>'}${leg}</div>`).join('');
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
