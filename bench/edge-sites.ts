/**
 * The nginx edge driver at scale, on real nginx + ModSecurity + CRS (Debian):
 *
 * 1. render, validate (`nginx -t`) and apply 1,000 sites on one fresh node
 *    (goal: under 10 s), against the raw floor — `nginx -t` alone of the very
 *    tree the driver wrote, with no rendering, fallback or reload;
 * 2. one site added to those 1,000 (goal: applied in under 1 s);
 * 3. nginx reload time against site count (10, 100, 1,000);
 * 4. requests per second through a site with WAF level 1 against a site on
 *    the same nginx with `modsecurity off`, driven by wrk (Debian's `wrk`).
 *
 *   npm run bench:edge            # EDGE_SITES=1000 EDGE_WRK_SECONDS=10 EDGE_WRK_CONNECTIONS=32
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { createLogger } from '../infra/logger.js';
import type { SiteSpec } from '../producers/edge/model.js';
import { DEBIAN_PATHS, NginxEdge } from '../workers/edge/nginx/apply.js';
import { freePort, get } from '../tests/support/edge-http.js';
import { siteSpec } from '../tests/support/edge-sites.js';
import { envInt, fmt, runMain, table, until, verdict } from './support.js';

const run = promisify(execFile);
const SITES = envInt('EDGE_SITES', 1_000);
const WRK_SECONDS = envInt('EDGE_WRK_SECONDS', 10);
const WRK_CONNECTIONS = envInt('EDGE_WRK_CONNECTIONS', 32);

async function seconds(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return (performance.now() - start) / 1000;
}

/** Requests per second wrk measured, with its non-2xx count (a WAF that blocks the benign request would make this meaningless). */
async function wrk(port: number, host: string, urlPath: string): Promise<{ rps: number; non2xx: number }> {
  const { stdout } = await run('wrk', ['-t2', `-c${WRK_CONNECTIONS}`, `-d${WRK_SECONDS}s`, '-H', `Host: ${host}`, `http://127.0.0.1:${port}${urlPath}`]);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1];
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1];
  if (rps === undefined) throw new Error(`wrk printed no rate:\n${stdout}`);
  return { rps: Number(rps), non2xx: Number(non2xx ?? 0) };
}

/**
 * The upstream is a plain nginx answering a fixed body, so the comparison
 * measures the edge (and its WAF), not a Node upstream's ceiling.
 */
async function staticUpstream(dir: string): Promise<{ port: number; stop(): void }> {
  const port = await freePort();
  mkdirSync(path.join(dir, 'logs'), { recursive: true });
  const conf = path.join(dir, 'upstream.conf');
  writeFileSync(
    conf,
    `worker_processes 1; pid ${dir}/upstream.pid; events { worker_connections 4096; }\n` +
      `http { access_log off; server { listen 127.0.0.1:${port}; location / { default_type text/plain; return 200 "upstream\\n"; } } }\n`,
  );
  const child: ChildProcess = spawn(DEBIAN_PATHS.binary, ['-p', `${dir}/`, '-c', conf, '-e', path.join(dir, 'upstream-error.log'), '-g', 'daemon off;'], { stdio: 'ignore' });
  await until('the upstream nginx answers', async () => (await get(port, 'upstream', '/').catch(() => ({ status: 0 }))).status === 200, 10_000, 50);
  return { port, stop: () => child.kill('SIGQUIT') };
}

async function main(): Promise<void> {
  const root = mkdtempSync(path.join(tmpdir(), 'bench-edge-'));
  const upstream = await staticUpstream(root);
  const httpPort = await freePort();
  const edge = new NginxEdge({ root, address: '127.0.0.1', httpPort, httpsPort: await freePort(), logger: createLogger('warn'), readyTimeoutMs: 60_000 });
  const site = (i: number, overrides: Partial<SiteSpec> = {}): SiteSpec =>
    siteSpec(`s${String(i).padStart(5, '0')}`, {
      upstreams: [{ host: '127.0.0.1', port: upstream.port, weight: 1 }],
      // A realistic mix: every third site caches, every fifth runs the WAF at level 1.
      cache: { enabled: i % 3 === 0, ttlSeconds: 60, bypass: ['/api/'] },
      waf: { level: i % 5 === 0 ? '1' : 'off' },
      ...overrides,
    });
  const sites = (n: number) => Array.from({ length: n }, (_, i) => site(i));
  try {
    await edge.start();
    console.log(`nginx edge bench: ${SITES} sites, nginx ${DEBIAN_PATHS.binary}, wrk ${WRK_SECONDS} s × ${WRK_CONNECTIONS} connections`);

    // 1. The whole set on a fresh node, then the raw floor on the tree it wrote.
    const full = await seconds(() => edge.apply({ version: 1, sites: sites(SITES) }));
    const conf = path.join(edge.paths.current, 'nginx.conf');
    const test = await seconds(() => run(DEBIAN_PATHS.binary, ['-t', '-q', '-p', `${root}/`, '-c', conf, '-e', edge.paths.errorLog]));
    // 2. One more site: the whole tree is rendered and tested again, so this is bounded by `nginx -t` of all of them.
    const added = await seconds(() => edge.apply({ version: 2, sites: [...sites(SITES), site(SITES)] }));

    // 3. Reload time by site count (each apply is a render + test + reload; the reload part is timed by applying the same set twice).
    const reloads: string[][] = [];
    for (const n of [10, 100, SITES]) {
      await edge.apply({ version: 3, sites: sites(n) });
      const again = await seconds(() => edge.apply({ version: 3, sites: sites(n) }));
      const testOnly = await seconds(() => run(DEBIAN_PATHS.binary, ['-t', '-q', '-p', `${root}/`, '-c', conf, '-e', edge.paths.errorLog]));
      reloads.push([String(n), fmt.s(again), fmt.s(testOnly), fmt.s(Math.max(0, again - testOnly))]);
    }

    // 4. WAF level 1 against modsecurity off, same nginx, same upstream, same benign request.
    await edge.apply({ version: 4, sites: [site(0, { waf: { level: '1' }, cache: { enabled: false, ttlSeconds: 60, bypass: [] } }), site(1, { waf: { level: 'off' }, cache: { enabled: false, ttlSeconds: 60, bypass: [] } })] });
    const plain = await wrk(httpPort, 's00001.test', '/index.html?page=2');
    const waf = await wrk(httpPort, 's00000.test', '/index.html?page=2');

    const floor = test;
    console.log(
      '\n' +
        table(
          ['measure', 'seconds', 'raw floor (nginx -t)', 'ratio', 'goal', 'verdict'],
          [
            [`apply ${SITES} sites on a fresh node`, fmt.s(full), fmt.s(floor), `${(full / floor).toFixed(2)}×`, '< 10 s', verdict(full < 10)],
            [`add 1 site to ${SITES}`, fmt.s(added), fmt.s(floor), `${(added / floor).toFixed(2)}×`, '< 1 s', verdict(added < 1)],
          ],
        ),
    );
    console.log('\nnginx reload by site count (apply of an unchanged set = render + nginx -t + reload)\n' + table(['sites', 'apply s', 'nginx -t s', 'reload ≈ s'], reloads));
    console.log(
      '\n' +
        table(
          ['site', 'requests/s', 'non-2xx', 'ratio to modsecurity off'],
          [
            ['modsecurity off', fmt.int(plain.rps), String(plain.non2xx), '1.00'],
            ['WAF level 1 (CRS 3.3.4, PL1)', fmt.int(waf.rps), String(waf.non2xx), (waf.rps / plain.rps).toFixed(2)],
          ],
        ),
    );
  } finally {
    await edge.stop();
    upstream.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

runMain(main);
