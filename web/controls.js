// telepi page: the robot's custom controls and readings ([[controls]] and
// [[readings]] in its config, sent in a `controls` message on joining), for
// app.js. Controls send {"type":"custom","name","value"} on the data channel;
// only the operator's act, so a viewer sees them greyed out. Plain script, no
// build step.
'use strict';

window.telepiControls = ({ send, toast, isTyping, isOperator }) => {
  const $ = (id) => document.getElementById(id);
  // What the robot declared, what this page last sent or was told for each
  // control, slider moves not sent yet, keys held down, and the newest
  // `custom` messages from the robot's programs (for the test hook).
  const state = { controls: [], readings: [], values: new Map(), pending: new Map(), keysHeld: new Set(), received: [] };
  let telemetry = {};

  function sendCustom(name, value) {
    if (!isOperator()) return;
    state.values.set(name, value);
    send({ type: 'custom', name, value });
    renderStates();
  }

  // Slider moves go out with the drive tick (~20 Hz), the newest only.
  function flush() {
    for (const [name, value] of state.pending) sendCustom(name, value);
    state.pending.clear();
  }

  // A control's key: true when handled.
  function onKey(e, down) {
    if (isTyping(e.target) || e.ctrlKey || e.metaKey || e.altKey) return false;
    const control = state.controls.find((c) => c.key && c.key.toLowerCase() === e.key.toLowerCase());
    if (!control) return false;
    e.preventDefault();
    const held = state.keysHeld.has(control.name);
    if (down === held) return true; // auto-repeat, or a release we never saw pressed
    if (down) state.keysHeld.add(control.name);
    else state.keysHeld.delete(control.name);
    if (control.kind === 'button') sendCustom(control.name, down);
    else if (down) sendCustom(control.name, !state.values.get(control.name));
    return true;
  }

  function element(tag, props = {}, ...children) {
    const el = Object.assign(document.createElement(tag), props);
    el.append(...children);
    return el;
  }

  function controlElement(c) {
    const label = c.label || c.name;
    if (c.kind === 'slider') {
      const slider = element('input', { type: 'range', min: c.min, max: c.max, step: c.step, value: c.min });
      slider.dataset.control = c.name;
      const shown = element('output', { value: String(c.min) });
      slider.addEventListener('input', () => {
        state.pending.set(c.name, Number(slider.value));
        shown.value = slider.value;
      });
      return element('label', { className: 'custom-slider' }, element('span', { textContent: label }), slider, shown);
    }
    const button = element('button', { type: 'button', textContent: label });
    button.dataset.control = c.name;
    if (c.key) button.append(element('kbd', { textContent: c.key }));
    if (c.kind === 'toggle') {
      button.setAttribute('aria-pressed', 'false');
      button.addEventListener('click', () => sendCustom(c.name, !state.values.get(c.name)));
      return button;
    }
    // A button is true while held.
    const release = () => {
      if (state.values.get(c.name) === true) sendCustom(c.name, false);
    };
    button.addEventListener('pointerdown', () => sendCustom(c.name, true));
    for (const end of ['pointerup', 'pointerleave', 'pointercancel']) button.addEventListener(end, release);
    return button;
  }

  function setControls(msg) {
    state.controls = msg.controls || [];
    state.readings = msg.readings || [];
    const box = $('custom-controls');
    box.replaceChildren(...state.controls.map(controlElement));
    box.hidden = state.controls.length === 0;
    renderStates();
    renderReadings();
  }

  // The robot's programs may send a control's state back (the toggle they
  // actually switched); anything else they send is shown.
  function onCustom(msg) {
    state.received = [...state.received.slice(-19), { name: msg.name, value: msg.value }];
    const control = state.controls.find((c) => c.name === msg.name);
    if (!control) {
      toast(`${msg.name}: ${typeof msg.value === 'string' ? msg.value : JSON.stringify(msg.value)}`);
      return;
    }
    if (control.kind !== 'button') state.values.set(msg.name, msg.value);
    renderStates();
  }

  function renderStates() {
    for (const el of $('custom-controls').querySelectorAll('[data-control]')) {
      el.disabled = !isOperator();
      el.title = isOperator() ? '' : 'Only the operator can use this';
      const value = state.values.get(el.dataset.control);
      if (el.hasAttribute('aria-pressed')) el.setAttribute('aria-pressed', String(value === true));
      else if (el.tagName === 'BUTTON') el.classList.toggle('held', value === true);
      else if (typeof value === 'number' && document.activeElement !== el) {
        el.value = value;
        el.nextElementSibling.value = String(value);
      }
    }
  }

  function formatReading(value, unit) {
    if (value === undefined || value === null) return '–';
    const text = typeof value === 'number' ? String(Math.round(value * 100) / 100) : typeof value === 'boolean' ? (value ? 'yes' : 'no') : String(value);
    return unit ? `${text} ${unit}` : text;
  }

  // Declared readings first, in the config's order, then whatever else programs publish.
  function renderReadings() {
    const values = telemetry.readings || {};
    const declared = new Set(state.readings.map((r) => r.name));
    const rows = [...state.readings, ...Object.keys(values).filter((n) => !declared.has(n)).map((name) => ({ name }))];
    const cells = rows.flatMap((r) => {
      const value = values[r.name];
      const dd = element('dd', { textContent: formatReading(value, r.unit) });
      dd.dataset.reading = r.name;
      const gauge = typeof r.min === 'number' && typeof value === 'number';
      if (!gauge) dd.className = 'no-gauge';
      const dt = element('dt', { textContent: r.label || r.name });
      return gauge ? [dt, element('meter', { min: r.min, max: r.max, value }), dd] : [dt, dd];
    });
    $('readings').replaceChildren(...cells);
    $('readings').hidden = rows.length === 0;
  }

  const LINK_TEXT = {
    connecting: 'Motors: waiting for the motor controller or program',
    lost: 'Motors: no link — they are stopped and may not respond',
  };

  // Readings and the motor link (serial, external backends) from telemetry.
  function renderTelemetry(t) {
    telemetry = t;
    $('drive-link').textContent = LINK_TEXT[t.drive_link] || '';
    $('drive-link').hidden = !LINK_TEXT[t.drive_link];
    renderReadings();
  }

  return {
    setControls,
    onCustom,
    onKey,
    flush,
    renderStates,
    renderTelemetry,
    controls: () => state.controls,
    received: () => state.received,
  };
};
