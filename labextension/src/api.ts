// The server extension's REST API (cloudtik_jupyter/server): types mirror server/models.py (checked by
// tests/server/test_models.py, which compares these interfaces with the pydantic models' fields).
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export interface ILink {
  name: string;
  url: string;
  kind: string;
  proxy_url: string | null;
}

export interface INode {
  node_id: string;
  seq: number;
  kind: string;
  node_type: string;
  internal_ip: string;
  status: string;
  heartbeat_age: number | null;
  cpu_percent: number | null;
  memory_used: number | null;
  memory_total: number | null;
  machine: string;
  cpu_history: number[];
  memory_history: number[];
  links: ILink[];
}

export interface IEvent {
  at: number;
  kind: string;
  message: string;
  node_id: string | null;
}

export interface IStatus {
  nodes: INode[];
  head_status: string | null;
  workers_ready: number;
  workers_desired: number;
  workers_min: number;
  workers_max: number;
  heartbeat_age: number | null;
  cpu_percent: number | null;
  memory_used: number | null;
  memory_total: number | null;
  links: ILink[];
  events: IEvent[];
}

export type Phase = 'starting' | 'running' | 'failed' | 'stopping' | 'stopped' | 'unknown';

export interface ICard {
  name: string;
  provider: string;
  workspace: string;
  phase: Phase;
  operation: 'up' | 'down' | null;
  error: string | null;
  status: IStatus | null;
}

export interface IWorkspace {
  name: string;
  provider: string;
  created: boolean;
  clusters: string[];
}

export interface IWorkerType {
  name: string;
  min_workers: number;
  max_workers: number;
}

export interface ITemplate {
  name: string;
  provider: string;
  runtimes: string[];
  worker_types: IWorkerType[];
}

/** A 4xx/5xx answer: the server's message, and the offending key for bad input. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly path: string | null
  ) {
    super(message);
  }
}

export class CloudtikApi {
  readonly settings = ServerConnection.makeSettings();

  url(...parts: string[]): string {
    return URLExt.join(this.settings.baseUrl, 'cloudtik', ...parts.map(encodeURIComponent));
  }

  /** A request with Jupyter's token and XSRF header (ServerConnection adds both). */
  async request<T>(parts: string[], method = 'GET', body?: unknown): Promise<T> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    const response = await ServerConnection.makeRequest(this.url(...parts), init, this.settings);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new ApiError(data.message ?? response.statusText, data.path ?? null);
    }
    return data as T;
  }

  templates(): Promise<{ templates: ITemplate[] }> {
    return this.request(['templates']);
  }

  create(template: string, cluster_name: string, workers: number | null): Promise<ICard> {
    return this.request(['clusters'], 'POST', { template, cluster_name, workers });
  }

  scale(name: string, workers: number): Promise<unknown> {
    return this.request(['clusters', name, 'scale'], 'POST', { workers });
  }

  down(name: string): Promise<{ terminated: number }> {
    return this.request(['clusters', name], 'DELETE');
  }
}
