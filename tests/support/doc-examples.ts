/**
 * The examples of a Markdown document that tests run: fenced blocks whose
 * info string is `sh tested`. Each holds commands as an operator types them
 * (`curl …` or `npx relaygrid …`, `export NAME=…` lines are the reader's, not
 * run), each command optionally followed by its answer as a comment:
 *
 *   # 201 {"profileId":"eu-reality","settings":{"publicKey":"…"}}
 *
 * In an answer, a string "…" matches any value, "…" inside a string matches
 * any characters, an array ending in "…" matches any longer array, and an
 * object matches an object that has at least its keys: the doc claims what
 * it shows, not more. Only the placeholders a test names (`$API`, `$TOKEN`…)
 * are substituted; any other `$NAME` fails, so a doc cannot use one unnoticed.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const DOCS_DIR = fileURLToPath(new URL('../../docs/', import.meta.url));
const WILDCARD = '…';

export interface DocBlock {
  /** 1-based line of the opening fence, for error messages. */
  line: number;
  text: string;
}

export interface DocCommand {
  /** `curl` or `relaygrid` (the `npx relaygrid` CLI). */
  program: 'curl' | 'relaygrid';
  /** Words with quotes removed; placeholders still as `$NAME`. */
  words: string[];
  answer?: { status: number; body?: unknown };
  line: number;
}

export interface CurlRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

/** The `sh tested` blocks of docs/<file>, in document order. */
export function testedBlocks(file: string): DocBlock[] {
  const lines = readFileSync(`${DOCS_DIR}${file}`, 'utf8').split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```sh tested\s*$/.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!.length;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j]!); j++) body.push(lines[j]!.slice(indent));
    blocks.push({ line: i + 1, text: body.join('\n') });
    i = j;
  }
  return blocks;
}

/** Shell words of one command: '…' literal, "…" and bare words keep `$NAME` for substitution, `\` + newline joins lines. */
function shellWords(text: string, where: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && text[i + 1] === '\n') {
      i++;
      continue;
    }
    if (/\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
      continue;
    }
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) throw new Error(`${where}: unclosed ${c}`);
      word = (word ?? '') + text.slice(i + 1, end);
      i = end;
      continue;
    }
    if (c === '|' || c === ';' || c === '&' || c === '>' || c === '<' || c === '`') throw new Error(`${where}: "${c}" is not supported in a tested example`);
    word = (word ?? '') + c;
  }
  if (word !== null) words.push(word);
  return words;
}

/** The commands of a block with their claimed answers. */
export function blockCommands(block: DocBlock, file: string): DocCommand[] {
  const commands: DocCommand[] = [];
  const lines = block.text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const where = `${file}:${block.line + 1 + i}`;
    const line = lines[i]!;
    const answer = /^# (\d{3})(?: (.*))?$/.exec(line);
    if (answer) {
      const last = commands.at(-1);
      if (!last || last.answer) throw new Error(`${where}: an answer without its command`);
      last.answer = { status: Number(answer[1]), ...(answer[2] ? { body: JSON.parse(answer[2]) as unknown } : {}) };
      continue;
    }
    if (line.trim() === '' || line.startsWith('#') || line.startsWith('export ')) continue;
    // A command runs on while its lines end in "\" or a quote is open.
    let text = line;
    while ((text.endsWith('\\') || (text.split("'").length - 1) % 2 === 1) && i + 1 < lines.length) text += `\n${lines[++i]!}`;
    const words = shellWords(text, where);
    if (words[0] === 'curl') commands.push({ program: 'curl', words: words.slice(1), line: block.line + 1 + i });
    else if (words[0] === 'npx' && words[1] === 'relaygrid') commands.push({ program: 'relaygrid', words: words.slice(2), line: block.line + 1 + i });
    else throw new Error(`${where}: a tested example runs curl or npx relaygrid, not "${words[0]}"`);
  }
  return commands;
}

/** `$NAME` replaced from `vars`; a name not in `vars` is an undocumented placeholder. */
export function substitute(word: string, vars: Readonly<Record<string, string>>, where: string): string {
  return word.replace(/\$([A-Z_][A-Z0-9_]*)/g, (_, name: string) => {
    const value = vars[name];
    if (value === undefined) throw new Error(`${where}: $${name} is not a placeholder the test knows`);
    return value;
  });
}

/** The request a doc's curl command makes: only -s, -X, -H, -d and the URL. */
export function curlRequest(command: DocCommand, vars: Readonly<Record<string, string>>, where: string): CurlRequest {
  const words = command.words.map((w) => substitute(w, vars, where));
  const request: CurlRequest = { method: 'GET', url: '', headers: {} };
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '-s') continue;
    if (word === '-X') request.method = words[++i]!;
    else if (word === '-H') {
      const header = words[++i]!;
      const colon = header.indexOf(':');
      request.headers[header.slice(0, colon).trim().toLowerCase()] = header.slice(colon + 1).trim();
    } else if (word === '-d') {
      request.body = words[++i]!;
      if (!command.words.includes('-X')) request.method = 'POST';
    } else if (/^https?:\/\//.test(word)) request.url = word;
    else throw new Error(`${where}: curl option "${word}" is not supported in a tested example`);
  }
  if (!request.url) throw new Error(`${where}: curl without a URL`);
  return request;
}

/** Where `actual` differs from what the doc claims (`expected`), or null when it matches. */
export function mismatch(expected: unknown, actual: unknown, path = '$'): string | null {
  if (expected === WILDCARD) return actual === undefined ? `${path}: missing` : null;
  if (typeof expected === 'string' && expected.includes(WILDCARD)) {
    const pattern = new RegExp(`^${expected.split(WILDCARD).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's');
    return typeof actual === 'string' && pattern.test(actual) ? null : `${path}: ${JSON.stringify(actual)} is not ${JSON.stringify(expected)}`;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${path}: ${JSON.stringify(actual)} is not a list`;
    const open = expected.at(-1) === WILDCARD;
    const fixed = open ? expected.slice(0, -1) : expected;
    if (open ? actual.length < fixed.length : actual.length !== fixed.length) return `${path}: ${JSON.stringify(actual)} does not match ${JSON.stringify(expected)}`;
    for (const [i, item] of fixed.entries()) {
      const wrong = mismatch(item, actual[i], `${path}[${i}]`);
      if (wrong) return wrong;
    }
    return null;
  }
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return `${path}: ${JSON.stringify(actual)} is not an object`;
    for (const [key, value] of Object.entries(expected)) {
      const wrong = mismatch(value, (actual as Record<string, unknown>)[key], `${path}.${key}`);
      if (wrong) return wrong;
    }
    return null;
  }
  return Object.is(expected, actual) ? null : `${path}: ${JSON.stringify(actual)} is not ${JSON.stringify(expected)}`;
}
