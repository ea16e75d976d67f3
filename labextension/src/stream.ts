// The live stream (server-sent events from /cloudtik/stream), read with fetch so that Jupyter's token
// and settings apply as for every other request. Reconnects with a growing delay when it drops.
import { ServerConnection } from '@jupyterlab/services';

import { CloudtikApi, ICard, IWorkspace } from './api';

export interface IStreamHandlers {
  snapshot(cards: ICard[], workspaces: IWorkspace[]): void;
  cluster(card: ICard): void;
  removed(name: string): void;
  workspaces(workspaces: IWorkspace[]): void;
  connection(live: boolean): void;
}

const MAX_RETRY_MS = 10000;

export class ClusterStream {
  private abort = new AbortController();
  private retryMs = 500;

  constructor(
    private api: CloudtikApi,
    private handlers: IStreamHandlers
  ) {}

  start(): void {
    void this.run();
  }

  dispose(): void {
    this.abort.abort();
  }

  private async run(): Promise<void> {
    while (!this.abort.signal.aborted) {
      try {
        await this.readOnce();
      } catch (error) {
        if (this.abort.signal.aborted) {
          return;
        }
        console.warn('cloudtik: stream interrupted', error);
      }
      this.handlers.connection(false);
      await new Promise(resolve => setTimeout(resolve, this.retryMs));
      this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    }
  }

  private async readOnce(): Promise<void> {
    const response = await ServerConnection.makeRequest(
      this.api.url('stream'),
      { headers: { Accept: 'text/event-stream' }, signal: this.abort.signal, cache: 'no-store' },
      this.api.settings
    );
    if (!response.ok || !response.body) {
      throw new Error(`stream answered ${response.status}`);
    }
    this.handlers.connection(true);
    this.retryMs = 500;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        return;
      }
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        this.dispatch(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  }

  private dispatch(block: string): void {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) {
        event = line.slice(7);
      } else if (line.startsWith('data: ')) {
        data.push(line.slice(6));
      }
    }
    if (!data.length) {
      return; // a keepalive comment
    }
    const payload = JSON.parse(data.join('\n'));
    if (event === 'snapshot') {
      this.handlers.snapshot(payload.clusters, payload.workspaces ?? []);
    } else if (event === 'cluster') {
      this.handlers.cluster(payload);
    } else if (event === 'removed') {
      this.handlers.removed(payload.name);
    } else if (event === 'workspaces') {
      this.handlers.workspaces(payload.workspaces);
    }
  }
}
