/**
 * The CLI explains itself: `--help` on every command and subcommand prints its
 * usage and touches nothing; argument mistakes are reported before anything
 * connects. Run against servers that do not exist, so a connection attempt
 * would show as a connection error instead of the argument at fault.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../infra/config.js';
import { freePort, LOOPBACK } from '../../infra/stack/ports.js';
import { runCli } from '../support/cli.js';

let nowhere: Config;

beforeAll(async () => {
  const port = await freePort();
  nowhere = loadConfig({
    NATS_URL: `nats://${LOOPBACK}:${port}`,
    DATABASE_URL: `postgres://postgres@${LOOPBACK}:${port}/none`,
    REDIS_URL: `redis://${LOOPBACK}:${port}`,
    RG_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'),
  });
});

const HELP: [string[], RegExp][] = [
  [['start'], /^usage: relaygrid start\n/],
  [['migrate'], /^usage: relaygrid migrate\n/],
  [['api'], /^usage: relaygrid api\n/],
  [['gateway'], /^usage: relaygrid gateway\n/],
  [['projector'], /^usage: relaygrid projector \[name\.\.\.\]/],
  [['fleet-worker'], /^usage: relaygrid fleet-worker\n/],
  [['audit-worker'], /^usage: relaygrid audit-worker\n/],
  [['skip-event'], /^usage: relaygrid skip-event <projector> --seq N/],
  [['nats-config'], /^usage: relaygrid nats-config/],
  [['agent'], /^usage: relaygrid agent --node ID --state-dir DIR/],
  [['fleet'], /^usage: relaygrid fleet <command>/],
  [['fleet', 'nodes'], /^usage: relaygrid fleet <command>/],
  [['fleet', 'rollout', 'status'], /^usage: relaygrid fleet <command>/],
  [['users'], /^usage: relaygrid users <command>/],
  [['users', 'create-admin'], /^usage: relaygrid users <command>/],
  [['billing'], /^usage: relaygrid billing <command>/],
  [['billing', 'refund'], /^usage: relaygrid billing <command>/],
  [['replay'], /^usage: relaygrid replay <command>/],
  [['replay', 'export'], /^usage: relaygrid replay export --stream S/],
  [['replay', 'rebuild'], /^usage: relaygrid replay <command>/],
  [['replay', 'audit'], /^usage: relaygrid replay audit <command>/],
  [['replay', 'audit', 'verify'], /^usage: relaygrid replay audit <command>/],
];

describe('relaygrid … --help', () => {
  it.each(HELP)('%j --help prints its usage on stdout and exits 0 without connecting', async (args, usage) => {
    const result = await runCli(nowhere, [...args, '--help']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(usage);
    expect(result.stderr).toBe('');
  });

  it('-h is the same as --help, anywhere before a `--`', async () => {
    const result = await runCli(nowhere, ['fleet', 'rollout', '-h', 'status']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^usage: relaygrid fleet <command>/);
  });

  it('the top-level usage lists every command', async () => {
    const result = await runCli(nowhere, ['--help']);
    expect(result.code).toBe(0);
    for (const [args] of HELP.filter(([a]) => a.length === 1)) expect(result.stdout).toContain(`\n  ${args[0]}`);
  });
});

describe('argument errors come before any connection', () => {
  it.each([
    [['users', 'frobnicate'], 'unknown users command "frobnicate"'],
    [['users', 'suspend', 'x@example.org'], '--reason'],
    [['fleet', 'frobnicate'], 'fleet: unknown command "frobnicate"'],
    [['fleet', 'rollout', 'frobnicate', 'r-1'], 'rollout: unknown action "frobnicate"'],
    [['fleet', 'rollout', 'status'], '<rollout id>: required'],
    [['fleet', 'add', 'fra-1'], '--address: required'],
    [['fleet', 'import', '/nonexistent/nodes.yaml'], '<nodes.yaml>: cannot read /nonexistent/nodes.yaml (ENOENT)'],
    [['fleet', 'drain'], '<node>: required'],
    [['skip-event', 'users', '--seq', '3'], '--reason'],
    [['skip-event'], '<projector>'],
    [['projector', 'nope'], 'unknown projector "nope"'],
    [['api', 'extra'], 'api: unexpected argument "extra"'],
    [['migrate', '--force'], 'migrate: unexpected argument "--force"'],
    [['fleet', 'nodes', '--bogus'], "Unknown option '--bogus'"],
    [['billing', 'frobnicate'], 'unknown billing command "frobnicate"'],
    [['billing', 'confirm', `ord_${'a'.repeat(32)}`], '--reference: missing'],
    [['billing', 'confirm', 'order-1', '--reference', 'SEPA-1'], '<orderId>: an order id'],
    [['billing', 'confirm', `ord_${'a'.repeat(32)}`, '--reference', 'SEPA-1', '--amount', '9.99'], '--amount: a whole number of minor units'],
    [['billing', 'refund'], '<orderId>: missing'],
    [['billing', 'refund', `ord_${'a'.repeat(32)}`, '--amount', '0'], '--amount: a whole number of minor units, at least 1'],
    [['billing', 'orders', '--status', 'lost'], '--status: one of pending,'],
    [['billing', 'orders', '--limit', '501'], '--limit: a whole number from 1 to 500'],
    [['billing', 'revenue', '--from', '2026-12-01'], '--to: missing'],
    [['billing', 'revenue', '--from', '2026-12-01', '--to', '2026-11-01'], '--to: must be after --from'],
  ])('%j exits 2 naming the argument', async (args, message) => {
    const result = await runCli(nowhere, args);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stderr).not.toMatch(/ECONNREFUSED|connection refused|CONNECTION_REFUSED/i);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
