// telepi page: recording on the robot and the list of its recordings, for
// app.js (the operator's). The files come from the robot's own HTTP server,
// so not through a broker. Plain script, no build step.
'use strict';

window.telepiRecordings = ({ $, send, secret, isRecording }) => {
  const LIST_TIMEOUT_MS = 10000;

  function toggleRecording() {
    send({ type: 'record', on: !isRecording() });
  }

  // The operator secret, when the page has one, goes with every request for them.
  function withSecret(url) {
    return secret ? `${url}?secret=${encodeURIComponent(secret)}` : url;
  }

  async function toggleList() {
    const panel = $('recordings');
    panel.hidden = !panel.hidden;
    $('recordings-toggle').setAttribute('aria-expanded', String(!panel.hidden));
    if (panel.hidden) return;
    $('recordings-state').textContent = 'loading…';
    try {
      const res = await fetch(withSecret('/api/recordings'), { signal: AbortSignal.timeout(LIST_TIMEOUT_MS) });
      const body = await res.json();
      if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
      renderList(body);
    } catch (e) {
      $('recordings-state').textContent = `cannot list recordings: ${e.message}`;
    }
  }

  function renderList(body) {
    const files = body.files.slice().reverse(); // newest first
    const total = files.reduce((sum, f) => sum + f.bytes, 0);
    $('recordings-state').textContent = files.length
      ? `${files.length} file${files.length === 1 ? '' : 's'}, ${formatMegabytes(total)}${body.recording.file ? ` · writing ${body.recording.file}` : ''}`
      : 'no recordings yet';
    $('recordings-list').replaceChildren(...files.map((f) => {
      const item = document.createElement('li');
      const a = document.createElement('a');
      a.href = withSecret(f.url);
      a.download = f.name;
      a.textContent = f.name;
      const size = document.createElement('span');
      size.textContent = formatMegabytes(f.bytes);
      item.append(a, size);
      return item;
    }));
  }

  function formatMegabytes(bytes) {
    return `${(bytes / 1e6).toFixed(1)} MB`;
  }

  function bind() {
    $('record').addEventListener('click', toggleRecording);
    $('recordings-toggle').addEventListener('click', toggleList);
  }

  return { bind };
};
