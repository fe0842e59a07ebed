/**
 * The nginx renderer: user strings reach the files only as single tokens
 * (checked with a tokenizer that follows nginx's, and with nginx -t itself),
 * and each WAF level renders to the rules docs/edge-nginx.md describes.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { SiteSpec } from '../../producers/edge/model.js';
import { DEBIAN_PATHS } from '../../workers/edge/nginx/apply.js';
import { RenderError, scriptStr, str } from '../../workers/edge/nginx/escape.js';
import { failingSites } from '../../workers/edge/nginx/failures.js';
import { stateDirectories, edgeLayout } from '../../workers/edge/nginx/layout.js';
import { renderNginx, type NginxRenderOptions } from '../../workers/edge/nginx/render.js';
import { siteSpec } from '../support/edge-sites.js';

/** nginx's tokenizer (ngx_conf_read_token), enough for rendered files: words, "…" with \" and \\, ; { } and # comments. */
type Statement = { words: string[]; block?: Statement[] };
function parse(text: string): Statement[] {
  let i = 0;
  const read = (): Statement[] => {
    const out: Statement[] = [];
    let words: string[] = [];
    while (i < text.length) {
      const c = text[i] ?? '';
      if (/\s/.test(c)) i += 1;
      else if (c === '#') while (i < text.length && text[i] !== '\n') i += 1;
      else if (c === ';') {
        out.push({ words });
        words = [];
        i += 1;
      } else if (c === '{') {
        i += 1;
        out.push({ words, block: read() });
        words = [];
      } else if (c === '}') {
        i += 1;
        return out;
      } else if (c === '"') {
        let word = '';
        i += 1;
        while (text[i] !== '"') {
          if (text[i] === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\')) i += 1;
          word += text[i];
          i += 1;
        }
        i += 1;
        words.push(word);
      } else {
        let word = '';
        while (i < text.length && !/[\s;{}"]/.test(text[i] ?? '')) word += text[i++];
        words.push(word);
      }
    }
    return out;
  };
  return read();
}
const flat = (statements: Statement[]): Statement[] => statements.flatMap((s) => [s, ...flat(s.block ?? [])]);

const scratch = mkdtempSync(path.join(tmpdir(), 'edge-render-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function options(overrides: Partial<NginxRenderOptions> = {}): NginxRenderOptions {
  return {
    prefix: scratch,
    confDir: path.join(scratch, 'conf'),
    address: '127.0.0.1',
    httpPort: 18080,
    httpsPort: 18443,
    certificates: new Map(),
    crsDir: DEBIAN_PATHS.crsDir,
    crsSetup: DEBIAN_PATHS.crsSetup,
    modulesDir: DEBIAN_PATHS.modulesDir,
    releaseId: '1',
    user: process.getuid?.() === 0 ? 'root' : undefined,
    ...overrides,
  };
}

const INJECTION = 'x"; return 200 "pwned';

describe('escaping', () => {
  it('quotes a string as one token and turns $ into ${dollar} where nginx expands variables', () => {
    expect(str('a "b" \\c').text).toBe('"a \\"b\\" \\\\c"');
    expect(scriptStr('cost: $5 $host').text).toBe('"cost: ${dollar}5 ${dollar}host"');
    expect(parse(`add_header X ${scriptStr(INJECTION).text};`)).toEqual([{ words: ['add_header', 'X', INJECTION] }]);
  });

  it('refuses control characters', () => {
    expect(() => str('a\nb')).toThrow(RenderError);
    expect(() => scriptStr('a\u0000')).toThrow(RenderError);
  });

  it('rejects a site whose values no grammar accepts, alone', () => {
    const bad: SiteSpec[] = [
      siteSpec('bad-domain', { domain: '~.*' }),
      siteSpec('bad-cidr', { access: { allow: ['10.0.0.0/8; allow all'], deny: [], blockedCountries: [] } }),
      siteSpec('bad-header', { headers: { 'X-A: b': 'v' } }),
      siteSpec('bad-newline', { headers: { 'X-A': 'v\nadd_header X-B 1' } }),
      siteSpec('bad/id'),
    ];
    const tree = renderNginx({ version: 1, sites: [...bad, siteSpec('fine')] }, options());
    expect([...tree.rejected.keys()].sort()).toEqual(['bad-cidr', 'bad-domain', 'bad-header', 'bad-newline', 'bad/id']);
    expect([...tree.files.keys()].filter((f) => f.startsWith('sites/'))).toEqual(['sites/fine.conf']);
  });
});

describe('renderNginx', () => {
  it('a header value cannot add a directive: one add_header with the value verbatim, and nginx -t agrees', () => {
    const site = siteSpec('inject', {
      headers: { 'X-Test': INJECTION, 'X-Dollar': '$host' },
      cache: { enabled: true, ttlSeconds: 30, bypass: ['/api";return"x'] },
      // The rest of a full-featured site, so nginx -t below also judges these directives.
      access: { allow: ['10.0.0.0/8', '2001:db8::/32'], deny: ['10.1.0.0/16'], blockedCountries: ['ru', 'KP'] },
      rateLimit: { requestsPerSecond: 10, burst: 20 },
      waf: { level: '2' },
      aliases: ['www.inject.test'],
    });
    const tree = renderNginx({ version: 1, sites: [site] }, options({ geoipCountryDb: DEBIAN_PATHS.geoipCountryDb }));
    const statements = flat(parse(tree.files.get('sites/inject.conf') ?? ''));
    const headers = statements.filter((s) => s.words[0] === 'add_header' && s.words[1] === 'X-Test');
    expect(headers.length).toBeGreaterThan(0);
    for (const header of headers) expect(header.words).toEqual(['add_header', 'X-Test', INJECTION, 'always']);
    // The only `return` is the country block's.
    expect(statements.filter((s) => s.words[0] === 'return').map((s) => s.words)).toEqual([['return', '403']]);
    expect(statements.find((s) => s.words[0] === 'if')?.words).toEqual(['if', '($geoip_country_code', '~', '^(?:RU|KP)$', ')']);
    expect(statements.find((s) => s.words[0] === 'location' && s.words[1] === '^~' && s.words[2]?.startsWith('/api'))?.words[2]).toBe('/api";return"x');
    expect(statements.find((s) => s.words[1] === 'X-Dollar')?.words[2]).toBe('${dollar}host');

    if (!existsSync(DEBIAN_PATHS.binary)) return;
    const confDir = path.join(scratch, 'conf');
    for (const dir of stateDirectories(edgeLayout(scratch))) mkdirSync(dir, { recursive: true });
    for (const [file, contents] of tree.files) {
      mkdirSync(path.dirname(path.join(confDir, file)), { recursive: true });
      writeFileSync(path.join(confDir, file), contents);
    }
    const out = execFileSync(DEBIAN_PATHS.binary, ['-t', '-p', `${scratch}/`, '-c', path.join(confDir, 'nginx.conf'), '-e', path.join(scratch, 'logs', 'error.log')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).toBe('');
  });

  it('renders each WAF level: modsecurity on|off per server, site-keyed paranoia and DetectionOnly rules in one file', () => {
    const sites = (['off', 'detect', '1', '2', '3', '4'] as const).map((level) => siteSpec(`waf-${level}`, { waf: { level }, aliases: level === '2' ? ['www.waf-2.test'] : [] }));
    const tree = renderNginx({ version: 1, sites }, options());
    const modsecurity = (id: string) => flat(parse(tree.files.get(`sites/${id}.conf`) ?? '')).find((s) => s.words[0] === 'modsecurity')?.words[1];
    expect(sites.map((s) => modsecurity(s.siteId))).toEqual(['off', 'on', 'on', 'on', 'on', 'on']);
    const paranoia = (tree.files.get('waf/paranoia.conf') ?? '').split('\n').filter((line) => line.startsWith('SecRule'));
    expect(paranoia).toEqual([
      'SecRule UNIQUE_ID "@beginsWith waf-detect:" "id:10000,phase:1,pass,nolog,t:none,setvar:tx.paranoia_level=1,setvar:tx.executing_paranoia_level=1"',
      'SecRule UNIQUE_ID "@beginsWith waf-detect:" "id:10001,phase:1,pass,nolog,t:none,ctl:ruleEngine=DetectionOnly"',
      'SecRule UNIQUE_ID "@beginsWith waf-1:" "id:10002,phase:1,pass,nolog,t:none,setvar:tx.paranoia_level=1,setvar:tx.executing_paranoia_level=1"',
      'SecRule UNIQUE_ID "@beginsWith waf-2:" "id:10004,phase:1,pass,nolog,t:none,setvar:tx.paranoia_level=2,setvar:tx.executing_paranoia_level=2"',
      'SecRule UNIQUE_ID "@beginsWith waf-3:" "id:10006,phase:1,pass,nolog,t:none,setvar:tx.paranoia_level=3,setvar:tx.executing_paranoia_level=3"',
      'SecRule UNIQUE_ID "@beginsWith waf-4:" "id:10008,phase:1,pass,nolog,t:none,setvar:tx.paranoia_level=4,setvar:tx.executing_paranoia_level=4"',
    ]);
    const transactionId = (id: string) => flat(parse(tree.files.get(`sites/${id}.conf`) ?? '')).find((s) => s.words[0] === 'modsecurity_transaction_id')?.words[1];
    expect(sites.map((s) => transactionId(s.siteId))).toEqual([undefined, 'waf-detect:$request_id', 'waf-1:$request_id', 'waf-2:$request_id', 'waf-3:$request_id', 'waf-4:$request_id']);
    const main = tree.files.get('waf/main.conf') ?? '';
    expect(main).toMatch(/^SecRuleEngine On$/m);
    // The paranoia file comes before the rules: REQUEST-901 only fills in a level nothing set.
    expect(main.indexOf('paranoia.conf')).toBeLessThan(main.indexOf('rules/*.conf'));
    const http = parse(tree.files.get('nginx.conf') ?? '').find((s) => s.words[0] === 'http');
    expect(http?.block?.filter((s) => s.words[0] === 'modsecurity_rules_file').length).toBe(1);
  });

  it('blocked sites answer a fixed page and have no upstream', () => {
    const tree = renderNginx({ version: 1, sites: [siteSpec('blocked', { blocked: true })] }, options());
    const statements = flat(parse(tree.files.get('sites/blocked.conf') ?? ''));
    expect(statements.some((s) => s.words[0] === 'upstream' || s.words[0] === 'proxy_pass')).toBe(false);
    expect(statements.find((s) => s.words[0] === 'return')?.words[1]).toBe('503');
  });
});

describe('failingSites', () => {
  it('names the site whose file nginx points at, or whose certificate it cannot load', () => {
    const dir = '/x/releases/4';
    const ids = new Set(['a', 'b', 'c']);
    expect(failingSites('[emerg] host not found in upstream "nosuch.invalid:80" in /x/releases/4/sites/b.conf:3', dir, new Map(), ids)).toEqual(['b']);
    const certs = new Map([['c', { certPath: '/certs/c.pem', keyPath: '/certs/c.key' }]]);
    expect(failingSites('[emerg] cannot load certificate "/certs/c.pem": PEM_read_bio_X509_AUX() failed', dir, certs, ids)).toEqual(['c']);
    expect(failingSites('[emerg] unknown directive "x" in /x/releases/4/nginx.conf:3', dir, certs, ids)).toEqual([]);
  });
});
