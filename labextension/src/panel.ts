// The side panel: every cluster known on this machine as a card, kept live by the stream.
import { Widget } from '@lumino/widgets';

import { CloudtikApi, ICard } from './api';
import { CardView, ICardActions } from './card';
import { button, el, setText } from './dom';
import { NewClusterForm } from './form';
import { ClusterStream } from './stream';

export class ClusterPanel extends Widget {
  private cards = new Map<string, CardView>();
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
    this.form = new NewClusterForm(api, () => this.form.node.classList.add('ctj-hidden'));
    this.form.node.classList.add('ctj-hidden');
    toggle.onclick = () => {
      const hidden = this.form.node.classList.toggle('ctj-hidden');
      if (!hidden) {
        void this.form.load();
      }
    };
    this.node.append(header, this.form.node, this.empty, this.list);
    this.stream = new ClusterStream(api, {
      snapshot: cards => this.replaceAll(cards),
      cluster: card => this.showCard(card),
      removed: name => this.remove(name),
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

  private replaceAll(cards: ICard[]): void {
    for (const name of [...this.cards.keys()]) {
      if (!cards.some(c => c.name === name)) {
        this.remove(name);
      }
    }
    cards.forEach(c => this.showCard(c));
  }

  private showCard(card: ICard): void {
    const view = this.cards.get(card.name);
    if (view) {
      view.update(card);
      return;
    }
    const created = new CardView(card, this.actions);
    this.cards.set(card.name, created);
    const after = [...this.cards.keys()].sort().find(n => n > card.name);
    this.list.insertBefore(created.node, after ? this.cards.get(after)!.node : null);
    this.empty.classList.add('ctj-hidden');
  }

  private remove(name: string): void {
    this.cards.get(name)?.node.remove();
    this.cards.delete(name);
    this.empty.classList.toggle('ctj-hidden', this.cards.size > 0);
  }

  private showConnection(live: boolean): void {
    setText(this.connection, live ? 'live' : 'reconnecting…');
    this.connection.classList.toggle('ctj-live', live);
  }
}
