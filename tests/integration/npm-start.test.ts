/**
 * `npm start` as a newcomer runs it, in a project folder of its own (this
 * package.json, with dist/ and node_modules/ linked in), on ports where
 * nothing answers, so it starts its own nats-server, redis-server and embedded
 * Postgres. Then the first-admin line exactly as docs/operations.md shows it,
 * with no environment, and SIGTERM to the npm process as a supervisor sends it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFile, chmod, mkdtemp, readdir, readFile, readlink, realpath, rm, stat, symlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../infra/stack/ports.js';
import type { LocalPorts } from '../../infra/stack/local-stack.js';
import { client } from '../support/http.js';
import { eventually } from '../support/isolated.js';
import { answers, unusedPorts } from '../support/ports.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

/** A user's shell: none of the variables a test run or npm itself sets. */
function userEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(npm_|INIT_CWD$|NATS_URL$|DATABASE_URL$|REDIS_URL$|TEST_ADMIN_DATABASE_URL$|RG_|VITEST)/.test(name)) continue;
    env[name] = value;
  }
  return { ...env, LOG_LEVEL: 'warn', ...extra };
}

/** The first command of the "first admin" section's first code block. */
async function documentedFirstAdminLine(): Promise<string> {
  const doc = await readFile(path.join(ROOT, 'docs/operations.md'), 'utf8');
  const section = doc.split(/^## /m).find((s) => s.startsWith('The first admin'));
  const line = section && /```sh\n([^\n]+)\n/.exec(section)?.[1];
  if (!line) throw new Error('docs/operations.md: no code block in "The first admin"');
  return line;
}

interface Proc {
  pid: number;
  command: string;
}

/** Every process whose command line or working directory is inside dir: what the stack started there. */
async function processesIn(dir: string): Promise<Proc[]> {
  const found: Proc[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const cwd = await readlink(`/proc/${entry}/cwd`).catch(() => '');
    const command = cmdline.split('\0').join(' ').trim();
    if (command !== '' && (command.includes(dir) || cwd === dir || cwd.startsWith(`${dir}/`))) found.push({ pid: Number(entry), command });
  }
  return found;
}

describe('npm start in a fresh project folder', () => {
  let dir: string;
  let ports: LocalPorts;
  let apiPort: number;
  let npm: ChildProcess;
  let exited: Promise<void>;
  let output: string[] = [];

  /** `npm start` in dir, resolved once the API listens. */
  async function npmStart(): Promise<void> {
    output = [];
    const lines = output;
    // --ignore-scripts skips only `prestart` (the build, which the test run already did): `start` is run as written.
    npm = spawn('npm', ['start', '--ignore-scripts'], {
      cwd: dir,
      env: userEnv({
        RG_STACK_NATS_PORT: String(ports.nats),
        RG_STACK_POSTGRES_PORT: String(ports.postgres),
        RG_STACK_REDIS_PORT: String(ports.redis),
        RG_API_PORT: String(apiPort),
        RG_GATEWAY_PORT: String(await freePort()),
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    npm.stdout?.on('data', (d: Buffer) => lines.push(d.toString()));
    npm.stderr?.on('data', (d: Buffer) => lines.push(d.toString()));
    const started = npm;
    exited = new Promise((resolve) => started.once('exit', () => resolve()));
    await eventually(() => {
      if (started.exitCode !== null || started.signalCode !== null) throw new Error(`npm start ended early:\n${lines.join('')}`);
      return lines.join('').includes('Relaygrid API listening on');
    }, 120_000, 200);
  }

  beforeAll(async () => {
    // Under /tmp, searchable by others: embedded Postgres runs as user postgres when we are root.
    dir = await realpath(await mkdtemp(path.join(tmpdir(), 'relaygrid-project-')));
    await chmod(dir, 0o755);
    await copyFile(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
    await symlink(await realpath(path.join(ROOT, 'node_modules')), path.join(dir, 'node_modules'));
    await symlink(path.join(ROOT, 'dist'), path.join(dir, 'dist'));
    ports = await unusedPorts();
    apiPort = await freePort();
    await npmStart();
  }, 150_000);

  afterAll(async () => {
    // Whatever a failed test left behind.
    for (const { pid } of await processesIn(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('records the stack it started, and the first admin is created as the docs say, with no environment', async () => {
    const record = path.join(dir, '.relaygrid', 'stack.json');
    expect((await stat(record)).mode & 0o777).toBe(0o600);

    const line = await documentedFirstAdminLine();
    expect(line).toBe('npx relaygrid users create-admin --email admin@example.org');
    const { stdout, stderr } = await run('sh', ['-c', line], { cwd: dir, env: userEnv({}) });
    expect(stdout).toMatch(/^created admin \S+ <admin@example\.org>$/m);
    // One line on stderr says where the configuration came from.
    expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(/^relaygrid: NATS_URL, DATABASE_URL, REDIS_URL, RG_NAMESPACE, RG_MASTER_KEY \(the key in \.relaygrid\/master\.key\) from \.relaygrid\/stack\.json: the stack `npm start` runs here \(pid \d+\)$/)]);

    const password = /password \(shown once\): (\S+)/.exec(stdout)?.[1];
    const call = client(`http://127.0.0.1:${apiPort}`);
    const login = await call<{ accessToken: string }>('POST', '/v1/auth/login', { body: { email: 'admin@example.org', password } });
    expect(login.status).toBe(200);
    const me = await call<{ roles: string[] }>('GET', '/v1/auth/me', { token: login.body.accessToken });
    expect(me.body.roles).toContain('admin');
  }, 60_000);

  it('SIGTERM to the npm process stops Relaygrid and every service it started within 10 s', async () => {
    const before = await processesIn(dir);
    for (const name of ['nats-server', 'redis-server', 'postgres', 'dist/infra/cli/main.js start']) {
      expect(before.map((p) => p.command).join('\n')).toContain(name);
    }
    const signalled = Date.now();
    npm.kill('SIGTERM');
    await exited;
    const left = await eventually(async () => ((await processesIn(dir)).length === 0 ? 'none' : false), 10_000, 100).catch(async () => processesIn(dir));
    expect(left, output.join('')).toBe('none');
    expect(Date.now() - signalled).toBeLessThan(10_000);
    for (const port of Object.values(ports)) expect(await answers(port)).toBe(false);
    // Commands must not pick a stack that is gone.
    expect(existsSync(path.join(dir, '.relaygrid', 'stack.json'))).toBe(false);
  }, 30_000);

  it('a start killed with SIGKILL takes nats-server and redis-server with it, and the next start stops the Postgres it left', async () => {
    await npmStart();
    const start = (await processesIn(dir)).find((p) => p.command.includes('dist/infra/cli/main.js start'));
    expect(start).toBeDefined();
    process.kill(start!.pid, 'SIGKILL');
    await exited;
    // The kernel's parent-death signal: no exit hook of ours ran.
    const services = async () => (await processesIn(dir)).map((p) => p.command).filter((c) => /nats-server|redis-server/.test(c));
    expect(await eventually(async () => ((await services()).length === 0 ? 'none' : false), 10_000, 100).catch(services)).toBe('none');

    await npmStart();
    expect(output.join('')).toMatch(/stopping the Postgres a previous start left running/);
    npm.kill('SIGTERM');
    await exited;
    expect(await eventually(async () => ((await processesIn(dir)).length === 0 ? 'none' : false), 10_000, 100).catch(async () => processesIn(dir))).toBe('none');
  }, 240_000);
});
