// photodeid serve: face and eye-bar proposals (GET /api/photos/ID/faces).
// Proposals are dashed outlines with their score; a person accepts or
// dismisses each, and accepted ones become ordinary editable regions.
// Uses app.js's globals (state, api, el, $, regionsOf, normalise,
// renderRegions, refreshPreview).
'use strict';

const faces = {
  byPhoto: new Map(), // id -> {available, found, faces: [...], message}
  dismissed: new Map(), // id -> Set of proposal keys
  eyeRegions: new WeakSet(), // regions accepted from eye proposals
  faceRegions: new WeakSet(), // regions accepted from face proposals
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

function acceptProposal(id, i, kind) {
  const f = faces.byPhoto.get(id).faces[i];
  const box = kind === 'face' ? f.face : f.eyes;
  const r = normalise({ x: box.x, y: box.y, w: box.w, h: box.h,
    shape: kind === 'face' ? 'ellipse' : 'rect', effect: $('effect').value });
  (kind === 'face' ? faces.faceRegions : faces.eyeRegions).add(r);
  regionsOf(id).push(r);
  dismissedOf(id).add(`${kind}${i}`);
}

function acceptAll(kind) {
  const id = state.current;
  const data = faces.byPhoto.get(id);
  data.faces.forEach((f, i) => {
    if (f.likely && !dismissedOf(id).has(`${kind}${i}`)) acceptProposal(id, i, kind);
  });
  afterChange();
}

function afterChange() {
  renderRegions();
  refreshPreview('edit');
  renderProposals();
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
      if (dismissedOf(id).has(key)) continue;
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
          onclick: () => { acceptProposal(id, i, kind); afterChange(); } }),
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
  const regions = regionsOf(id);
  const eyesOnly = regions.some((r) => faces.eyeRegions.has(r)) && !regions.some((r) => faces.faceRegions.has(r));
  if (eyesOnly) {
    parts.push(el('p', { class: 'warn', id: 'eyes-only-note', role: 'note',
      text: 'Only the eyes are covered. Masking the eyes does not make a face anonymous (ICMJE): cover the whole face to share it.' }));
  }
  parts.push(el('p', { class: 'muted', text: 'The detector can miss faces (profiles, shadow, small faces): look at the whole photo.' }));
  p.replaceChildren(...parts);
}

window.photodeidFaces = { open: loadProposals, render: renderProposals };
