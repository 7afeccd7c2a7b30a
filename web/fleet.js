// telepi page: the fleet view in broker mode, for app.js: the robots the
// broker knows, online or not, each a button that picks it. Plain script,
// no build step.
'use strict';

window.telepiFleet = ({ $, broker, chosen, choose }) => {
  function render() {
    const list = $('fleet-list');
    $('fleet').hidden = !broker || Boolean(chosen());
    if (!broker) return;
    const state = broker.connected() ? 'connected' : `not connected${broker.error() ? `: ${broker.error()}` : ''}`;
    $('fleet-state').textContent = `broker ${state}`;
    const robots = broker.fleet().sort((a, b) => a.name.localeCompare(b.name));
    list.replaceChildren(...robots.map((r) => {
      const item = document.createElement('li');
      item.dataset.robot = r.name;
      item.dataset.online = String(Boolean(r.online));
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = r.name;
      button.disabled = !r.online;
      button.addEventListener('click', () => choose(r.name));
      const detail = document.createElement('span');
      detail.textContent = r.online
        ? `online · ${r.viewers ?? 0} connected${r.operator ? ' · being driven' : ''}`
        : 'offline';
      item.append(button, detail);
      return item;
    }));
    if (!robots.length) list.replaceChildren(Object.assign(document.createElement('li'), { textContent: 'no robots yet' }));
  }

  return { render };
};
