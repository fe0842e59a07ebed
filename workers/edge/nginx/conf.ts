/**
 * A rendered nginx file as a tree of directives whose arguments are Tokens
 * (./escape.ts): the structure (which directives, which blocks, where `;` and
 * `{}` go) is decided by this code alone, never by the text of an argument.
 */
import { RenderError, type Token } from './escape.js';

export type ConfNode =
  | { kind: 'directive'; name: string; args: Token[] }
  | { kind: 'block'; name: string; args: Token[]; children: ConfNode[] }
  | { kind: 'comment'; text: string }
  /** A line of a `map` (or `geo`) block: its key and value, both tokens. */
  | { kind: 'entry'; key: Token; value: Token };

const DIRECTIVE_NAME = /^[a-z_][a-z0-9_]*$/;

function checkName(name: string): string {
  if (!DIRECTIVE_NAME.test(name)) throw new RenderError(`not a directive name: ${JSON.stringify(name)}`);
  return name;
}

export function directive(name: string, ...args: Token[]): ConfNode {
  return { kind: 'directive', name: checkName(name), args };
}

export function block(name: string, args: Token[], children: ConfNode[]): ConfNode {
  return { kind: 'block', name: checkName(name), args, children };
}

export function entry(key: Token, value: Token): ConfNode {
  return { kind: 'entry', key, value };
}

/** A comment of our own text (ids and versions), one line. */
export function comment(text: string): ConfNode {
  if (/[\r\n]/.test(text)) throw new RenderError('a comment is one line');
  return { kind: 'comment', text };
}

function head(name: string, args: Token[]): string {
  return [name, ...args.map((arg) => arg.text)].join(' ');
}

export function renderConf(nodes: ConfNode[], depth = 0): string {
  const pad = '    '.repeat(depth);
  let out = '';
  for (const node of nodes) {
    if (node.kind === 'comment') out += `${pad}# ${node.text}\n`;
    else if (node.kind === 'directive') out += `${pad}${head(node.name, node.args)};\n`;
    else if (node.kind === 'entry') out += `${pad}${node.key.text} ${node.value.text};\n`;
    else out += `${pad}${head(node.name, node.args)} {\n${renderConf(node.children, depth + 1)}${pad}}\n`;
  }
  return out;
}
