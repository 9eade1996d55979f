// photodeid serve: the page. All pictures are made by the engine on the
// server; this script only draws boxes (in percent of the displayed photo)
// and asks for previews and exports.
'use strict';

const token = document.querySelector('meta[name="photodeid-token"]').content;
const $ = (id) => document.getElementById(id);

const state = {
  photos: [],
  regions: new Map(), // id -> [{x, y, w, h, shape, effect}] in percent
  selected: new Set(),
  current: null,
  active: -1,
  previewSeq: 0,
  previewUrl: null,
  // Saving: the revision of each photo's saved rows, the photos changed
  // since, and whether a save is on its way.
  revs: new Map(),
  // Photos given copied regions, not yet opened since.
  toCheck: new Set(),
  dirty: new Set(),
  saving: null,
  saveTimer: null,
  saveFailed: false,
  // Undo/redo: each step is [[id, regions before, regions after], ...].
  undo: [],
  redo: [],
  // Earlier exports to this output (the results file): id -> {output, there}.
  exported: new Map(),
  // The listing's second step (loadDetails), once asked for.
  detailsReady: Promise.resolve(),
};

// Timings the browser test reads.
window.photodeid = {
  timings: [], previewsDone: 0, saves: 0,
  unsaved: () => state.dirty.size > 0 || state.saving !== null,
};

function api(path, opts = {}) {
  opts.headers = Object.assign({ 'X-Photodeid-Token': token }, opts.headers || {});
  return fetch(path, opts);
}

async function errorText(resp) {
  try {
    const j = await resp.json();
    return j.error || resp.statusText;
  } catch (_) {
    return resp.statusText;
  }
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

function regionsOf(id) {
  if (!state.regions.has(id)) state.regions.set(id, []);
  return state.regions.get(id);
}

// ---------------------------------------------------------------- saving

const clone = (rs) => rs.map((r) => Object.assign({}, r));

function setSaveStatus(text, bad) {
  const s = $('save-status');
  s.textContent = text;
  s.classList.toggle('results-error', !!bad);
}

// Takes the server's saved regions for every photo this tab has not changed
// (all of them with `all`).
function applySaved(answer, all) {
  for (const [id, saved] of Object.entries(answer.photos)) {
    const n = Number(id);
    if (!all && state.dirty.has(n)) continue;
    state.revs.set(n, saved.rev);
    state.regions.set(n, saved.regions.map((r) => Object.assign({}, r)));
  }
}

async function loadSaved() {
  const resp = await api('/api/regions');
  if (!resp.ok) {
    setSaveStatus('The saved regions cannot be read: ' + (await errorText(resp)), true);
    return false;
  }
  applySaved(await resp.json(), true);
  return true;
}

// Another tab may have saved meanwhile: take its work for untouched photos.
async function refreshSaved() {
  if (state.dirty.size || state.saving || state.saveFailed) return;
  const resp = await api('/api/regions');
  if (!resp.ok) return;
  const answer = await resp.json();
  let changed = false;
  for (const [id, saved] of Object.entries(answer.photos)) {
    if (state.revs.get(Number(id)) !== saved.rev) changed = true;
  }
  if (!changed || state.dirty.size || state.saving) return;
  applySaved(answer, false);
  if (state.current === null) renderGrid();
  else {
    renderRegions();
    refreshPreview('edit');
  }
}

// Records a change to the photos `ids` (regions as they were: `before`),
// for undo, and saves it.
function changed(ids, before) {
  const step = ids.map((id, i) => [id, before[i], clone(regionsOf(id))]);
  state.undo.push(step);
  if (state.undo.length > 200) state.undo.shift();
  state.redo = [];
  markDirty(ids);
}

function markDirty(ids) {
  for (const id of ids) state.dirty.add(id);
  setSaveStatus('Saving…');
  clearTimeout(state.saveTimer);
  state.saveTimer = setTimeout(save, 250);
  updateUndo();
}

// Sends the changed photos; refused ones (changed in another tab since this
// one loaded them) get the other tab's regions, and the user is told.
async function save() {
  clearTimeout(state.saveTimer);
  if (state.saving) {
    await state.saving;
    if (state.dirty.size) return save();
    return;
  }
  if (!state.dirty.size) return;
  const sent = [...state.dirty].map((id) => ({ id, base: state.revs.get(id) || '', regions: clone(regionsOf(id)) }));
  let done;
  state.saving = new Promise((r) => { done = r; });
  try {
    const resp = await api('/api/regions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ photos: sent }),
    });
    if (!resp.ok) throw new Error(await errorText(resp));
    const answer = await resp.json();
    const conflicts = new Set(answer.conflicts);
    for (const c of sent) {
      const saved = answer.photos[c.id];
      if (conflicts.has(c.id)) {
        state.dirty.delete(c.id);
        state.revs.set(c.id, saved.rev);
        state.regions.set(c.id, clone(saved.regions));
      } else {
        state.revs.set(c.id, saved.rev);
        // Unchanged since it was sent: saved.
        if (JSON.stringify(regionsOf(c.id)) === JSON.stringify(c.regions)) state.dirty.delete(c.id);
      }
    }
    state.saveFailed = false;
    window.photodeid.saves += 1;
    updateThumbs();
    if (conflicts.size) {
      const names = [...conflicts].map((id) => photo(id).name).join(', ');
      setSaveStatus(`Not saved for ${names}: it was changed in another tab or window since this one loaded it. `
        + 'The regions saved there are shown now; check them and mark again if needed.', true);
      if (state.current !== null) {
        renderRegions();
        refreshPreview('edit');
      } else renderGrid();
    } else if (!state.dirty.size) {
      setSaveStatus(`All changes saved (${answer.file}).`);
    }
  } catch (e) {
    state.saveFailed = true;
    setSaveStatus(`Not saved yet: ${e.message || e}. Your changes are kept in this tab; `
      + 'trying again in a few seconds. Do not close this tab.', true);
    state.saveTimer = setTimeout(save, 3000);
  } finally {
    state.saving = null;
    done();
  }
  if (state.dirty.size && !state.saveFailed) {
    clearTimeout(state.saveTimer);
    state.saveTimer = setTimeout(save, 250);
  }
}

function updateUndo() {
  $('undo').disabled = !state.undo.length;
  $('redo').disabled = !state.redo.length;
}

function undoRedo(from, to, which) {
  const step = from.pop();
  if (!step) return;
  to.push(step);
  for (const [id, before, after] of step) state.regions.set(id, clone(which === 'undo' ? before : after));
  state.active = -1;
  markDirty(step.map((s) => s[0]));
  if (state.current !== null) {
    if (!step.some((s) => s[0] === state.current)) openEditor(step[0][0]);
    else {
      renderRegions();
      refreshPreview('edit');
    }
  } else renderGrid();
  $('preview-status').textContent = which === 'undo' ? 'Undone.' : 'Redone.';
}

// ---------------------------------------------------------------- grid

async function loadPhotos() {
  $('grid-status').textContent = 'Reading the photos…';
  const resp = await api('/api/photos');
  if (!resp.ok) {
    $('grid-status').textContent = 'Cannot list the photos: ' + (await errorText(resp));
    return;
  }
  const data = await resp.json();
  $('folder-path').textContent = data.folder;
  $('output-path').textContent = data.output;
  // The first step: names, sizes, usable or not by their first bytes; what
  // each carries follows (loadDetails).
  state.photos = data.photos.map((p) => Object.assign(p, {
    pending: true, carries: [], details: [], width: 0, height: 0,
  }));
  for (const p of state.photos) if (!p.error) state.selected.add(p.id);
  if (await loadSaved()) setSaveStatus('Regions are saved as you work.');
  await loadResults();
  showGridStatus();
  renderGrid();
  state.detailsReady = loadDetails();
  await loadStyles();
  await loadCollageSaved();
  renderCollageCases();
}

function showGridStatus() {
  const bad = state.photos.filter((p) => p.error).length;
  const plural = (n, w) => `${n} ${w}${n === 1 ? '' : 's'}`;
  const reading = state.photos.some((p) => p.pending) ? ' Reading what each photo carries…' : '';
  $('grid-status').textContent = state.photos.length === 0
    ? 'No files in this folder.'
    : (bad
      ? `${plural(state.photos.length, 'file')}: ${plural(state.photos.length - bad, 'photo')} can be used; `
        + `${bad} cannot (shown greyed, with the reason).`
      : `${plural(state.photos.length, 'photo')}.`) + reading;
}

// Resolves once the thumbnails in view are in (or failed), or after maxMs.
function firstScreenShown(maxMs) {
  return new Promise((resolve) => {
    const inView = (i) => { const r = i.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; };
    const waiting = [...document.querySelectorAll('.card img')].filter((i) => inView(i) && !i.complete);
    let left = waiting.length;
    const timer = setTimeout(resolve, maxMs);
    const one = () => { left -= 1; if (left <= 0) { clearTimeout(timer); resolve(); } };
    if (!left) one();
    for (const i of waiting) {
      i.addEventListener('load', one, { once: true });
      i.addEventListener('error', one, { once: true });
    }
  });
}

// The listing's second step: what each photo carries, its size, and why a
// file that looked usable is not (damaged). Asked for once the first screen
// of thumbnails is in, so the two do not share the server's cores.
async function loadDetails() {
  await firstScreenShown(2000);
  const resp = await api('/api/photos/details');
  if (!resp.ok) {
    $('grid-status').textContent = 'Cannot read what the photos carry: ' + (await errorText(resp));
    return;
  }
  for (const d of (await resp.json()).photos) {
    const p = photo(d.id);
    if (!p) continue;
    Object.assign(p, d, { pending: false });
    if (p.error) state.selected.delete(p.id);
    // The card in place, keeping its thumbnail (no second request).
    const old = document.querySelector(`.card[data-id="${p.id}"]`);
    if (!old) continue;
    const fresh = card(p);
    const img = old.querySelector('img');
    const slot = fresh.querySelector('img');
    if (img && slot) slot.replaceWith(img);
    old.replaceWith(fresh);
  }
  showGridStatus();
  if (state.current !== null) showCarries(photo(state.current));
  renderCollageCases();
  document.body.dataset.details = 'shown';
}

function sizeWords(bytes) {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1e3))} KB`;
}

// What a photo's state is, for the filter.
function matches(p) {
  const text = $('filter-text').value.trim().toLowerCase();
  if (text && !p.name.toLowerCase().includes(text)) return false;
  const n = regionsOf(p.id).length;
  switch ($('filter-status').value) {
    case 'needs': return !p.error && n === 0;
    case 'check': return state.toCheck.has(p.id);
    case 'marked': return n > 0;
    case 'ticked': return state.selected.has(p.id);
    case 'exported': return state.exported.has(p.id);
    case 'bad': return !!p.error;
    default: return true;
  }
}

function renderGrid() {
  const grid = $('grid');
  grid.replaceChildren();
  // One group per folder (a series, or a case), in listing order.
  const groups = new Map();
  let shown = 0;
  for (const p of state.photos) {
    if (!groups.has(p.series)) groups.set(p.series, []);
    if (matches(p)) {
      groups.get(p.series).push(p);
      shown += 1;
    }
  }
  for (const [series, members] of groups) {
    if (!members.length) continue;
    const list = el('ul', { class: 'grid' });
    for (const p of members) list.append(card(p));
    const label = series ? `case ${series}` : 'the top folder';
    const caseButton = (on) => el('button', {
      type: 'button', class: 'case-select', 'data-series': series, 'data-on': String(on),
      text: on ? 'Tick this case' : 'Untick this case',
      'aria-label': `${on ? 'Tick' : 'Untick'} every photo of ${label}`,
      onclick: () => selectCase(series, on),
    });
    grid.append(el('li', { class: 'series', 'data-series': series },
      el('h3', {}, series ? `Folder ${series}` : 'Top folder',
        series ? el('span', { class: 'consent', 'data-series': series }) : null,
        caseButton(true), caseButton(false)), list));
  }
  const all = state.photos.length;
  $('filter-count').textContent = shown === all ? '' : `Showing ${shown} of ${all} files.`;
  updateConsentStatus();
}

// Ticks or unticks every usable photo of one case folder.
function selectCase(series, on) {
  for (const p of state.photos) {
    if (p.series !== series || p.error) continue;
    if (on) state.selected.add(p.id);
    else state.selected.delete(p.id);
  }
  renderGrid();
  renderCollageCases();
}

// The grid's picture: the thumbnail with the saved regions destroyed; the
// revision in the address changes with them, so the browser asks again.
function thumbUrl(p) {
  return `/api/photos/${p.id}/thumb?t=${token}&rev=${state.revs.get(p.id) || ''}&fill=${fillHex()}`;
}

function updateThumbs() {
  document.querySelectorAll('.card img[data-id]').forEach((img) => {
    const url = thumbUrl(photo(Number(img.dataset.id)));
    if (img.getAttribute('src') !== url) img.setAttribute('src', url);
  });
}

async function loadResults() {
  const resp = await api('/api/results');
  if (!resp.ok) return;
  const j = await resp.json();
  state.exported = new Map(Object.entries(j.photos).map(([k, v]) => [Number(k), v]));
}

function card(p) {
  const check = el('input', { type: 'checkbox', id: `sel-${p.id}` });
  check.checked = state.selected.has(p.id);
  check.disabled = !!p.error;
  check.addEventListener('change', () => {
    if (check.checked) state.selected.add(p.id);
    else state.selected.delete(p.id);
  });
  // What the photo carries, folded into one line.
  const carries = p.error ? null : p.pending ? el('p', { class: 'ok pending', text: 'Reading what it carries…' }) : el('p', {
    class: p.carries.length ? 'carries' : 'ok',
    title: p.carries.join('\n'),
    text: p.carries.length ? 'Carries: ' + p.carries.join(', ') : 'No identifying metadata found.',
  });
  const n = regionsOf(p.id).length;
  const item = el('li', { class: p.error ? 'card unusable' : 'card', 'data-id': String(p.id), 'data-name': p.name },
    el('div', { class: 'field' }, check,
      el('label', { for: `sel-${p.id}`, class: 'name', title: p.name, text: p.name.split('/').pop() })),
    p.error ? null : el('img', {
      src: thumbUrl(p), alt: `Photo ${p.name}, as it will be exported`, loading: 'lazy',
      width: '320', height: '240', 'data-id': String(p.id),
    }),
    p.error ? el('p', { class: 'error', text: 'Cannot be used: ' + p.error }) : null,
    el('p', { class: 'ok size', text: p.width ? `${p.width} × ${p.height} ${p.format}` : p.size ? `${sizeWords(p.size)} ${p.format || ''}`.trim() : '' }),
    carries,
    el('p', { class: 'ok marks', text: n ? `${n} region${n > 1 ? 's' : ''} marked` : 'No regions marked' }),
    state.toCheck.has(p.id) ? el('p', { class: 'to-check', text: 'To check: regions copied from another photo' }) : null,
    state.exported.has(p.id) ? el('p', {
      class: 'exported',
      text: state.exported.get(p.id).there
        ? `Exported before as ${state.exported.get(p.id).output}`
        : `Exported before as ${state.exported.get(p.id).output} (no longer in the output folder)`,
    }) : null,
    el('button', {
      type: 'button', class: 'edit', text: 'Mark regions',
      'aria-label': `Mark regions on ${p.name}`,
      onclick: () => openEditor(p.id),
    }));
  if (p.error) item.querySelector('button.edit').disabled = true;
  return item;
}

// ---------------------------------------------------------------- editor

function photo(id) {
  return state.photos.find((p) => p.id === id);
}

function openEditor(id) {
  state.current = id;
  state.toCheck.delete(id);
  state.active = -1;
  const p = photo(id);
  $('copy-status').textContent = '';
  $('editor-name').textContent = p.name;
  showCarries(p);
  $('editor').hidden = false;
  $('grid-section').hidden = true;
  state.fitWidth = null;
  setZoom(1);
  updateSteps();
  $('show-original').checked = false;
  renderRegions();
  refreshPreview('open');
  if (window.photodeidFaces) window.photodeidFaces.open(id);
  $('editor-title').setAttribute('tabindex', '-1');
  $('editor-title').focus();
}

// What the open photo carries (filled in when the details arrive).
function showCarries(p) {
  const none = p.pending ? 'still being read…' : 'nothing identifying';
  $('carries').replaceChildren(...(p.carries.length ? p.carries : [none])
    .map((c) => el('li', { text: c })));
  // What `photodeid check` reports, value by value.
  $('check-details').replaceChildren(...(p.details.length ? p.details : ['nothing'])
    .map((d) => el('li', { text: d })));
  $('check-box').hidden = !p.details.length;
}

// The usable photos in listing order, for Previous/Next.
function step(delta) {
  const usable = state.photos.filter((q) => !q.error);
  const i = usable.findIndex((q) => q.id === state.current);
  const next = usable[i + delta];
  if (next) openEditor(next.id);
}

function updateSteps() {
  const usable = state.photos.filter((q) => !q.error);
  const i = usable.findIndex((q) => q.id === state.current);
  $('prev-photo').disabled = i <= 0;
  $('next-photo').disabled = i < 0 || i >= usable.length - 1;
}

// Zoom: the picture is drawn larger inside a scrolling frame; regions are
// in percent of it, so they follow.
function setZoom(z) {
  state.zoom = clamp(z, 1, 8);
  const img = $('stage-img');
  if (state.zoom === 1) {
    img.style.maxWidth = '';
    img.style.maxHeight = '';
    img.style.width = state.baseWidth || '';
  } else {
    const base = state.fitWidth || img.getBoundingClientRect().width;
    img.style.maxWidth = 'none';
    img.style.maxHeight = 'none';
    img.style.width = `${Math.round(base * state.zoom)}px`;
  }
  $('zoom-level').textContent = `${Math.round(state.zoom * 100)}%`;
}

function closeEditor() {
  const id = state.current;
  state.current = null;
  $('editor').hidden = true;
  $('grid-section').hidden = false;
  renderGrid();
  scheduleCollage(false);
  const btn = document.querySelector(`.card[data-id="${id}"] button.edit`);
  if (btn) btn.focus();
}

function fillHex() {
  return $('fill').value.replace('#', '');
}

// Asks the engine for the photo at screen size with the regions destroyed.
// `why` says what the timing measures ('open': click to picture, 'edit':
// release of the mouse to redacted picture).
async function refreshPreview(why) {
  if (state.current === null) return;
  const id = state.current;
  const seq = ++state.previewSeq;
  const t0 = performance.now();
  const regions = $('show-original').checked ? [] : regionsOf(id);
  $('preview-status').textContent = 'Rendering…';
  let resp;
  try {
    resp = await api(`/api/photos/${id}/preview`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ regions, fill: fillHex() }),
    });
  } catch (e) {
    $('preview-status').textContent = 'The server does not answer: is photodeid still running? '
      + 'Start it again, then reload this page (your regions are saved).';
    return;
  }
  if (seq !== state.previewSeq) return;
  if (!resp.ok) {
    $('preview-status').textContent = 'Cannot show this photo: ' + (await errorText(resp));
    return;
  }
  const blob = await resp.blob();
  if (seq !== state.previewSeq) return;
  const url = URL.createObjectURL(blob);
  const img = $('stage-img');
  img.onload = () => {
    // Small photos are shown larger, so regions are easy to draw on them.
    const room = img.parentElement.parentElement.clientWidth;
    state.baseWidth = img.naturalWidth < 576 ? `${Math.min(576, room)}px` : '';
    if (state.zoom === 1) {
      img.style.width = state.baseWidth;
      state.fitWidth = img.getBoundingClientRect().width;
    }
    if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
    state.previewUrl = url;
    const ms = Math.round(performance.now() - t0);
    window.photodeid.timings.push({ why, ms, regions: regions.length });
    window.photodeid.previewsDone += 1;
    const n = regions.length;
    $('preview-status').textContent = $('show-original').checked
      ? 'The original is shown: nothing covered.'
      : n === 0
        ? 'No areas covered yet: the photo as it is.'
        : `${n} area${n === 1 ? '' : 's'} covered, as the export will make ${n === 1 ? 'it' : 'them'}.`;
    $('preview-timing').textContent = `Drawn by the server in ${ms} ms.`;
    renderOverlays();
  };
  img.src = url;
}

function clamp(v, lo, hi) {
  return Math.min(hi, Math.max(lo, v));
}

function round(v) {
  return Math.round(v * 100) / 100;
}

function normalise(r) {
  r.w = clamp(r.w, 0.2, 100);
  r.h = clamp(r.h, 0.2, 100);
  r.x = clamp(r.x, 0, 100 - r.w);
  r.y = clamp(r.y, 0, 100 - r.h);
  for (const k of ['x', 'y', 'w', 'h']) r[k] = round(r[k]);
  return r;
}

function describe(r, i) {
  const shape = r.shape === 'ellipse' ? 'ellipse' : 'rectangle';
  return `Region ${i + 1}: ${shape}, ${r.effect}, at ${r.x}% from the left and ${r.y}% from the top, `
    + `${r.w}% wide and ${r.h}% high`;
}

function renderOverlays() {
  const stage = $('stage');
  // Keep the keyboard focus on the same region across the rebuild.
  const focused = document.activeElement && document.activeElement.classList.contains('region')
    ? document.activeElement.dataset.index : null;
  stage.querySelectorAll('.region').forEach((e) => e.remove());
  if (state.current === null || $('show-original').checked) return;
  regionsOf(state.current).forEach((r, i) => {
    const box = el('div', {
      class: `region ${r.shape}${i === state.active ? ' active' : ''}`,
      tabindex: '0', role: 'button', 'aria-label': describe(r, i), 'data-index': String(i),
    });
    box.style.left = r.x + '%';
    box.style.top = r.y + '%';
    box.style.width = r.w + '%';
    box.style.height = r.h + '%';
    for (const c of ['nw', 'ne', 'sw', 'se']) {
      box.append(el('div', { class: `handle ${c}`, 'data-corner': c, 'aria-hidden': 'true' }));
    }
    box.addEventListener('keydown', (e) => regionKey(e, i));
    box.addEventListener('focus', () => {
      state.active = i;
      box.classList.add('active');
    });
    stage.append(box);
    if (focused === String(i)) box.focus();
  });
}

function renderRegions() {
  const list = $('region-list');
  list.replaceChildren();
  const regions = regionsOf(state.current);
  regions.forEach((r, i) => {
    const num = (key, label) => {
      const id = `r${i}-${key}`;
      const input = el('input', {
        type: 'number', id, min: '0', max: '100', step: '0.1', value: String(r[key]),
      });
      input.addEventListener('change', () => {
        const v = parseFloat(input.value);
        if (Number.isFinite(v)) {
          const before = clone(regions);
          r[key] = v;
          normalise(r);
          changed([state.current], [before]);
        }
        renderRegions();
        refreshPreview('edit');
      });
      return el('span', {}, el('label', { for: id, text: label + ' (%)' }), ' ', input);
    };
    const select = (key, label, options) => {
      const id = `r${i}-${key}`;
      const s = el('select', { id }, ...options.map(([v, t]) => {
        const o = el('option', { value: v, text: t });
        if (r[key] === v) o.selected = true;
        return o;
      }));
      s.addEventListener('change', () => {
        const before = clone(regions);
        r[key] = s.value;
        changed([state.current], [before]);
        renderRegions();
        refreshPreview('edit');
      });
      return el('span', {}, el('label', { for: id, text: label }), ' ', s);
    };
    list.append(el('li', {},
      el('div', { class: 'coords' },
        num('x', 'Left'), num('y', 'Top'), num('w', 'Width'), num('h', 'Height'),
        select('shape', 'Shape', [['rect', 'Rectangle'], ['ellipse', 'Ellipse']]),
        select('effect', 'Effect', [['fill', 'Fill'], ['pixelate', 'Pixelate'], ['blur', 'Blur']])),
      el('button', {
        type: 'button', text: 'Delete', 'aria-label': `Delete region ${i + 1}`,
        onclick: () => deleteRegion(i),
      })));
  });
  $('no-regions').hidden = regions.length > 0;
  renderOverlays();
  // Face proposals follow the regions (an accepted one is a region).
  if (window.photodeidFaces) window.photodeidFaces.render();
}

function deleteRegion(i) {
  const before = clone(regionsOf(state.current));
  regionsOf(state.current).splice(i, 1);
  changed([state.current], [before]);
  state.active = -1;
  renderRegions();
  refreshPreview('edit');
  $('stage').focus();
}

function addRegion() {
  const r = normalise({ x: 40, y: 40, w: 20, h: 20, shape: $('shape').value, effect: $('effect').value });
  const before = clone(regionsOf(state.current));
  regionsOf(state.current).push(r);
  changed([state.current], [before]);
  state.active = regionsOf(state.current).length - 1;
  renderRegions();
  refreshPreview('edit');
  const box = document.querySelector(`#stage .region[data-index="${state.active}"]`);
  if (box) box.focus();
}

function regionKey(e, i) {
  const r = regionsOf(state.current)[i];
  const step = e.altKey ? 0.2 : 1;
  const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
  if (e.key === 'Delete' || e.key === 'Backspace') {
    e.preventDefault();
    deleteRegion(i);
    return;
  }
  const m = moves[e.key];
  if (!m) return;
  e.preventDefault();
  const before = clone(regionsOf(state.current));
  if (e.shiftKey) {
    r.w += m[0];
    r.h += m[1];
  } else {
    r.x += m[0];
    r.y += m[1];
  }
  normalise(r);
  changed([state.current], [before]);
  renderRegions();
  const box = document.querySelector(`#stage .region[data-index="${i}"]`);
  if (box) box.focus();
  clearTimeout(state.keyTimer);
  state.keyTimer = setTimeout(() => refreshPreview('edit'), 150);
}

// Pointer: draw on the photo, drag a region to move it, drag a corner to resize.
function pointerPos(e) {
  const rect = $('stage-img').getBoundingClientRect();
  return {
    x: clamp((e.clientX - rect.left) / rect.width * 100, 0, 100),
    y: clamp((e.clientY - rect.top) / rect.height * 100, 0, 100),
  };
}

let drag = null;

function onPointerDown(e) {
  if (state.current === null || e.button !== 0 || $('show-original').checked) return;
  const regions = regionsOf(state.current);
  const before = clone(regions);
  const pos = pointerPos(e);
  const box = e.target.closest('.region');
  const corner = e.target.dataset ? e.target.dataset.corner : undefined;
  if (box) {
    const i = Number(box.dataset.index);
    state.active = i;
    drag = { mode: corner ? 'resize' : 'move', i, corner, start: pos, orig: Object.assign({}, regions[i]), before };
  } else {
    regions.push({ x: pos.x, y: pos.y, w: 0, h: 0, shape: $('shape').value, effect: $('effect').value });
    state.active = regions.length - 1;
    drag = { mode: 'draw', i: state.active, start: pos, before };
  }
  $('stage').setPointerCapture(e.pointerId);
  e.preventDefault();
}

function onPointerMove(e) {
  if (!drag) return;
  const r = regionsOf(state.current)[drag.i];
  const pos = pointerPos(e);
  const dx = pos.x - drag.start.x;
  const dy = pos.y - drag.start.y;
  if (drag.mode === 'draw') {
    r.x = Math.min(pos.x, drag.start.x);
    r.y = Math.min(pos.y, drag.start.y);
    r.w = Math.abs(dx);
    r.h = Math.abs(dy);
  } else if (drag.mode === 'move') {
    r.x = clamp(drag.orig.x + dx, 0, 100 - r.w);
    r.y = clamp(drag.orig.y + dy, 0, 100 - r.h);
  } else {
    const o = drag.orig;
    let [x0, y0, x1, y1] = [o.x, o.y, o.x + o.w, o.y + o.h];
    if (drag.corner.includes('w')) x0 += dx; else x1 += dx;
    if (drag.corner.includes('n')) y0 += dy; else y1 += dy;
    r.x = Math.min(x0, x1);
    r.y = Math.min(y0, y1);
    r.w = Math.abs(x1 - x0);
    r.h = Math.abs(y1 - y0);
  }
  const box = document.querySelector(`#stage .region[data-index="${drag.i}"]`);
  if (box) {
    box.style.left = r.x + '%';
    box.style.top = r.y + '%';
    box.style.width = r.w + '%';
    box.style.height = r.h + '%';
  } else {
    renderOverlays();
  }
}

function onPointerUp() {
  if (!drag) return;
  const regions = regionsOf(state.current);
  const r = regions[drag.i];
  const tiny = r.w < 0.5 || r.h < 0.5;
  if (drag.mode === 'draw' && tiny) {
    regions.splice(drag.i, 1);
    state.active = -1;
    drag = null;
    renderOverlays();
    return;
  }
  normalise(r);
  const before = drag.before;
  drag = null;
  if (JSON.stringify(before) !== JSON.stringify(regions)) changed([state.current], [before]);
  renderRegions();
  refreshPreview('edit');
}

// A region of photo `from` placed on photo `to`: its centre's offset from
// the picture's centre and its size, both in units of the shorter side,
// are kept; then it is kept inside the picture.
function carry(r, from, to) {
  if (!from.width || !to.width) return Object.assign({}, r);
  const s1 = Math.min(from.width, from.height);
  const s2 = Math.min(to.width, to.height);
  const cx = ((r.x + r.w / 2) / 100 * from.width - from.width / 2) / s1;
  const cy = ((r.y + r.h / 2) / 100 * from.height - from.height / 2) / s1;
  const w = r.w / 100 * from.width / s1 * s2;
  const h = r.h / 100 * from.height / s1 * s2;
  const out = Object.assign({}, r, {
    w: w / to.width * 100,
    h: h / to.height * 100,
    x: (to.width / 2 + cx * s2 - w / 2) / to.width * 100,
    y: (to.height / 2 + cy * s2 - h / 2) / to.height * 100,
  });
  return normalise(out);
}

async function copyToSeries() {
  // Placed by each photo's size in pixels: wait for the details.
  await state.detailsReady;
  const p = photo(state.current);
  const mine = regionsOf(state.current);
  const others = state.photos.filter((q) => q.series === p.series && q.id !== p.id && !q.error);
  const before = others.map((q) => clone(regionsOf(q.id)));
  let onFace = 0;
  for (const q of others) {
    // faces.js: placed relative to the one face found on both photos, when there is one.
    const anchor = window.photodeidFaces && window.photodeidFaces.anchor(p, q);
    if (anchor) onFace += 1;
    state.regions.set(q.id, mine.map((r) => (anchor ? anchor(r) : carry(r, p, q))));
    state.toCheck.add(q.id);
  }
  if (others.length) changed(others.map((q) => q.id), before);
  // Its own line: the preview's status is rewritten by every render.
  $('copy-status').textContent = others.length
    ? `Copied ${mine.length} region${mine.length === 1 ? '' : 's'} to ${others.length} other photo${others.length === 1 ? '' : 's'} in this folder, `
      + 'each at the same place from the centre, sized by the shorter side (so a box stays over the same part '
      + 'when a photo is upright and another sideways). They are marked "to check" until you open them.'
      + (onFace ? ` On ${onFace} of them the regions follow the face found there.` : '')
    : 'There are no other photos in this folder.';
}

// ---------------------------------------------------------------- review
// Every ticked photo at screen size with its saved regions destroyed: what
// the export will write (the server draws it from the saved manifest rows).

async function openReview() {
  await save();
  const ticked = state.photos.filter((p) => !p.error && state.selected.has(p.id));
  const list = $('review-list');
  list.replaceChildren(...ticked.map((p) => {
    const n = regionsOf(p.id).length;
    return el('li', { class: 'review-item', 'data-id': String(p.id), 'data-name': p.name },
      el('img', {
        src: `/api/photos/${p.id}/review?t=${token}&rev=${state.revs.get(p.id) || ''}&fill=${fillHex()}`,
        alt: `${p.name}, as it will be exported`, loading: 'lazy', width: '800', height: '600',
      }),
      el('p', { class: 'name', text: p.name }),
      el('p', { text: `${n ? `${n} area${n === 1 ? '' : 's'} covered` : 'No areas covered'}; `
        + `${p.details.length ? 'hidden data will be removed' : 'no hidden data found'}.` }),
      state.toCheck.has(p.id) ? el('p', { class: 'to-check', text: 'To check: regions copied from another photo' }) : null,
      el('button', {
        type: 'button', text: 'Mark regions', 'aria-label': `Mark regions on ${p.name}`,
        onclick: () => { closeReview(); openEditor(p.id); },
      }));
  }));
  $('review-status').textContent = ticked.length
    ? `${ticked.length} photo${ticked.length === 1 ? '' : 's'} ticked.`
    : 'No photo is ticked: tick the photos to export first.';
  $('review').hidden = false;
  $('grid-section').hidden = true;
  $('review-title').setAttribute('tabindex', '-1');
  $('review-title').focus();
}

function closeReview() {
  $('review').hidden = true;
  $('grid-section').hidden = false;
  $('review-list').replaceChildren();
  renderGrid();
}

// ---------------------------------------------------------------- export

async function startExport() {
  await save();
  const photos = [];
  for (const p of state.photos) {
    const regions = regionsOf(p.id);
    const exported = state.selected.has(p.id);
    const framing = collage.framing.get(p.id) || null;
    if (exported || regions.length) photos.push({ id: p.id, regions, export: exported, framing });
  }
  if (!photos.some((p) => p.export)) {
    $('progress-text').textContent = 'Select at least one photo to export.';
    return;
  }
  if ($('collage').checked && !(await collageGoAhead())) {
    $('progress-text').textContent = 'Export not started.';
    return;
  }
  if (!(await consentGoAhead())) {
    $('progress-text').textContent = 'Export not started.';
    return;
  }
  if (collage.series !== null) collage.settings.set(collage.series, collageSettings());
  $('export').disabled = true;
  $('results').replaceChildren();
  $('progress').hidden = false;
  $('progress').value = 0;
  $('progress-text').textContent = 'Starting…';
  const resp = await api('/api/export', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      photos, fill: fillHex(), collage: $('collage').checked,
      collage_settings: Object.fromEntries(collageCases().map(([series]) => [series,
        collage.settings.get(series) || { size: 'portrait', layout: 'auto' }])),
      purpose: collage.purpose || null,
    }),
  });
  if (!resp.ok) {
    $('progress-text').textContent = 'Export refused: ' + (await errorText(resp));
    $('export').disabled = false;
    return;
  }
  pollExport();
}

// A case whose collage would lack a file that cannot be used: ask first.
function collageGoAhead() {
  const cases = new Map();
  for (const p of state.photos) {
    if (!cases.has(p.series)) cases.set(p.series, { picked: 0, bad: [] });
    const c = cases.get(p.series);
    if (p.error) c.bad.push(`${p.name} (${p.error})`);
    else if (state.selected.has(p.id)) c.picked += 1;
  }
  const missing = [...cases.values()].filter((c) => c.picked >= 2 && c.bad.length).flatMap((c) => c.bad);
  if (!missing.length) return Promise.resolve(true);
  const box = $('collage-question');
  $('collage-missing').replaceChildren(...missing.map((m) => el('li', { text: m })));
  box.hidden = false;
  $('collage-go').focus();
  return new Promise((resolve) => {
    const answer = (yes) => {
      box.hidden = true;
      $('collage-go').onclick = null;
      $('collage-cancel').onclick = null;
      resolve(yes);
    };
    $('collage-go').onclick = () => answer(true);
    $('collage-cancel').onclick = () => answer(false);
  });
}

async function pollExport() {
  const resp = await api('/api/export');
  if (!resp.ok) {
    $('progress-text').textContent = 'Lost the export: ' + (await errorText(resp));
    $('export').disabled = false;
    return;
  }
  const p = await resp.json();
  $('progress').max = Math.max(1, p.total);
  $('progress').value = p.done;
  $('progress-text').textContent = `${p.done} of ${p.total} done`;
  if (p.running) {
    setTimeout(pollExport, 150);
    return;
  }
  $('export').disabled = false;
  showResults(p);
}

// "Finished: 2 photos exported; 1 up to date (...)".
function finishedWords(results) {
  const same = results.filter((r) => r.status === 'up to date').length;
  const fresh = results.length - same;
  const photos = (n) => `${n} photo${n === 1 ? '' : 's'}`;
  if (!fresh) return `Finished: ${photos(same)} up to date (exported before in the same way; nothing written again).`;
  return `Finished: ${photos(fresh)} exported`
    + (same ? `; ${same} up to date (exported before in the same way; not written again).` : '.');
}

function showResults(p) {
  const failed = p.results.filter((r) => r.error).length + p.collages.filter((c) => c.error).length;
  $('progress-text').textContent = failed
    ? `Finished: ${failed} failed (see below).`
    : finishedWords(p.results);
  const rows = p.results.map((r) => el('tr', {},
    el('td', { text: r.name }),
    el('td', { text: r.output || '—' }),
    el('td', {
      class: r.error ? 'results-error' : '',
    }, r.error ? 'Not exported: ' + r.error : r.done,
    r.error ? null : el('details', { class: 'results-details' }, el('summary', { text: 'Details' }),
      `${r.method === 're-encoded' ? 'Re-encoded' : 'Copied without re-encoding (lossless)'}; `
        + `removed: ${r.removed.join(', ')}.`))));
  const table = el('table', {},
    el('caption', { text: 'What was done' }),
    el('thead', {}, el('tr', {}, ...['Photo', 'Exported as', 'What was done']
      .map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, ...rows));
  const openBtn = el('button', {
    type: 'button', id: 'open-output', text: 'Open the output folder',
    onclick: async () => {
      const r = await api('/api/open-output', { method: 'POST' });
      openBtn.nextSibling.textContent = r.ok ? ' Opened in the file manager.' : ' ' + (await errorText(r));
    },
  });
  const exported = p.results.filter((r) => r.output && !r.error).length
    + p.collages.filter((c) => c.output).length;
  const zip = exported ? el('a', {
    id: 'download-zip', class: 'button', href: `/api/export/zip?t=${token}`, download: 'photodeid-export.zip',
    text: `Download the ${exported} exported file${exported === 1 ? '' : 's'} (ZIP)`,
  }) : null;
  const parts = [el('h3', { text: 'Done' }),
    el('p', {}, 'The files are in ', el('code', { text: p.output_dir }), ' (one folder per case). ', openBtn,
      el('span', { role: 'status' }), ' ', zip), table];
  for (const r of p.results) if (r.output && !r.error) state.exported.set(r.id, { output: r.output, there: true });
  if (p.collages.length) {
    parts.push(el('h3', { text: 'Collages' }), el('ul', {}, ...p.collages.map((c) => el('li', {
      class: c.error ? 'results-error' : '',
      text: c.error ? `${c.series}: failed: ${c.error}` : `${c.series}: ${c.output} (${c.photos} photos)`
        + (c.left_out.length ? `; made without ${c.left_out.join('; ')}` : ''),
    }))));
  }
  if (p.manifest) {
    parts.push(el('p', {}, 'The regions are saved in ', el('code', { text: p.manifest }),
      '. To clean the whole folder with these regions from the command line:'), el('pre', {}, el('code', { text: p.command })));
  }
  if (p.error) parts.push(el('p', { class: 'results-error', text: p.error }));
  $('results').replaceChildren(...parts);
  $('results').setAttribute('tabindex', '-1');
}

// ---------------------------------------------------------------- wiring

document.addEventListener('DOMContentLoaded', () => {
  $('select-all').addEventListener('click', () => {
    state.photos.filter((p) => !p.error).forEach((p) => state.selected.add(p.id));
    renderGrid();
  });
  $('select-none').addEventListener('click', () => {
    state.selected.clear();
    renderGrid();
  });
  $('close-editor').addEventListener('click', closeEditor);
  $('review-open').addEventListener('click', openReview);
  $('review-close').addEventListener('click', closeReview);
  $('filter-text').addEventListener('input', renderGrid);
  $('filter-status').addEventListener('change', renderGrid);
  $('add-region').addEventListener('click', addRegion);
  $('copy-series').addEventListener('click', copyToSeries);
  $('show-original').addEventListener('change', () => refreshPreview('edit'));
  $('fill').addEventListener('change', () => {
    refreshPreview('edit');
    updateThumbs();
  });
  $('export').addEventListener('click', startExport);
  $('prev-photo').addEventListener('click', () => step(-1));
  $('next-photo').addEventListener('click', () => step(1));
  $('zoom-in').addEventListener('click', () => setZoom((state.zoom || 1) * 1.5));
  $('zoom-out').addEventListener('click', () => setZoom((state.zoom || 1) / 1.5));
  $('stage-scroll').addEventListener('wheel', (e) => {
    if (!e.ctrlKey) return; // pinch on a touchpad, or Ctrl+wheel
    e.preventDefault();
    setZoom((state.zoom || 1) * (e.deltaY < 0 ? 1.25 : 0.8));
  }, { passive: false });
  document.addEventListener('keydown', (e) => {
    if (state.current === null || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA')) return;
    if (e.key === 'PageDown') step(1);
    else if (e.key === 'PageUp') step(-1);
    else if (e.key === '+' || e.key === '=') setZoom((state.zoom || 1) * 1.5);
    else if (e.key === '-') setZoom((state.zoom || 1) / 1.5);
    else return;
    e.preventDefault();
  });
  $('undo').addEventListener('click', () => undoRedo(state.undo, state.redo, 'undo'));
  $('redo').addEventListener('click', () => undoRedo(state.redo, state.undo, 'redo'));
  document.addEventListener('keydown', (e) => {
    if (!(e.ctrlKey || e.metaKey) || e.altKey) return;
    const t = e.target;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA')) return;
    const k = e.key.toLowerCase();
    if (k === 'z' && !e.shiftKey) undoRedo(state.undo, state.redo, 'undo');
    else if ((k === 'z' && e.shiftKey) || k === 'y') undoRedo(state.redo, state.undo, 'redo');
    else return;
    e.preventDefault();
  });
  // Leaving with changes not yet saved: the browser asks first.
  window.addEventListener('beforeunload', (e) => {
    if (!window.photodeid.unsaved()) return;
    e.preventDefault();
    e.returnValue = '';
  });
  window.addEventListener('focus', refreshSaved);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) refreshSaved(); });
  updateUndo();
  const stage = $('stage');
  stage.addEventListener('pointerdown', onPointerDown);
  stage.addEventListener('pointermove', onPointerMove);
  stage.addEventListener('pointerup', onPointerUp);
  stage.addEventListener('pointercancel', onPointerUp);
  stage.addEventListener('dragstart', (e) => e.preventDefault());
  loadPhotos();
});

// ---------------------------------------------------------------- collage editor
// The server draws the collage (the library's case pipeline) at its final
// size; this script only keeps the settings and each photo's framing
// (zoom, centre), moves panels by drag and wheel, and saves them with the case.

const collage = {
  series: null,
  settings: new Map(), // series -> settings
  framing: new Map(), // photo id -> {zoom, cx, cy}
  plan: null,
  active: 0,
  seq: 0,
  timer: null,
  saveTimer: null,
  consent: new Map(), // series -> signed date, or null
  purpose: '',
  styles: [], // practice profiles (GET /api/collage/styles)
  defaultStyle: null,
  changedAt: null, // when the first change not yet drawn was made
  cropMode: false,
};
window.photodeid.collageTimings = [];
window.photodeid.collagePreviews = 0;
window.photodeid.collage = () => ({
  series: collage.series,
  plan: collage.plan && { width: collage.plan.width, height: collage.plan.height, tiles: collage.plan.tiles,
    order: collage.plan.order, labels: collage.plan.labels, crops: collage.plan.crops },
  framing: Object.fromEntries(collage.framing),
  settings: collage.series !== null ? collageSettings() : null,
  command: collage.plan && collage.plan.command,
});

function collageCases() {
  const cases = new Map();
  for (const p of state.photos) {
    if (p.error || !state.selected.has(p.id) || !p.series) continue;
    if (!cases.has(p.series)) cases.set(p.series, []);
    cases.get(p.series).push(p.id);
  }
  return [...cases].filter(([, ids]) => ids.length >= 2);
}

function renderCollageCases() {
  const sel = $('collage-case');
  const cases = collageCases();
  const keep = collage.series;
  sel.replaceChildren(...cases.map(([s, ids]) => el('option', { value: s, text: `${s} (${ids.length} photos)` })));
  if (!cases.length) {
    collage.series = null;
    $('collage-status').textContent = 'Select two or more photos of a case folder to make its collage.';
    $('collage-preview').removeAttribute('src');
    $('collage-stage').querySelectorAll('.panel-box').forEach((b) => b.remove());
    return;
  }
  collage.series = cases.some(([s]) => s === keep) ? keep : cases[0][0];
  sel.value = collage.series;
  loadCollageSettings();
}

function collageSettings() {
  const labels = [...document.querySelectorAll('#collage-labels input')].map((i) => i.value);
  const s = {
    size: $('collage-size').value || null,
    layout: $('collage-layout').value,
    // Sent as typed, empty too: an empty title is no title, not the style's.
    title: $('collage-title-text').value,
    footer: $('collage-footer').value,
    labels: labels.length ? labels : null,
    time_labels: $('collage-time-labels').checked,
    background: $('collage-background').value.slice(1),
    label_color: $('collage-ink').value.slice(1),
    style: $('collage-style').value,
  };
  const st = styleOf(s.style);
  if (st && st.logo) {
    s.logo = $('collage-logo').checked;
    s.logo_corner = $('collage-logo-corner').value;
    s.logo_size = clamp(Number($('collage-logo-size').value) || 18, 2, 100) / 100;
    s.logo_opacity = clamp(Number($('collage-logo-opacity').value), 0, 100) / 100;
  }
  return s;
}

// ---- practice styles: the profiles `serve --style` (and the folder) offer.

function styleOf(id) {
  return collage.styles.find((s) => s.id === id) || null;
}

async function loadStyles() {
  const resp = await api('/api/collage/styles');
  if (!resp.ok) return;
  const j = await resp.json();
  collage.styles = j.styles;
  collage.defaultStyle = j.default;
  const name = (s) => `${s.id} (${s.file.split(/[\\/]/).pop()})`;
  $('collage-style').replaceChildren(el('option', { value: '', text: 'None' }),
    ...j.styles.map((s) => el('option', { value: s.id, text: name(s) })));
  $('collage-style-note').textContent = j.problems.length ? 'Not offered: ' + j.problems.join('; ') : '';
}

// A size as the select knows it ("portrait"), or an option of its own.
function sizeOption(size) {
  const names = { '1080x1350': 'portrait', '1080x1080': 'square', '1080x1920': 'story', '1200x630': 'landscape' };
  const v = names[size] || size;
  const sel = $('collage-size');
  if (![...sel.options].some((o) => o.value === v)) {
    const [w, h] = size.split('x');
    sel.append(el('option', { value: v, text: `${w} × ${h} (practice style)` }));
  }
  return v;
}

// The form shows what a profile sets (its logo, colours, footer...).
function applyStyle(id) {
  const st = styleOf(id);
  $('collage-style').value = st ? st.id : '';
  showLogoFields(st);
  if (!st) return;
  if (st.size) $('collage-size').value = sizeOption(st.size);
  if (st.layout) $('collage-layout').value = st.layout;
  if (st.background) $('collage-background').value = '#' + st.background;
  if (st.label_color) $('collage-ink').value = '#' + st.label_color;
  if (st.footer) $('collage-footer').value = st.footer;
  if (st.title) $('collage-title-text').value = st.title;
  if (st.logo) {
    $('collage-logo').checked = true;
    $('collage-logo-corner').value = st.logo.corner;
    $('collage-logo-size').value = String(Math.round(st.logo.size * 100));
    $('collage-logo-opacity').value = String(Math.round(st.logo.opacity * 100));
  }
}

function showLogoFields(st) {
  $('collage-logo-fields').hidden = !(st && st.logo);
}

// The form shows the case's saved settings.
function loadCollageSettings() {
  const saved = collage.settings.get(collage.series);
  const s = saved || {};
  $('collage-size').value = s.size === undefined ? 'portrait' : sizeOption(s.size || '');
  $('collage-layout').value = s.layout || 'auto';
  $('collage-title-text').value = s.title || '';
  $('collage-footer').value = s.footer || '';
  $('collage-time-labels').checked = !!s.time_labels;
  $('collage-background').value = '#' + (s.background || 'ffffff');
  $('collage-ink').value = '#' + (s.label_color || '141414');
  // A case never set up starts from the default profile; a saved one shows what was saved.
  const styleId = s.style === undefined || s.style === null ? (collage.defaultStyle || '') : s.style;
  if (saved) {
    $('collage-style').value = styleOf(styleId) ? styleId : '';
    const st = styleOf($('collage-style').value);
    showLogoFields(st);
    if (st && st.logo) {
      $('collage-logo').checked = s.logo !== false;
      $('collage-logo-corner').value = s.logo_corner || st.logo.corner;
      $('collage-logo-size').value = String(Math.round((s.logo_size || st.logo.size) * 100));
      $('collage-logo-opacity').value = String(Math.round((s.logo_opacity ?? st.logo.opacity) * 100));
    }
  } else {
    applyStyle(styleId);
  }
  collage.savedLabels = s.labels || null;
  $('collage-labels').replaceChildren();
  collage.active = 0;
  updateConsentStatus();
  refreshCollage();
}

function collageMembers() {
  const c = collageCases().find(([s]) => s === collage.series);
  return c ? c[1] : [];
}

function collageBody() {
  return {
    photos: collageMembers().map((id) => ({ id, regions: regionsOf(id), framing: collage.framing.get(id) || null })),
    settings: collageSettings(),
    fill: fillHex(),
    purpose: collage.purpose || null,
  };
}

function scheduleCollage(save) {
  if (collage.changedAt === null) collage.changedAt = performance.now();
  clearTimeout(collage.timer);
  collage.timer = setTimeout(refreshCollage, 60);
  if (save) {
    clearTimeout(collage.saveTimer);
    collage.saveTimer = setTimeout(saveCollage, 400);
  }
}

async function refreshCollage() {
  if (collage.series === null) return;
  const seq = ++collage.seq;
  const t0 = performance.now();
  const changed = collage.changedAt ?? t0;
  collage.changedAt = null;
  const body = collageBody();
  if (!body.settings.labels && collage.savedLabels && collage.savedLabels.length === body.photos.length) {
    body.settings.labels = collage.savedLabels;
  }
  if (body.settings.labels && body.settings.labels.length !== body.photos.length) body.settings.labels = null;
  $('collage-status').textContent = 'Drawing the collage…';
  const resp = await api('/api/collage/preview', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  if (seq !== collage.seq) return;
  if (!resp.ok) {
    $('collage-status').textContent = 'Cannot draw the collage: ' + (await errorText(resp));
    return;
  }
  const plan = await resp.json();
  const img = $('collage-preview');
  await new Promise((resolve) => {
    img.onload = resolve;
    img.onerror = resolve;
    img.src = plan.image;
  });
  if (seq !== collage.seq) return;
  collage.plan = plan;
  const loaded = performance.now();
  const ms = Math.round(loaded - t0);
  // fromInput: from the change (before the debounce) to the new image's load.
  window.photodeid.collageTimings.push({ ms, fromInput: Math.round(loaded - changed), server: plan.ms });
  $('collage-command').textContent = plan.command;
  window.photodeid.collagePreviews += 1;
  $('collage-status').textContent = `${plan.width} × ${plan.height} pixels, ${plan.order.length} panels.`;
  $('collage-status').title = `Drawn in ${ms} ms.`;
  renderCollageLabels(plan);
  renderPanels(plan);
}

function renderCollageLabels(plan) {
  const list = $('collage-labels');
  const inputs = list.querySelectorAll('input');
  if (inputs.length === plan.labels.length) return;
  const name = (id) => (photo(id) || { name: '' }).name.split('/').pop();
  list.replaceChildren(...plan.labels.map((l, i) => {
    const input = el('input', { type: 'text', id: `collage-label-${i}`, maxlength: '200' });
    input.value = l;
    input.addEventListener('input', () => scheduleCollage(true));
    return el('li', {}, el('label', { for: `collage-label-${i}`, text: `Panel ${i + 1} (${name(plan.order[i])})` }), ' ', input);
  }));
}

function renderPanels(plan) {
  const stage = $('collage-stage');
  stage.querySelectorAll('.panel-box').forEach((b) => b.remove());
  plan.tiles.forEach((t, i) => {
    const id = plan.order[i];
    const box = el('button', {
      type: 'button',
      class: 'panel-box' + (i === collage.active ? ' active' : ''),
      'data-index': String(i),
      'aria-label': `Panel ${i + 1}: ${(photo(id) || { name: '' }).name}. Arrow keys move the photo, + and - zoom.`,
    });
    Object.assign(box.style, {
      left: (t.x / plan.width * 100) + '%', top: (t.y / plan.height * 100) + '%',
      width: (t.w / plan.width * 100) + '%', height: (t.h / plan.height * 100) + '%',
    });
    box.addEventListener('pointerdown', (e) => panelDown(e, i));
    box.addEventListener('wheel', (e) => { e.preventDefault(); zoomPanel(i, e.deltaY < 0 ? 1.25 : 0.8); }, { passive: false });
    box.addEventListener('keydown', (e) => panelKey(e, i));
    box.addEventListener('focus', () => { collage.active = i; });
    stage.append(box);
  });
}

// The framing a panel shows now (what the server drew), as zoom and centre.
function framingOf(i) {
  const id = collage.plan.order[i];
  const c = collage.plan.crops[i];
  const f = collage.framing.get(id) || { zoom: 1, cx: 0.5, cy: 0.5 };
  return { id, crop: c, f: { zoom: f.zoom, cx: c.x + c.w / 2, cy: c.y + c.h / 2 } };
}

// A drawn crop [x, y, w, h] kept inside the photo.
function cropInside([x, y, w, h]) {
  w = clamp(w, 0.001, 1);
  h = clamp(h, 0.001, 1);
  return [clamp(x, 0, 1 - w), clamp(y, 0, 1 - h), w, h];
}

// Moves the photo in panel i by (dx, dy) panel widths/heights.
function movePanel(i, dx, dy) {
  const stored = collage.framing.get(collage.plan.order[i]);
  if (stored && stored.crop) {
    // A drawn crop moves as a crop (the shown part, panel-shaped, is plan.crops[i]).
    const c = collage.plan.crops[i];
    const [x, y, w, h] = stored.crop;
    collage.framing.set(collage.plan.order[i], { crop: cropInside([x - dx * c.w, y - dy * c.h, w, h]) });
    scheduleCollage(true);
    return;
  }
  const { id, crop, f } = framingOf(i);
  f.cx = clamp(f.cx - dx * crop.w, 0, 1);
  f.cy = clamp(f.cy - dy * crop.h, 0, 1);
  collage.framing.set(id, f);
  scheduleCollage(true);
}

function zoomPanel(i, k) {
  if (!collage.plan) return;
  const stored = collage.framing.get(collage.plan.order[i]);
  if (stored && stored.crop) {
    const [x, y, w, h] = stored.crop;
    const [nw, nh] = [w / k, h / k];
    collage.framing.set(collage.plan.order[i], { crop: cropInside([x + (w - nw) / 2, y + (h - nh) / 2, nw, nh]) });
    collage.active = i;
    scheduleCollage(true);
    return;
  }
  const { id, f } = framingOf(i);
  f.zoom = clamp(f.zoom * k, 1, 20);
  collage.framing.set(id, f);
  collage.active = i;
  scheduleCollage(true);
}

let panelDrag = null;
function panelDown(e, i) {
  if (e.button !== 0 || !collage.plan) return;
  collage.active = i;
  const box = e.currentTarget;
  box.setPointerCapture(e.pointerId);
  if (collage.cropMode) {
    cropDown(e, i, box);
    return;
  }
  panelDrag = { i, x: e.clientX, y: e.clientY, box, w: box.getBoundingClientRect().width, h: box.getBoundingClientRect().height };
  box.addEventListener('pointermove', panelMove);
  box.addEventListener('pointerup', panelUp, { once: true });
  box.addEventListener('pointercancel', panelUp, { once: true });
  e.preventDefault();
}

function panelMove(e) {
  if (!panelDrag) return;
  panelDrag.box.style.transform = `translate(${e.clientX - panelDrag.x}px, ${e.clientY - panelDrag.y}px)`;
}

function panelUp(e) {
  if (!panelDrag) return;
  const d = panelDrag;
  panelDrag = null;
  d.box.removeEventListener('pointermove', panelMove);
  d.box.style.transform = '';
  const dx = (e.clientX - d.x) / d.w;
  const dy = (e.clientY - d.y) / d.h;
  if (Math.abs(dx) > 0.005 || Math.abs(dy) > 0.005) movePanel(d.i, dx, dy);
}

// ---- drawing the crop: a rectangle of the panel's shape, dragged on it.
let cropDrag = null;
function cropDown(e, i, box) {
  const r = box.getBoundingClientRect();
  const mark = el('div', { class: 'crop-rect' });
  box.append(mark);
  cropDrag = { i, box, r, mark, sx: e.clientX - r.left, sy: e.clientY - r.top, rect: null };
  box.addEventListener('pointermove', cropMove);
  box.addEventListener('pointerup', cropUp, { once: true });
  box.addEventListener('pointercancel', cropUp, { once: true });
  e.preventDefault();
}

// The rectangle from the press to (x, y), snapped to the panel's shape and
// kept inside it; in pixels of the panel on screen.
function snappedRect(d, x, y) {
  const { width: w, height: h } = d.r;
  const a = w / h;
  const [dx, dy] = [x - d.sx, y - d.sy];
  let [rw, rh] = Math.abs(dx) / Math.max(Math.abs(dy), 1e-9) > a
    ? [Math.abs(dx), Math.abs(dx) / a] : [Math.abs(dy) * a, Math.abs(dy)];
  const roomX = dx >= 0 ? w - d.sx : d.sx;
  const roomY = dy >= 0 ? h - d.sy : d.sy;
  const k = Math.min(1, roomX / Math.max(rw, 1e-9), roomY / Math.max(rh, 1e-9));
  [rw, rh] = [rw * k, rh * k];
  return { x: dx >= 0 ? d.sx : d.sx - rw, y: dy >= 0 ? d.sy : d.sy - rh, w: rw, h: rh };
}

function cropMove(e) {
  if (!cropDrag) return;
  const d = cropDrag;
  d.rect = snappedRect(d, e.clientX - d.r.left, e.clientY - d.r.top);
  Object.assign(d.mark.style, { left: d.rect.x + 'px', top: d.rect.y + 'px', width: d.rect.w + 'px', height: d.rect.h + 'px' });
}

function cropUp(e) {
  if (!cropDrag) return;
  cropMove(e);
  const d = cropDrag;
  cropDrag = null;
  d.box.removeEventListener('pointermove', cropMove);
  setCropMode(false);
  if (!d.rect || d.rect.w < 6 || d.rect.h < 6) { d.mark.remove(); return; }
  // From the panel to the photo: the panel shows plan.crops[i] of it.
  const c = collage.plan.crops[d.i];
  const { width: w, height: h } = d.r;
  const crop = cropInside([c.x + d.rect.x / w * c.w, c.y + d.rect.y / h * c.h, d.rect.w / w * c.w, d.rect.h / h * c.h]);
  collage.framing.set(collage.plan.order[d.i], { crop });
  scheduleCollage(true);
}

function setCropMode(on) {
  collage.cropMode = on;
  $('panel-crop').setAttribute('aria-pressed', String(on));
  $('collage-stage').classList.toggle('cropping', on);
}

function panelKey(e, i) {
  const step = 0.05;
  const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
  if (moves[e.key]) {
    movePanel(i, ...moves[e.key]);
  } else if (e.key === '+' || e.key === '=') {
    zoomPanel(i, 1.25);
  } else if (e.key === '-') {
    zoomPanel(i, 0.8);
  } else {
    return;
  }
  e.preventDefault();
}

async function loadCollageSaved() {
  const resp = await api('/api/collage/settings');
  if (!resp.ok) return;
  const j = await resp.json();
  collage.settings = new Map(Object.entries(j.settings));
  collage.framing = new Map(Object.entries(j.framing).map(([k, v]) => [Number(k), v]));
}

async function saveCollage() {
  if (collage.series === null) return;
  const settings = collageSettings();
  collage.settings.set(collage.series, settings);
  const framing = {};
  for (const id of collageMembers()) if (collage.framing.has(id)) framing[id] = collage.framing.get(id);
  const resp = await api('/api/collage/settings', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ series: collage.series, settings, framing }),
  });
  window.photodeid.collageSaves = (window.photodeid.collageSaves || 0) + 1;
  if (!resp.ok) $('collage-status').textContent = 'The collage settings are not saved: ' + (await errorText(resp));
}

// ---------------------------------------------------------------- consent

async function loadConsent() {
  collage.purpose = $('collage-purpose').value;
  collage.consent = new Map();
  if (collage.purpose) {
    const resp = await api('/api/consent?purpose=' + encodeURIComponent(collage.purpose));
    if (resp.ok) collage.consent = new Map(Object.entries((await resp.json()).cases));
  }
  updateConsentStatus();
  // The recommended command names the register and the purpose.
  scheduleCollage(false);
}

function purposeWords(p) {
  return ($('collage-purpose').querySelector(`option[value="${p}"]`) || { textContent: p }).textContent.toLowerCase();
}

function consentWords(series) {
  if (!collage.purpose) return '';
  const signed = collage.consent.get(series);
  return signed
    ? `Written permission for ${purposeWords(collage.purpose)} on file (signed ${signed}).`
    : `No written permission for ${purposeWords(collage.purpose)} on file.`;
}

function updateConsentStatus() {
  $('consent-status').textContent = collage.series === null ? '' : consentWords(collage.series);
  document.querySelectorAll('.series .consent').forEach((s) => {
    s.textContent = consentWords(s.dataset.series);
    s.classList.toggle('none', !!collage.purpose && !collage.consent.get(s.dataset.series));
  });
}

// Before an export for posting: each case without permission on file is
// asked about; a date recorded goes into the register. False: cancelled.
async function consentGoAhead() {
  if (!$('collage').checked || !collage.purpose) return true;
  for (const [series] of collageCases()) {
    if (collage.consent.get(series)) continue;
    const box = $('consent-question');
    $('consent-q-case').textContent = `${series}: ${purposeWords(collage.purpose)}.`;
    box.hidden = false;
    $('consent-date').focus();
    const date = await new Promise((resolve) => {
      $('consent-record').onclick = () => {
        if (!$('consent-date').value) { $('consent-date').focus(); return; }
        resolve($('consent-date').value);
      };
      $('consent-cancel').onclick = () => resolve(null);
    });
    box.hidden = true;
    if (!date) return false;
    const resp = await api('/api/consent', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ series, purpose: collage.purpose, signed: date }),
    });
    if (!resp.ok) {
      $('progress-text').textContent = 'Permission not recorded: ' + (await errorText(resp));
      return false;
    }
    collage.consent = new Map(Object.entries((await resp.json()).cases));
    updateConsentStatus();
  }
  return true;
}

document.addEventListener('DOMContentLoaded', () => {
  $('collage-case').addEventListener('change', () => { collage.series = $('collage-case').value; loadCollageSettings(); });
  for (const id of ['collage-size', 'collage-layout', 'collage-time-labels', 'collage-background', 'collage-ink',
    'collage-logo', 'collage-logo-corner', 'collage-logo-size', 'collage-logo-opacity']) {
    $(id).addEventListener('change', () => scheduleCollage(true));
  }
  $('collage-style').addEventListener('change', () => { applyStyle($('collage-style').value); scheduleCollage(true); });
  $('panel-crop').addEventListener('click', () => setCropMode(!collage.cropMode));
  for (const id of ['collage-title-text', 'collage-footer']) $(id).addEventListener('input', () => scheduleCollage(true));
  $('collage-purpose').addEventListener('change', loadConsent);
  $('panel-zoom-in').addEventListener('click', () => zoomPanel(collage.active, 1.25));
  $('panel-zoom-out').addEventListener('click', () => zoomPanel(collage.active, 0.8));
  $('panel-reset').addEventListener('click', () => {
    if (!collage.plan) return;
    collage.framing.set(collage.plan.order[collage.active], { zoom: 1, cx: 0.5, cy: 0.5 });
    scheduleCollage(true);
  });
  $('grid').addEventListener('change', (e) => {
    if (e.target.matches('input[type=checkbox]')) renderCollageCases();
  });
  $('select-all').addEventListener('click', renderCollageCases);
  $('select-none').addEventListener('click', renderCollageCases);
});
