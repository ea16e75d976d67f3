// "New cluster": a form from the shipped templates (cloudtik_jupyter.config.shipped_templates()).
import { ApiError, CloudtikApi, ITemplate } from './api';
import { button, el, setText } from './dom';

export class NewClusterForm {
  readonly node = el('form', 'ctj-form');
  private template = el('select', 'ctj-template jp-mod-styled');
  private name = el('input', 'ctj-new-name jp-mod-styled');
  private workers = el('input', 'ctj-new-workers jp-mod-styled');
  private error = el('div', 'ctj-error');
  private templates: ITemplate[] = [];

  constructor(
    private api: CloudtikApi,
    private done: () => void,
    private exists: (name: string) => boolean
  ) {
    this.name.placeholder = 'cluster name';
    // Chromium compiles `pattern` with the `v` flag, where a bare `-` in a class is a syntax error (and
    // the whole check is then silently off): escape it. Same rule as the server's NAME_PATTERN.
    this.name.pattern = '[a-z][a-z0-9\\-]{0,39}';
    this.name.required = true;
    this.name.title = 'lowercase letters, digits and -, starting with a letter (at most 40)';
    this.name.oninput = () => this.checkName();
    this.workers.type = 'number';
    this.workers.min = '0';
    this.workers.title = 'workers (the template default when empty)';
    this.template.onchange = () => this.showLimits();
    const create = button('Create', 'ctj-create', 'Bring the cluster up');
    create.type = 'submit';
    const cancel = button('Cancel', 'ctj-cancel', 'Close this form');
    cancel.onclick = () => this.done();
    const row = el('div', 'ctj-actions');
    row.append(create, cancel);
    this.node.append(
      this.labelled('Template', this.template),
      this.labelled('Name', this.name),
      this.labelled('Workers', this.workers),
      row,
      this.error
    );
    this.node.onsubmit = event => {
      event.preventDefault();
      void this.submit();
    };
  }

  async load(): Promise<void> {
    setText(this.error, '');
    try {
      this.templates = (await this.api.templates()).templates;
    } catch (error) {
      setText(this.error, `cannot load templates: ${error}`);
      return;
    }
    this.template.replaceChildren(
      ...this.templates.map(t => {
        const option = el('option', '', `${t.name} (${t.provider}${t.runtimes.length ? ', ' + t.runtimes.join(', ') : ''})`);
        option.value = t.name;
        return option;
      })
    );
    this.showLimits();
  }

  private showLimits(): void {
    const chosen = this.templates.find(t => t.name === this.template.value);
    const only = chosen?.worker_types.length === 1 ? chosen.worker_types[0] : null;
    this.workers.disabled = only === null;
    this.workers.value = only ? String(only.min_workers) : '';
    this.workers.max = only ? String(only.max_workers) : '';
  }

  /** Say at once (before the server does) that the name is taken: the panel never reconfigures. */
  private checkName(): void {
    const taken = this.exists(this.name.value);
    this.name.setCustomValidity(taken ? `a cluster named ${this.name.value} already exists` : '');
    setText(this.error, taken ? `${this.name.value} already exists: scale it from its card` : '');
  }

  private async submit(): Promise<void> {
    setText(this.error, '');
    const workers = this.workers.disabled || this.workers.value === '' ? null : Number(this.workers.value);
    try {
      await this.api.create(this.template.value, this.name.value, workers);
      this.name.value = '';
      this.done();
    } catch (error) {
      const where = error instanceof ApiError && error.path ? ` (${error.path})` : '';
      setText(this.error, `${error instanceof Error ? error.message : error}${where}`);
    }
  }

  private labelled(text: string, input: HTMLElement): HTMLElement {
    const label = el('label', 'ctj-field');
    label.append(el('span', 'ctj-label', text), input);
    return label;
  }
}
