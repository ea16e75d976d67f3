// One cluster as a card: built once, then updated in place on every stream event (so an input being
// edited keeps its value while heartbeats arrive).
import { ICard, ILink } from './api';
import { button, el, gib, setText } from './dom';

export interface ICardActions {
  scale(name: string, workers: number): Promise<void>;
  down(name: string): Promise<void>;
  liveView(name: string): Promise<void>;
  copySnippet(name: string): void;
  openHeadPort(name: string, port: number): void;
}

const FRESH_SECONDS = 3;
const STALE_SECONDS = 10;

export class CardView {
  readonly node = el('div', 'ctj-card');
  private phase = el('span', 'ctj-phase');
  private workers = el('span', 'ctj-workers');
  private heartbeat = el('span', 'ctj-heartbeat');
  private cpu = el('span', 'ctj-cpu');
  private memory = el('span', 'ctj-mem');
  private links = el('ul', 'ctj-links');
  private event = el('div', 'ctj-event');
  private error = el('div', 'ctj-error');
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
    this.portInput.title = 'a port of a web service on the head';
    const open = button('Open', 'ctj-open-port', "Open a web service on the head's port through Jupyter");
    open.onclick = () => actions.openHeadPort(name, Number(this.portInput.value));
    const ports = el('div', 'ctj-ports');
    ports.append(el('span', 'ctj-label', 'Head port'), this.portInput, open);

    this.node.append(head, stats, this.links, this.event, act, more, ports, this.error);
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
      this.showLinks(status.links);
      const last = status.events.length ? status.events[status.events.length - 1] : null;
      setText(this.event, last ? `${last.kind}: ${last.message}` : '');
      this.event.title = last ? new Date(last.at * 1000).toLocaleString() : '';
    } else {
      setText(this.workers, '');
      this.showHeartbeat(null);
    }
    setText(this.error, card.error ?? '');
    for (const b of this.buttons) {
      b.disabled = card.operation !== null;
    }
  }

  /** Shown until the next successful action: a failed request's message. */
  showError(message: string): void {
    setText(this.error, message);
  }

  private async busy(action: Promise<void>): Promise<void> {
    try {
      await action;
    } catch (error) {
      this.showError(error instanceof Error ? error.message : String(error));
    } finally {
      this.scaleInput.dataset.edited = '';
    }
  }

  private showHeartbeat(age: number | null): void {
    if (age === null) {
      setText(this.heartbeat, 'no heartbeat');
      this.heartbeat.className = 'ctj-heartbeat ctj-stale';
      return;
    }
    setText(this.heartbeat, `♥ ${age.toFixed(1)} s ago`);
    const freshness = age < FRESH_SECONDS ? 'ctj-fresh' : age < STALE_SECONDS ? 'ctj-late' : 'ctj-stale';
    this.heartbeat.className = `ctj-heartbeat ${freshness}`;
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
        if (link.proxy_url) {
          const a = el('a', '', link.name);
          a.href = link.proxy_url;
          a.target = '_blank';
          a.rel = 'noopener';
          a.title = `${link.url} through this Jupyter server`;
          item.append(a);
        } else {
          item.append(el('span', 'ctj-label', `${link.name}: `), el('code', '', link.url));
        }
        return item;
      })
    );
  }
}
