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
