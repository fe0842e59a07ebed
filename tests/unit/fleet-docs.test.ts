/**
 * docs/fleet.md documents every profile kind the code has: a row in the kinds
 * table, a section with a settings table, and a tested example that creates
 * a profile of that kind (tests/integration/fleet-docs.test.ts runs it). A
 * kind added to PROFILE_KINDS without its docs fails here. Also the example
 * reader itself (tests/support/doc-examples.ts): what a block, a command and
 * a claimed answer are.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PROFILE_KINDS } from '../../producers/fleet/model.js';
import { blockCommands, curlRequest, DOCS_DIR, mismatch, testedBlocks } from '../support/doc-examples.js';

const FLEET_MD = readFileSync(`${DOCS_DIR}fleet.md`, 'utf8');
const VARS = { API: 'http://api.test', TOKEN: 't' };

/** The `###` sections under "## Inbound profiles", by heading. */
function profileSections(): { heading: string; text: string }[] {
  const start = FLEET_MD.indexOf('## Inbound profiles\n');
  const end = FLEET_MD.indexOf('\n## ', start + 1);
  return FLEET_MD.slice(start, end)
    .split(/\n(?=### )/)
    .slice(1)
    .map((part) => ({ heading: part.slice(0, part.indexOf('\n')), text: part }));
}

/** The kinds the tested examples create, with the line of each. */
function exampleKinds(): Map<string, number> {
  const kinds = new Map<string, number>();
  for (const block of testedBlocks('fleet.md')) {
    for (const command of blockCommands(block, 'fleet.md')) {
      const request = curlRequest(command, VARS, `fleet.md:${command.line}`);
      if (request.method !== 'POST' || !request.url.endsWith('/v1/fleet/profiles') || command.answer?.status !== 201) continue;
      kinds.set((JSON.parse(request.body!) as { kind: string }).kind, command.line);
    }
  }
  return kinds;
}

describe('docs/fleet.md and the profile kinds', () => {
  it.each(PROFILE_KINDS)('%s has a row in the kinds table, a settings table and a tested example', (kind) => {
    expect(FLEET_MD, 'a row of the kinds table').toMatch(new RegExp(`^\\| (?:\`[a-z-]+\`, )*\`${kind}\`(?:, \`[a-z-]+\`)* \\|`, 'm'));
    const section = profileSections().find((s) => s.heading.includes(`\`${kind}\``));
    expect(section, `a "### … \`${kind}\`" section under "## Inbound profiles"`).toBeDefined();
    expect(section!.text, 'a settings table').toMatch(/^\| setting \| required \| default \| meaning \|$/m);
    expect(exampleKinds().has(kind), 'a tested example that creates one (201)').toBe(true);
  });

  it('documents no kind the code does not have', () => {
    for (const kind of exampleKinds().keys()) expect(PROFILE_KINDS).toContain(kind);
  });
});

describe('the doc example reader', () => {
  const block = (text: string) => ({ line: 1, text });

  it('joins continued lines, keeps quotes together and reads the answer under a command', () => {
    const [command] = blockCommands(block(`curl -s -X POST "$API/v1/x" -H "authorization: Bearer $TOKEN" \\\n  -d '{\n  "a": 1\n}'\n# 201 {"a":1}`), 'x.md');
    expect(command).toMatchObject({ program: 'curl', answer: { status: 201, body: { a: 1 } } });
    expect(curlRequest(command!, VARS, 'x.md')).toEqual({ method: 'POST', url: 'http://api.test/v1/x', headers: { authorization: 'Bearer t' }, body: '{\n  "a": 1\n}' });
  });

  it('refuses what it would not run faithfully: other programs, pipes, unknown placeholders and options', () => {
    expect(() => blockCommands(block('rm -rf /'), 'x.md')).toThrow(/runs curl or npx relaygrid/);
    expect(() => blockCommands(block('curl -s $API/x | base64 -d'), 'x.md')).toThrow(/"\|" is not supported/);
    const [unknown] = blockCommands(block('curl -s $API/x -H "authorization: Bearer $SECRET"'), 'x.md');
    expect(() => curlRequest(unknown!, VARS, 'x.md')).toThrow(/\$SECRET is not a placeholder/);
    const [insecure] = blockCommands(block('curl -k $API/x'), 'x.md');
    expect(() => curlRequest(insecure!, VARS, 'x.md')).toThrow(/"-k" is not supported/);
  });

  it('matches an answer against what the doc shows, "…" standing for what varies', () => {
    expect(mismatch({ id: '…', seq: '…', key: 'fra-1.…', list: ['a', '…'] }, { id: 'x', seq: 3, key: 'fra-1.abc', list: ['a', 'b'], more: true })).toBeNull();
    expect(mismatch({ key: 'fra-1.…' }, { key: 'ams-1.abc' })).toMatch(/\$\.key/);
    expect(mismatch({ list: ['a'] }, { list: ['a', 'b'] })).toMatch(/\$\.list/);
    expect(mismatch({ id: '…' }, {})).toBe('$.id: missing');
    expect(mismatch({ n: 1 }, { n: '1' })).toMatch(/\$\.n/);
  });
});
