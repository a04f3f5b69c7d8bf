// raddraft review pages: keyboard navigation, window/level and zoom, sign and reject.
// Loaded as a file so the Content-Security-Policy can forbid inline script; all text is set with textContent.
'use strict';

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? '';
  // Unsaved edits are kept per signed-in user, so the next user of a shared workstation never gets them.
  const user = document.body.dataset.user ?? '';
  const DRAFT_PREFIX = 'raddraft:draft:';
  const forgetAllEdits = () => {
    for (const k of Object.keys(localStorage)) if (k.startsWith(DRAFT_PREFIX)) localStorage.removeItem(k);
    sessionStorage.clear();
  };
  // Edits saved before they were kept per user cannot be attributed to anyone.
  for (const k of Object.keys(localStorage)) if (/^raddraft:draft:[^:]+$/.test(k)) localStorage.removeItem(k);

  document.getElementById('sign-out')?.addEventListener('click', async () => {
    forgetAllEdits();
    await fetch('/review/logout', { method: 'POST', headers: { 'x-csrf-token': csrf } }).catch(() => undefined);
    location.href = '/review/signed-out';
  });
  if (location.pathname === '/review/signed-out') forgetAllEdits();

  // Worklist: j/k to move, Enter or click to open.
  const rows = Array.from(document.querySelectorAll('#worklist tbody tr'));
  if (rows.length) {
    let current = 0;
    const select = (i) => {
      rows[current]?.classList.remove('selected');
      current = Math.max(0, Math.min(rows.length - 1, i));
      rows[current].classList.add('selected');
      rows[current].scrollIntoView({ block: 'nearest' });
    };
    select(0);
    document.addEventListener('keydown', (e) => {
      if (e.target instanceof HTMLInputElement) return;
      if (e.key === 'j') select(current + 1);
      else if (e.key === 'k') select(current - 1);
      else if (e.key === 'Enter') location.href = rows[current].dataset.href;
    });
    rows.forEach((row) => row.addEventListener('click', (e) => {
      if (!(e.target instanceof HTMLAnchorElement)) location.href = row.dataset.href;
    }));
  }

  // Viewer: window/level with the arrow keys, zoom with +/- or the wheel, drag to pan, 0 to reset.
  for (const fig of document.querySelectorAll('figure.viewer')) {
    const img = fig.querySelector('img');
    const label = fig.querySelector('.wl');
    const initial = { center: Number(fig.dataset.center), width: Number(fig.dataset.width) };
    const state = { center: initial.center, width: initial.width, zoom: 1, x: 0, y: 0 };
    let timer;
    const showWindow = () => {
      if (Number.isFinite(state.center) && Number.isFinite(state.width)) {
        label.textContent = `W ${Math.round(state.width)} / L ${Math.round(state.center)}`;
      }
    };
    const reload = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        img.src = `${fig.dataset.src}?size=1600&wc=${state.center}&ww=${state.width}`;
      }, 150);
      showWindow();
    };
    const place = () => {
      img.style.transform = `translate(${state.x}px, ${state.y}px) scale(${state.zoom})`;
    };
    showWindow();
    fig.addEventListener('keydown', (e) => {
      const step = Math.max(1, state.width * 0.05);
      if (e.key === 'ArrowLeft') state.width = Math.max(1, state.width - step);
      else if (e.key === 'ArrowRight') state.width += step;
      else if (e.key === 'ArrowUp') state.center += step / 2;
      else if (e.key === 'ArrowDown') state.center -= step / 2;
      else if (e.key === '+' || e.key === '=') { state.zoom = Math.min(8, state.zoom * 1.25); place(); e.preventDefault(); return; }
      else if (e.key === '-') { state.zoom = Math.max(1, state.zoom / 1.25); if (state.zoom === 1) { state.x = 0; state.y = 0; } place(); e.preventDefault(); return; }
      else if (e.key === '0') { Object.assign(state, initial, { zoom: 1, x: 0, y: 0 }); place(); reload(); e.preventDefault(); return; }
      else return;
      e.preventDefault();
      if (Number.isFinite(state.center)) reload();
    });
    fig.addEventListener('wheel', (e) => {
      e.preventDefault();
      state.zoom = Math.max(1, Math.min(8, state.zoom * (e.deltaY < 0 ? 1.15 : 1 / 1.15)));
      if (state.zoom === 1) { state.x = 0; state.y = 0; }
      place();
    }, { passive: false });
    let drag;
    fig.addEventListener('pointerdown', (e) => { drag = { x: e.clientX - state.x, y: e.clientY - state.y }; fig.setPointerCapture(e.pointerId); });
    fig.addEventListener('pointermove', (e) => { if (drag && state.zoom > 1) { state.x = e.clientX - drag.x; state.y = e.clientY - drag.y; place(); } });
    fig.addEventListener('pointerup', () => { drag = undefined; });
  }

  // Draft editor: sign, reject, and never lose typed text.
  const article = document.querySelector('article.report');
  const form = document.getElementById('review-form');
  if (!article || !form) return;
  const id = article.dataset.report;
  const version = article.dataset.version;
  const findings = document.getElementById('findings');
  const impression = document.getElementById('impression');
  const outcome = document.getElementById('outcome');
  const buttons = () => Array.from(form.querySelectorAll('button'));
  const key = `${DRAFT_PREFIX}${encodeURIComponent(user)}:${id}`;

  const say = (text, kind) => {
    outcome.textContent = text;
    outcome.className = kind ?? '';
  };

  if (!findings.readOnly && user) {
    let saved;
    try {
      saved = JSON.parse(localStorage.getItem(key) ?? 'null');
    } catch {
      saved = null;
    }
    if (saved && saved.u === user && typeof saved.f === 'string' && typeof saved.i === 'string') {
      if (saved.f !== findings.value || saved.i !== impression.value) {
        findings.value = saved.f;
        impression.value = saved.i;
        // Edits made on another version are restored (the text is the radiologist's own) but never silently.
        say(saved.v === version
          ? 'Your unsaved edits from earlier were restored.'
          : `Your unsaved edits from earlier were restored. They were made on version ${saved.v} of the draft, which has changed since (now version ${version}): compare before signing.`);
      }
    }
    for (const area of [findings, impression]) {
      area.addEventListener('input', () => localStorage.setItem(key, JSON.stringify({ u: user, v: version, f: findings.value, i: impression.value })));
    }
  }

  async function post(action, body) {
    buttons().forEach((b) => { b.disabled = true; });
    try {
      const res = await fetch(`/api/reports/${encodeURIComponent(id)}/${action}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
        body: JSON.stringify(body),
      });
      const json = await res.json().catch(() => ({}));
      if (res.ok) return json;
      const text = json?.issue?.[0]?.diagnostics ?? `The server answered HTTP ${res.status}.`;
      say(text, 'error');
      buttons().forEach((b) => { b.disabled = false; });
      return undefined;
    } catch (err) {
      say(`The request did not reach raddraft (${err.message}); your text is still here.`, 'error');
      buttons().forEach((b) => { b.disabled = false; });
      return undefined;
    }
  }

  const finished = (message) => {
    localStorage.removeItem(key);
    findings.readOnly = true;
    impression.readOnly = true;
    form.querySelectorAll('.actions, #reject-box, #amend-box').forEach((el) => el.remove());
    say(message, 'ok');
    const back = document.createElement('a');
    back.href = '/review';
    back.textContent = ' Back to the worklist';
    outcome.append(back);
  };

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!document.getElementById('sign')) return;
    if (!impression.value.trim()) { say('Write an impression before signing.', 'error'); impression.focus(); return; }
    const done = await post('sign', { findings: findings.value, impression: impression.value, version });
    if (done && done.status === 'recorded') {
      finished(`Your signature is recorded. ${done.message ?? ''}`);
    } else if (done) {
      finished('Signed. The report is final.');
      const banner = document.querySelector('.banner');
      banner.className = 'banner final';
      banner.textContent = 'SIGNED — AI-assisted report';
    }
  });

  const rejectBox = document.getElementById('reject-box');
  document.getElementById('reject')?.addEventListener('click', () => {
    rejectBox.hidden = false;
    document.getElementById('reason').focus();
  });
  document.getElementById('confirm-reject')?.addEventListener('click', async () => {
    const reason = document.getElementById('reason').value.trim();
    if (reason.length < 3) { say('Say briefly why the draft is rejected.', 'error'); return; }
    const done = await post('reject', { reason, version });
    if (done && done.status === 'recorded') {
      finished(`Your rejection is recorded. ${done.message ?? ''}`);
    } else if (done) {
      finished('Rejected. The draft is cancelled and off the worklist.');
      const banner = document.querySelector('.banner');
      banner.className = 'banner cancelled';
      banner.textContent = 'This draft is cancelled';
    }
  });

  // A signed report: a correction edits the text above, an addendum adds its own; both say why.
  const amendBox = document.getElementById('amend-box');
  let amendMode;
  const openAmend = (mode) => {
    amendMode = mode;
    amendBox.hidden = false;
    document.getElementById('addendum-field').hidden = mode !== 'addendum';
    findings.readOnly = mode !== 'correction';
    impression.readOnly = mode !== 'correction';
    (mode === 'correction' ? findings : document.getElementById('addendum-text')).focus();
  };
  document.getElementById('correct')?.addEventListener('click', () => openAmend('correction'));
  document.getElementById('addendum')?.addEventListener('click', () => openAmend('addendum'));
  document.getElementById('confirm-amend')?.addEventListener('click', async () => {
    const reason = document.getElementById('amend-reason').value.trim();
    if (reason.length < 3) { say('Say briefly why the report is changed.', 'error'); return; }
    const addendum = document.getElementById('addendum-text').value.trim();
    if (amendMode === 'addendum' && !addendum) { say('Write the addendum first.', 'error'); return; }
    if (amendMode === 'correction' && !impression.value.trim()) { say('The corrected report needs an impression.', 'error'); return; }
    const done = amendMode === 'addendum'
      ? await post('addendum', { addendum, reason, version })
      : await post('correct', { findings: findings.value, impression: impression.value, reason, version });
    if (done) finished(done.status === 'recorded' ? `Your change is recorded. ${done.message ?? ''}` : `Signed. The report is ${done.status}.`);
  });

  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey && e.key === 'Enter' && document.getElementById('sign')) { e.preventDefault(); form.requestSubmit(); }
    if (e.ctrlKey && e.shiftKey && e.key === 'Backspace') { e.preventDefault(); document.getElementById('reject')?.click(); }
  });
})();
