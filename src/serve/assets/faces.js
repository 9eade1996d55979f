// photodeid serve: face and eye-bar proposals (GET /api/photos/ID/faces).
// Proposals are dashed outlines with their score; a person accepts or
// dismisses each, and accepted ones become ordinary editable regions.
// Uses app.js's globals (state, api, el, $, clone, regionsOf, normalise,
// changed, renderRegions, refreshPreview); app.js's renderRegions calls
// render() so outlines and the eyes-only note follow every region change.
'use strict';

const faces = {
  byPhoto: new Map(), // id -> {available, found, faces: [...], message}
  dismissed: new Map(), // id -> Set of proposal keys
};

function dismissedOf(id) {
  if (!faces.dismissed.has(id)) faces.dismissed.set(id, new Set());
  return faces.dismissed.get(id);
}

async function loadProposals(id) {
  if (!faces.byPhoto.has(id)) {
    faces.byPhoto.set(id, { loading: true, faces: [] });
    renderProposals();
    try {
      const resp = await api(`/api/photos/${id}/faces`);
      faces.byPhoto.set(id, resp.ok ? await resp.json()
        : { available: false, message: await errorText(resp), faces: [] });
    } catch (e) {
      faces.byPhoto.set(id, { available: false, message: String(e), faces: [] });
    }
  }
  if (state.current === id) renderProposals();
}

function panel() {
  let p = $('proposals');
  if (!p) {
    p = el('div', { id: 'proposals', 'aria-labelledby': 'proposals-title' });
    const list = $('region-list');
    list.parentNode.insertBefore(p, $('regions-title'));
  }
  return p;
}

// Accepted proposals are ordinary regions (saved, undone, edited like any
// other), so "accepted" is read off the regions: one at the proposal's box.
function matchesBox(r, box) {
  return ['x', 'y', 'w', 'h'].every((k) => Math.abs(r[k] - box[k]) <= 0.05);
}

// A region over the face's centre and at least half its size covers it.
function coversFace(r, box) {
  const cx = box.x + box.w / 2;
  const cy = box.y + box.h / 2;
  return cx >= r.x && cx <= r.x + r.w && cy >= r.y && cy <= r.y + r.h
    && r.w * r.h >= 0.5 * box.w * box.h;
}

function accepted(id, f, kind) {
  return regionsOf(id).some((r) => matchesBox(r, kind === 'face' ? f.face : f.eyes));
}

function proposalRegion(f, kind) {
  const box = kind === 'face' ? f.face : f.eyes;
  return normalise({ x: box.x, y: box.y, w: box.w, h: box.h,
    shape: kind === 'face' ? 'ellipse' : 'rect', effect: $('effect').value });
}

// Adds the proposals (pairs [face, kind]) not yet accepted, as one undo step.
function accept(id, picked) {
  const before = clone(regionsOf(id));
  const fresh = picked.filter(([f, kind]) => !accepted(id, f, kind));
  if (!fresh.length) return;
  for (const [f, kind] of fresh) regionsOf(id).push(proposalRegion(f, kind));
  changed([id], [before]);
  renderRegions();
  refreshPreview('edit');
}

function acceptAll(kind) {
  const id = state.current;
  const data = faces.byPhoto.get(id);
  accept(id, data.faces
    .map((f, i) => [f, i])
    .filter(([f, i]) => f.likely && !dismissedOf(id).has(`${kind}${i}`))
    .map(([f]) => [f, kind]));
}

// Eye bars accepted on a face that no region covers.
function eyesOnly(id, data) {
  const regions = regionsOf(id);
  return data.faces.some((f) => accepted(id, f, 'eyes') && !regions.some((r) => coversFace(r, f.face)));
}

function renderProposals() {
  const id = state.current;
  if (id === null) return;
  const p = panel();
  const stage = $('stage');
  stage.querySelectorAll('.proposal').forEach((e) => e.remove());
  const data = faces.byPhoto.get(id);
  const parts = [el('h3', { id: 'proposals-title', text: 'Faces found for you' })];
  if (!data || data.loading) {
    parts.push(el('p', { text: 'Looking for faces…' }));
    p.replaceChildren(...parts);
    return;
  }
  if (!data.available) {
    parts.push(el('p', { class: 'warn', text: `Face detection is not available: ${data.message}` }));
    p.replaceChildren(...parts);
    return;
  }
  if (!data.found) {
    parts.push(el('p', { class: 'warn banner', role: 'alert', text: 'No face found: check the photo yourself.' }));
  }
  const list = el('ol', { class: 'proposal-list' });
  data.faces.forEach((f, i) => {
    for (const kind of ['face', 'eyes']) {
      const key = `${kind}${i}`;
      if (dismissedOf(id).has(key) || accepted(id, f, kind)) continue;
      const box = kind === 'face' ? f.face : f.eyes;
      const label = `${kind === 'face' ? 'Face' : 'Eye bar'} ${i + 1}, score ${f.score.toFixed(2)}`
        + (f.likely ? '' : ' (maybe)') + (kind === 'eyes' && f.eyes_from === 'band' ? ', eyes not located: a band' : '');
      const outline = el('div', {
        class: `proposal ${kind} ${kind === 'face' ? 'ellipse' : 'rect'}${f.likely ? '' : ' maybe'}`,
        'aria-hidden': 'true', 'data-key': key,
      }, el('span', { class: 'score', text: f.score.toFixed(2) }));
      Object.assign(outline.style, { left: box.x + '%', top: box.y + '%', width: box.w + '%', height: box.h + '%' });
      stage.append(outline);
      list.append(el('li', {},
        el('span', { text: label + ' ' }),
        el('button', { type: 'button', class: 'accept', 'data-key': key, text: 'Accept',
          onclick: () => accept(id, [[f, kind]]) }),
        el('button', { type: 'button', class: 'dismiss', 'data-key': key, text: 'Dismiss',
          onclick: () => { dismissedOf(id).add(key); renderProposals(); } })));
    }
  });
  parts.push(list);
  if (data.faces.some((f) => f.likely)) {
    parts.push(el('div', { class: 'toolbar' },
      el('button', { type: 'button', id: 'accept-faces', text: 'Accept all faces', onclick: () => acceptAll('face') }),
      el('button', { type: 'button', id: 'accept-eyes', text: 'Accept all eye bars', onclick: () => acceptAll('eyes') })));
  }
  if (eyesOnly(id, data)) {
    parts.push(el('p', { class: 'warn', id: 'eyes-only-note', role: 'note',
      text: 'Only the eyes are covered. Masking the eyes does not make a face anonymous (ICMJE): cover the whole face to share it.' }));
  }
  parts.push(el('p', { class: 'muted', text: 'The detector can miss faces (profiles, shadow, small faces): look at the whole photo.' }));
  p.replaceChildren(...parts);
}

// The one likely face of photo `id`, in its pixels; null if none or several
// (an anchor must be unambiguous) or not looked for yet.
function onlyFace(p) {
  const data = faces.byPhoto.get(p.id);
  if (!data || !data.faces || !p.width || !p.height) return null;
  const likely = data.faces.filter((f) => f.likely);
  if (likely.length !== 1) return null;
  const b = likely[0].face;
  return { cx: (b.x + b.w / 2) / 100 * p.width, cy: (b.y + b.h / 2) / 100 * p.height, s: b.w / 100 * p.width };
}

// Copying across a series, anchored on the face: a region keeps its place and
// size relative to the face found on `from` and on `to` (offset and size in
// units of the face's width), so a face region follows the face when the
// framing or the distance changes. Null: app.js places it from the centre.
function anchor(from, to) {
  const a = onlyFace(from);
  const b = onlyFace(to);
  if (!a || !b) return null;
  const k = b.s / a.s;
  return (r) => {
    const w = r.w / 100 * from.width * k;
    const h = r.h / 100 * from.height * k;
    const cx = b.cx + ((r.x + r.w / 2) / 100 * from.width - a.cx) * k;
    const cy = b.cy + ((r.y + r.h / 2) / 100 * from.height - a.cy) * k;
    return normalise(Object.assign({}, r, {
      x: (cx - w / 2) / to.width * 100, y: (cy - h / 2) / to.height * 100,
      w: w / to.width * 100, h: h / to.height * 100,
    }));
  };
}

// The other photos of the series are looked at in the background (one at a
// time; the server caches), so a copy to the series can anchor on their faces.
async function prefetchSeries(id) {
  const p = state.photos.find((q) => q.id === id);
  if (!p) return;
  for (const q of state.photos) {
    if (q.series === p.series && q.id !== id && !q.error && !faces.byPhoto.has(q.id)) {
      await loadProposals(q.id);
    }
  }
}

async function open(id) {
  await loadProposals(id);
  const data = faces.byPhoto.get(id);
  if (data && data.available) await prefetchSeries(id);
}

window.photodeidFaces = { open, render: renderProposals, anchor };
