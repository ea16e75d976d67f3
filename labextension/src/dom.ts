// Tiny DOM helpers: the panel is plain DOM (no framework to load), updated in place.

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  text = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text) {
    node.textContent = text;
  }
  return node;
}

export function button(label: string, className: string, title: string): HTMLButtonElement {
  const node = el('button', `jp-Button jp-mod-minimal jp-mod-styled ${className}`, label);
  node.type = 'button';
  node.title = title;
  return node;
}

export function setText(node: HTMLElement, text: string): void {
  if (node.textContent !== text) {
    node.textContent = text;
  }
}

const GIB = 1024 ** 3;

export function gib(bytes: number): string {
  return (bytes / GIB).toFixed(1);
}

const SVG = 'http://www.w3.org/2000/svg';

/** A small line of `values` scaled to 0..`max` (history oldest first), updated in place. */
export class Sparkline {
  readonly node = document.createElementNS(SVG, 'svg');
  private line = document.createElementNS(SVG, 'polyline');
  private tip = document.createElementNS(SVG, 'title');

  constructor(
    className: string,
    private width = 64,
    private height = 16
  ) {
    this.node.setAttribute('class', `ctj-spark ${className}`);
    this.node.setAttribute('width', String(width));
    this.node.setAttribute('height', String(height));
    this.node.setAttribute('viewBox', `0 0 ${width} ${height}`);
    this.line.setAttribute('fill', 'none');
    this.node.append(this.tip, this.line);
  }

  show(values: number[], max: number, title: string): void {
    const points = values.map((v, i) => {
      const x = values.length > 1 ? (i * this.width) / (values.length - 1) : this.width;
      const y = this.height - 1 - (Math.min(Math.max(v / (max || 1), 0), 1) * (this.height - 2));
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    this.line.setAttribute('points', points.join(' '));
    this.node.dataset.points = String(values.length);
    this.tip.textContent = title;
  }
}
