// One cluster as a card: built once, then updated in place on every stream event (so an input being
// edited keeps its value while heartbeats arrive).
import { ICard, ILink, INode } from './api';
import { button, el, gib, setText, Sparkline } from './dom';

export interface ICardActions {
  scale(name: string, workers: number): Promise<void>;
  down(name: string): Promise<void>;
  liveView(name: string): Promise<void>;
  copySnippet(name: string): void;
  openHeadPort(name: string, port: number): void;
}

const FRESH_SECONDS = 3;
const STALE_SECONDS = 10;

function heartbeatText(age: number | null): [string, string] {
  if (age === null) {
    return ['no heartbeat', 'ctj-stale'];
  }
  const freshness = age < FRESH_SECONDS ? 'ctj-fresh' : age < STALE_SECONDS ? 'ctj-late' : 'ctj-stale';
  return [`♥ ${age.toFixed(1)} s ago`, freshness];
}

function linkItem(link: ILink): HTMLElement {
  if (link.proxy_url) {
    const a = el('a', '', link.name);
    a.href = link.proxy_url;
    a.target = '_blank';
    a.rel = 'noopener';
    a.title = `${link.url} through this Jupyter server`;
    return a;
  }
  const span = el('span', 'ctj-endpoint');
  span.append(el('span', 'ctj-label', `${link.name}: `), el('code', '', link.url));
  return span;
}

/** One node of the card: status, heartbeat, cpu and memory now and over the last minute, its own UIs. */
class NodeRowView {
  readonly node = el('div', 'ctj-node');
  private title = el('span', 'ctj-node-title');
  private status = el('span', 'ctj-node-status');
  private heartbeat = el('span', 'ctj-heartbeat');
  private cpu = el('span', 'ctj-node-cpu');
  private cpuSpark = new Sparkline('ctj-spark-cpu');
  private memory = el('span', 'ctj-node-mem');
  private memorySpark = new Sparkline('ctj-spark-mem');
  private links = el('span', 'ctj-node-links');
  private shownLinks = '';

  constructor(node: INode) {
    this.node.dataset.node = node.node_id;
    this.node.append(
      this.title,
      this.status,
      this.heartbeat,
      this.cpu,
      this.cpuSpark.node,
      this.memory,
      this.memorySpark.node,
      this.links
    );
  }

  update(n: INode): void {
    this.node.dataset.seq = String(n.seq);
    this.node.dataset.status = n.status;
    setText(this.title, `#${n.seq} ${n.kind}`);
    this.title.title = `${n.node_id} (${n.node_type}) at ${n.internal_ip}`;
    setText(this.status, n.status || 'unknown');
    this.status.className = `ctj-node-status ctj-status-${n.status || 'unknown'}`;
    const [beat, freshness] = heartbeatText(n.heartbeat_age);
    setText(this.heartbeat, beat);
    this.heartbeat.className = `ctj-heartbeat ${freshness}`;
    setText(this.cpu, n.cpu_percent === null ? '' : `${n.cpu_percent.toFixed(0)}%`);
    this.cpuSpark.show(n.cpu_history, 100, `CPU over the last ${n.cpu_history.length} heartbeats`);
    const total = n.memory_total ?? 0;
    setText(this.memory, n.memory_used === null ? '' : `${gib(n.memory_used)} GiB`);
    this.memorySpark.show(n.memory_history, total, `memory used (of ${gib(total)} GiB on this machine)`);
    const key = JSON.stringify(n.links);
    if (key !== this.shownLinks) {
      this.shownLinks = key;
      this.links.replaceChildren(...n.links.map(linkItem));
    }
  }
}

export class CardView {
  readonly node = el('div', 'ctj-card');
  private phase = el('span', 'ctj-phase');
  private workers = el('span', 'ctj-workers');
  private heartbeat = el('span', 'ctj-heartbeat');
  private cpu = el('span', 'ctj-cpu');
  private memory = el('span', 'ctj-mem');
  private links = el('ul', 'ctj-links');
  private nodes = el('div', 'ctj-nodes');
  private rows = new Map<string, NodeRowView>();
  private event = el('div', 'ctj-event');
  private error = el('div', 'ctj-error');
  private actionError = el('div', 'ctj-action-error ctj-hidden');
  private actionErrorText = el('span', 'ctj-action-error-text');
  private scaleInput = el('input', 'ctj-scale-input jp-mod-styled');
  private portInput = el('input', 'ctj-port-input jp-mod-styled');
  private buttons: HTMLButtonElement[] = [];
  private shownLinks = '';

  constructor(card: ICard, actions: ICardActions) {
    const name = card.name;
    this.node.dataset.cluster = name;
    const head = el('div', 'ctj-card-head');
    head.append(el('span', 'ctj-name', name), el('span', 'ctj-provider', card.provider), this.phase);
    const stats = el('div', 'ctj-stats');
    stats.append(this.workers, this.heartbeat, this.cpu, this.memory);

    this.scaleInput.type = 'number';
    this.scaleInput.title = 'workers wanted';
    this.scaleInput.oninput = () => (this.scaleInput.dataset.edited = 'yes');
    const scale = button('Scale', 'ctj-scale', 'Ask the head for this many workers');
    scale.onclick = () => this.busy(actions.scale(name, Number(this.scaleInput.value)));
    const live = button('Live view', 'ctj-live', 'Insert a live view of this cluster in the current notebook');
    live.onclick = () => this.busy(actions.liveView(name));
    const copy = button('Snippet', 'ctj-copy', 'Copy Python code that connects to this cluster');
    copy.onclick = () => actions.copySnippet(name);
    const down = button('Down', 'ctj-down', 'Terminate every node of this cluster');
    down.onclick = () => this.busy(actions.down(name));
    this.buttons = [scale, down];
    const act = el('div', 'ctj-actions');
    act.append(el('span', 'ctj-label', 'Workers'), this.scaleInput, scale);
    const more = el('div', 'ctj-actions');
    more.append(live, copy, el('span', 'ctj-spacer'), down);

    this.portInput.type = 'number';
    this.portInput.min = '1';
    this.portInput.max = '65535';
    this.portInput.placeholder = 'port';
    this.portInput.title = "a declared service's port on the head (or one listed in proxy.allowed_ports)";
    const open = button('Open', 'ctj-open-port', "Open a web service on the head's port through Jupyter");
    open.onclick = () => actions.openHeadPort(name, Number(this.portInput.value));
    const ports = el('div', 'ctj-ports');
    ports.append(el('span', 'ctj-label', 'Head port'), this.portInput, open);

    // An action's error stays until the user dismisses it or starts another action: stream updates
    // (every heartbeat) never clear it.
    const dismiss = button('×', 'ctj-dismiss', 'Dismiss this error');
    dismiss.onclick = () => this.clearActionError();
    this.actionError.append(this.actionErrorText, dismiss);

    this.node.append(head, stats, this.links, this.nodes, this.event, act, more, ports, this.actionError, this.error);
    this.update(card);
  }

  update(card: ICard): void {
    this.node.dataset.phase = card.phase;
    setText(this.phase, card.operation ? `${card.phase}…` : card.phase);
    this.phase.className = `ctj-phase ctj-phase-${card.phase}`;
    const status = card.status;
    if (status) {
      this.node.dataset.ready = String(status.workers_ready);
      this.node.dataset.desired = String(status.workers_desired);
      setText(this.workers, `${status.workers_ready} / ${status.workers_desired} workers`);
      this.workers.title = `ready / desired (allowed ${status.workers_min}..${status.workers_max})`;
      this.scaleInput.min = String(status.workers_min);
      this.scaleInput.max = String(status.workers_max);
      if (document.activeElement !== this.scaleInput && this.scaleInput.dataset.edited !== 'yes') {
        this.scaleInput.value = String(status.workers_desired);
      }
      this.showHeartbeat(status.heartbeat_age);
      setText(this.cpu, status.cpu_percent === null ? '' : `CPU ${status.cpu_percent.toFixed(0)}%`);
      const mem =
        status.memory_used === null || status.memory_total === null
          ? ''
          : `Mem ${gib(status.memory_used)} / ${gib(status.memory_total)} GiB`;
      setText(this.memory, mem);
      this.memory.title = 'summed over machines (nodes sharing a machine count once)';
      this.showLinks(status.links);
      this.showNodes(status.nodes);
      const last = status.events.length ? status.events[status.events.length - 1] : null;
      setText(this.event, last ? `${last.kind}: ${last.message}` : '');
      this.event.title = last ? new Date(last.at * 1000).toLocaleString() : '';
    } else {
      setText(this.workers, '');
      this.showHeartbeat(null);
      this.showNodes([]);
    }
    setText(this.error, card.error ?? '');
    for (const b of this.buttons) {
      b.disabled = card.operation !== null;
    }
  }

  /** A failed action's message: shown until dismissed or the next action. */
  showError(message: string): void {
    setText(this.actionErrorText, message);
    this.actionError.classList.remove('ctj-hidden');
  }

  private clearActionError(): void {
    setText(this.actionErrorText, '');
    this.actionError.classList.add('ctj-hidden');
  }

  private async busy(action: Promise<void>): Promise<void> {
    this.clearActionError();
    try {
      await action;
    } catch (error) {
      this.showError(error instanceof Error ? error.message : String(error));
    } finally {
      this.scaleInput.dataset.edited = '';
    }
  }

  private showHeartbeat(age: number | null): void {
    const [text, freshness] = heartbeatText(age);
    setText(this.heartbeat, text);
    this.heartbeat.className = `ctj-heartbeat ${freshness}`;
  }

  private showNodes(nodes: INode[]): void {
    const seen = new Set(nodes.map(n => n.node_id));
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) {
        row.node.remove();
        this.rows.delete(id);
      }
    }
    nodes.forEach((n, index) => {
      let row = this.rows.get(n.node_id);
      if (!row) {
        row = new NodeRowView(n);
        this.rows.set(n.node_id, row);
      }
      row.update(n);
      if (this.nodes.children[index] !== row.node) {
        this.nodes.insertBefore(row.node, this.nodes.children[index] ?? null);
      }
    });
  }

  private showLinks(links: ILink[]): void {
    const key = JSON.stringify(links);
    if (key === this.shownLinks) {
      return;
    }
    this.shownLinks = key;
    this.links.replaceChildren(
      ...links.map(link => {
        const item = el('li', 'ctj-link');
        item.append(linkItem(link));
        return item;
      })
    );
  }
}
