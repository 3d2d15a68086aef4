/** Small DOM builders shared by the run browser's parts. */

import type { LabIcon } from '@jupyterlab/ui-components';

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, className = '', text = ''): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

/** A text button. */
export function button(className: string, label: string, title: string): HTMLButtonElement {
  const b = el('button', `jp-wanllm-button ${className}`, label);
  b.type = 'button';
  b.title = title;
  return b;
}

/** A button showing only `icon`; `title` is its tooltip and accessible name. */
export function iconButton(className: string, icon: LabIcon, title: string): HTMLButtonElement {
  const b = button(className, '', title);
  b.setAttribute('aria-label', title);
  icon.element({ container: b });
  return b;
}
