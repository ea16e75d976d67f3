// The side panel: every workspace and cluster known on this machine, clusters as cards inside their
// workspace's card, kept live by the stream.
import { Widget } from '@lumino/widgets';

import { CloudtikApi, ICard, IWorkspace } from './api';
import { CardView, ICardActions } from './card';
import { button, el, setText } from './dom';
import { NewClusterForm } from './form';
import { ClusterStream } from './stream';

/** One workspace: its name, provider and how many clusters, with their cards inside. */
class WorkspaceView {
  readonly node = el('div', 'ctj-workspace');
  readonly clusters = el('div', 'ctj-workspace-clusters');
  private count = el('span', 'ctj-workspace-count');

  constructor(
    readonly key: string,
    name: string,
    provider: string
  ) {
    this.node.dataset.workspace = name;
    this.node.dataset.provider = provider;
    const head = el('div', 'ctj-workspace-head');
    head.append(el('span', 'ctj-workspace-name', name), el('span', 'ctj-provider', provider), this.count);
    this.node.append(head, this.clusters);
    this.refresh();
  }

  show(workspace: IWorkspace): void {
    this.node.dataset.created = String(workspace.created);
    this.node.title = workspace.created
      ? 'created from this machine'
      : 'the default workspace of its provider (nothing to create)';
  }

  refresh(): void {
    const n = this.clusters.children.length;
    this.node.dataset.clusters = String(n);
    setText(this.count, n === 1 ? '1 cluster' : `${n} clusters`);
  }
}

function workspaceKey(provider: string, name: string): string {
  return `${provider}/${name}`;
}

export class ClusterPanel extends Widget {
  private cards = new Map<string, CardView>();
  private cardWorkspace = new Map<string, string>();
  private workspaces = new Map<string, WorkspaceView>();
  private list = el('div', 'ctj-list');
  private empty = el('div', 'ctj-empty', 'No clusters on this machine yet.');
  private connection = el('span', 'ctj-connection', 'connecting…');
  private form: NewClusterForm;
  private stream: ClusterStream;

  constructor(
    api: CloudtikApi,
    private actions: ICardActions
  ) {
    super();
    this.id = 'cloudtik-panel';
    this.addClass('ctj-panel');
    const header = el('div', 'ctj-header');
    const toggle = button('New cluster', 'ctj-new', 'Create a cluster from a template');
    header.append(el('span', 'ctj-title', 'Clusters'), this.connection, toggle);
    this.form = new NewClusterForm(
      api,
      () => this.form.node.classList.add('ctj-hidden'),
      name => this.cards.has(name)
    );
    this.form.node.classList.add('ctj-hidden');
    toggle.onclick = () => {
      const hidden = this.form.node.classList.toggle('ctj-hidden');
      if (!hidden) {
        void this.form.load();
      }
    };
    this.node.append(header, this.form.node, this.empty, this.list);
    this.stream = new ClusterStream(api, {
      snapshot: (cards, workspaces) => this.replaceAll(cards, workspaces),
      cluster: card => this.showCard(card),
      removed: name => this.remove(name),
      workspaces: workspaces => this.showWorkspaces(workspaces),
      connection: live => this.showConnection(live)
    });
    this.stream.start();
  }

  dispose(): void {
    this.stream.dispose();
    super.dispose();
  }

  /** The card of `name`, to show an action's error on it. */
  card(name: string): CardView | undefined {
    return this.cards.get(name);
  }

  private replaceAll(cards: ICard[], workspaces: IWorkspace[]): void {
    for (const name of [...this.cards.keys()]) {
      if (!cards.some(c => c.name === name)) {
        this.remove(name);
      }
    }
    cards.forEach(c => this.showCard(c));
    this.showWorkspaces(workspaces);
  }

  private workspace(provider: string, name: string): WorkspaceView {
    const key = workspaceKey(provider, name);
    let view = this.workspaces.get(key);
    if (!view) {
      view = new WorkspaceView(key, name, provider);
      this.workspaces.set(key, view);
      const after = [...this.workspaces.keys()].sort().find(k => k > key);
      this.list.insertBefore(view.node, after ? this.workspaces.get(after)!.node : null);
    }
    return view;
  }

  private showWorkspaces(workspaces: IWorkspace[]): void {
    const keep = new Set(workspaces.map(w => workspaceKey(w.provider, w.name)));
    workspaces.forEach(w => this.workspace(w.provider, w.name).show(w));
    for (const [key, view] of this.workspaces) {
      if (!keep.has(key) && view.clusters.children.length === 0) {
        view.node.remove();
        this.workspaces.delete(key);
      }
    }
    this.showEmpty();
  }

  private showCard(card: ICard): void {
    const view = this.cards.get(card.name);
    if (view) {
      view.update(card);
      return;
    }
    const created = new CardView(card, this.actions);
    this.cards.set(card.name, created);
    const home = this.workspace(card.provider, card.workspace);
    this.cardWorkspace.set(card.name, home.key);
    const after = [...home.clusters.children].find(
      n => ((n as HTMLElement).dataset.cluster ?? '') > card.name
    );
    home.clusters.insertBefore(created.node, after ?? null);
    home.refresh();
    this.showEmpty();
  }

  private remove(name: string): void {
    this.cards.get(name)?.node.remove();
    this.cards.delete(name);
    const home = this.workspaces.get(this.cardWorkspace.get(name) ?? '');
    this.cardWorkspace.delete(name);
    home?.refresh();
    this.showEmpty();
  }

  private showEmpty(): void {
    this.empty.classList.toggle('ctj-hidden', this.cards.size > 0);
  }

  private showConnection(live: boolean): void {
    setText(this.connection, live ? 'live' : 'reconnecting…');
    this.connection.classList.toggle('ctj-live', live);
  }
}
