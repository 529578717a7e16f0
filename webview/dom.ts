/** Small DOM helpers: elements built from text only, so host data can never become markup. */

type Child = Node | string;

/** Creates an element; string children become text nodes. `testid` sets data-testid. */
export function el(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k === 'testid' ? 'data-testid' : k, v);
  for (const c of children) node.append(typeof c === 'string' ? document.createTextNode(c) : c);
  return node;
}

export function replaceChildren(parent: Element, ...children: Child[]): void {
  parent.replaceChildren(...children.map((c) => (typeof c === 'string' ? document.createTextNode(c) : c)));
}
