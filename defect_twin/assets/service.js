// The inspection service's page: score one or several images (files, drag-and-drop, a folder) through
// /api/v1/detect/batch, show the verdicts with the service's heatmap overlay, re-label them with a what-if threshold
// (on this page only: no request), download the answers (JSON) and the overlay (PNG), keep the last 20 results.
// Served from /static/service.js under a CSP that allows scripts from the service only (no inline script, no eval).
'use strict';
const $ = id => document.getElementById(id);
const HISTORY = 20, IMAGE = /\.(png|jpe?g|bmp|tiff?)$/i;
const state = {model: null, served: null, whatIf: null, items: [], selected: null, runs: 0, maxScore: 0};

$('key').value = sessionStorage.getItem('defect_twin_key') || '';
const auth = () => $('key').value ? {'X-API-Key': $('key').value} : {};
const fmt = x => (x == null || !isFinite(x)) ? '-' : Number(x).toPrecision(4);

function loadModel() {
  fetch('/api/v1/model', {headers: auth()}).then(r => r.ok ? r.json() : Promise.reject(r.status)).then(m => {
    state.model = m;
    $('model').textContent = `${m.name} v${m.version} (${m.kind}) - threshold ${fmt(m.threshold.value)}`;
    setServed(Number(m.threshold.value));
  }).catch(s => { $('model').textContent = (s === 401 || s === 403) ? 'API key needed' : 'model not ready'; });
}

// ---- the what-if threshold ------------------------------------------------------------------------------------
function setServed(t) {
  if (!isFinite(t)) return;
  state.served = t; $('served-thr').textContent = fmt(t);
  sliderRange();
  if (state.whatIf == null) { $('thr').value = t; $('thr-num').value = fmt(t); }
  render();
}
function sliderRange() {
  const top = Math.max(2 * (state.served || 0), 1.1 * state.maxScore) || 1;
  $('thr').max = top; $('thr-num').max = top; $('thr').step = top / 1000;
}
function threshold() { return state.whatIf == null ? state.served : state.whatIf; }
function verdictOf(a) {
  // the served verdict, or the one the what-if threshold gives (the served review band's lower edge is kept)
  if (state.whatIf == null) return a.verdict || a.label;
  const t = state.whatIf;
  if (a.score >= t) return 'defect';
  return (a.review_low != null && a.review_low < t && a.score >= a.review_low) ? 'review' : 'good';
}
function setWhatIf(t) {
  state.whatIf = (t == null || !isFinite(t)) ? null : t;
  const v = threshold();
  if (v != null) { $('thr').value = v; if (document.activeElement !== $('thr-num')) $('thr-num').value = fmt(v); }
  render();
}
$('thr').addEventListener('input', () => { setWhatIf(Number($('thr').value)); $('thr-num').value = fmt(state.whatIf); });
$('thr-num').addEventListener('input', () => { const v = parseFloat($('thr-num').value); if (isFinite(v) && v >= 0) setWhatIf(v); });
$('thr-reset').addEventListener('click', () => { setWhatIf(null); if (state.served != null) $('thr-num').value = fmt(state.served); });
$('opacity').addEventListener('input', () => {
  $('overlay').style.opacity = $('opacity').value; $('opacity-val').textContent = Math.round(100 * $('opacity').value) + ' %';
});

// ---- scoring ----------------------------------------------------------------------------------------------------
function limits() {
  const s = (state.model && state.model.service) || {};
  return {files: s.max_files || 16, bytes: (s.max_request_mb || 64) * 1048576 * 0.95, mb: s.max_request_mb,
          pixels: s.max_request_pixels, perImage: s.max_pixels};
}
function chunks(files) {
  // requests within the service's file-count and body-size limits (the pixel budget is the service's to check)
  const L = limits(), out = []; let cur = [], size = 0;
  for (const f of files) {
    if (cur.length && (cur.length >= L.files || size + f.size > L.bytes)) { out.push(cur); cur = []; size = 0; }
    cur.push(f); size += f.size;
  }
  if (cur.length) out.push(cur);
  return out;
}
function explain(status, detail) {
  const L = limits();
  let msg = `Error ${status}: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`;
  if (status === 413) msg += '\nThe request was too large for the service' + (L.pixels ? ` (at most ${L.pixels.toLocaleString()} pixels` +
      ` per request, ${L.perImage ? L.perImage.toLocaleString() + ' per image, ' : ''}${L.mb} MB, ${L.files} files)` : '') +
      ': score fewer or smaller images at once.';
  if (status === 401 || status === 403) msg += '\nType the service\'s API key in the box above.';
  return msg;
}
async function inspect(files, skipped = 0) {
  files = Array.from(files);
  if (!files.length) { $('error').textContent = skipped ? `No images among the ${skipped} file(s) chosen.` : ''; return; }
  $('error').textContent = ''; $('summary').textContent = '';
  const run = ++state.runs, parts = chunks(files), got = [];
  for (const [i, part] of parts.entries()) {
    $('busy').textContent = `scoring ${files.length} file(s)` + (parts.length > 1 ? ` (request ${i + 1} of ${parts.length})` : '') + '...';
    const fd = new FormData();
    for (const f of part) fd.append('files', f, f.name);
    let r;
    try { r = await fetch('/api/v1/detect/batch?heatmap=' + $('heat').checked, {method: 'POST', body: fd, headers: auth()}); }
    catch (e) { $('error').textContent = 'The service did not answer: ' + e; break; }
    const j = await r.json().catch(() => ({detail: r.statusText || 'no JSON in the answer'}));
    if (!r.ok) { $('error').textContent = explain(r.status, j.detail); break; }
    j.results.forEach((a, k) => got.push({answer: a, file: part[k], run}));
  }
  $('busy').textContent = '';
  if (!got.length) return;
  for (const g of got) {
    g.url = URL.createObjectURL(g.file);
    g.name = g.file.webkitRelativePath || g.answer.filename || g.file.name;
    state.maxScore = Math.max(state.maxScore, g.answer.score);
  }
  if (state.served == null) setServed(got[0].answer.threshold);
  sliderRange();
  state.items = got.concat(state.items);
  for (const old of state.items.splice(HISTORY)) URL.revokeObjectURL(old.url);
  state.selected = got[0];
  state.lastRun = {run, n: got.length, of: files.length, skipped};
  render();
}

// ---- showing ----------------------------------------------------------------------------------------------------
function render() {
  const it = state.selected, t = threshold();
  const box = $('result');
  if (!it) { box.hidden = true; } else {
    const a = it.answer, v = verdictOf(a);
    box.hidden = false;
    $('verdict').textContent = v.toUpperCase(); $('verdict').className = v;
    $('served').textContent = state.whatIf == null ? '' :
      `what-if at ${fmt(t)}; served verdict ${String(a.verdict || a.label).toUpperCase()} at ${fmt(a.threshold)}`;
    $('fname').textContent = it.name;
    $('numbers').textContent = `score ${fmt(a.score)} / served threshold ${fmt(a.threshold)}` +
      (state.whatIf == null ? '' : ` / what-if ${fmt(t)}`) +
      ` - ${a.width}x${a.height} px - ${a.timings.server.toFixed(1)} ms - ${a.model.name} v${a.model.version}`;
    const top = Math.max(2 * a.threshold, a.score, t || 0) || 1;
    $('fill').style.width = (100 * Math.min(a.score / top, 1)) + '%';
    $('fill').style.background = v === 'defect' ? '#d62828' : v === 'review' ? '#e9a23b' : '#2a9d4b';
    $('mark').style.left = (100 * t / top) + '%';
    $('served-mark').style.left = (100 * a.threshold / top) + '%';
    $('served-mark').hidden = state.whatIf == null;
    if ($('orig').src !== it.url) { $('orig').src = it.url; $('under').src = it.url; }
    if (a.heatmap_png) {
      const src = 'data:image/png;base64,' + a.heatmap_png;
      if ($('overlay').src !== src) $('overlay').src = src;
      $('hfig').hidden = false;
    } else { $('overlay').removeAttribute('src'); $('hfig').hidden = true; }
    $('dl-png').disabled = !a.heatmap_png;
  }
  const ol = $('history'); ol.textContent = '';
  for (const [i, h] of state.items.entries()) {
    const li = document.createElement('li'), v = verdictOf(h.answer);
    li.dataset.idx = i; li.dataset.verdict = v; li.className = h === it ? 'sel' : '';
    li.title = h.name;
    const n = document.createElement('span'); n.className = 'n'; n.textContent = h.name;
    const b = document.createElement('span'); b.className = 'v ' + v; b.textContent = v;
    const s = document.createElement('span'); s.textContent = fmt(h.answer.score);
    li.append(n, b, s);
    li.addEventListener('click', () => { state.selected = h; render(); });
    ol.append(li);
  }
  const L = state.lastRun;
  if (L) {
    const run = state.items.filter(h => h.run === L.run), c = {good: 0, review: 0, defect: 0};
    for (const h of run) c[verdictOf(h.answer)]++;
    $('summary').textContent = `${L.n} of ${L.of} file(s) scored: ${c.good} good, ${c.review} review, ${c.defect} defect` +
      (state.whatIf == null ? '' : ` (what-if threshold ${fmt(t)})`) + (L.skipped ? `; ${L.skipped} non-image file(s) skipped` : '');
  }
}

// ---- downloads --------------------------------------------------------------------------------------------------
function save(blob, name) {
  const a = document.createElement('a'), url = URL.createObjectURL(blob);
  a.href = url; a.download = name; document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
const stem = n => String(n).split('/').pop().replace(/\.[^.]*$/, '') || 'image';
$('dl-json').addEventListener('click', () => {
  // the answers of the request(s) the shown result came from, as the service sent them (less the overlay PNG, which
  // downloads apart), each with the verdict at the what-if threshold
  const it = state.selected; if (!it) return;
  const run = state.items.filter(h => h.run === it.run);   // upload order
  const results = run.map(h => { const {heatmap_png, ...a} = h.answer; return {...a, path: h.name, what_if_verdict: verdictOf(h.answer)}; });
  const doc = {served_threshold: state.served, what_if_threshold: state.whatIf,
               note: 'label/verdict/threshold are the service\'s; what_if_verdict uses what_if_threshold (null: the served one)',
               model: state.model ? {name: state.model.name, version: state.model.version, kind: state.model.kind} : results[0].model,
               count: results.length, results};
  save(new Blob([JSON.stringify(doc, null, 2)], {type: 'application/json'}), `defect_twin_results_${it.run}.json`);
});
$('dl-png').addEventListener('click', () => {
  const it = state.selected; if (!it || !it.answer.heatmap_png) return;
  const bin = atob(it.answer.heatmap_png), buf = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) buf[i] = bin.charCodeAt(i);
  save(new Blob([buf], {type: 'image/png'}), stem(it.name) + '_overlay.png');
});

// ---- choosing files ---------------------------------------------------------------------------------------------
function images(files) {
  const all = Array.from(files), ok = all.filter(f => IMAGE.test(f.name));
  ok.sort((a, b) => (a.webkitRelativePath || a.name).localeCompare(b.webkitRelativePath || b.name));
  return [ok, all.length - ok.length];
}
function walk(entry) {
  // the files under a dropped folder entry
  if (entry.isFile) return new Promise(res => entry.file(f => res([f]), () => res([])));
  return new Promise(res => {
    const rd = entry.createReader(), out = [];
    const next = () => rd.readEntries(async es => {
      if (!es.length) { res((await Promise.all(out.map(walk))).flat()); return; }
      out.push(...es); next();
    }, () => res([]));
    next();
  });
}
const drop = $('drop');
drop.addEventListener('click', () => $('file').click());
drop.addEventListener('keydown', e => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); $('file').click(); } });
$('pick-folder').addEventListener('click', () => $('folder').click());
$('file').addEventListener('change', e => { inspect(e.target.files); e.target.value = ''; });
$('folder').addEventListener('change', e => { const [ok, n] = images(e.target.files); inspect(ok, n); e.target.value = ''; });
['dragenter', 'dragover'].forEach(t => drop.addEventListener(t, e => { e.preventDefault(); drop.classList.add('over'); }));
['dragleave', 'drop'].forEach(t => drop.addEventListener(t, e => { e.preventDefault(); drop.classList.remove('over'); }));
drop.addEventListener('drop', async e => {
  const entries = Array.from(e.dataTransfer.items || []).map(i => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
  if (entries.some(x => x.isDirectory)) { const [ok, n] = images((await Promise.all(entries.map(walk))).flat()); inspect(ok, n); }
  else inspect(e.dataTransfer.files);
});
$('key').addEventListener('change', () => { sessionStorage.setItem('defect_twin_key', $('key').value); loadModel(); });
loadModel();
