/**
 * Outgoing webhooks end to end: endpoints through the admin API, a real
 * `plans.SubscriptionLimited` from the subscription command, the delivery
 * worker (feeders + scheduler) on a ManualClock, and a real HTTP receiver on
 * a loopback port that verifies what it gets with the integrators' helper.
 */
import { spawn } from 'node:child_process';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { startWebhookWorker } from '../../infra/roles/webhooks.js';
import { CommandHandler } from '../../producers/event-store/command-handler.js';
import { verifyWebhook } from '../../producers/billing/webhook-verify.js';
import { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';
import type { WebhookDelivery } from '../../workers/billing/webhook-delivery.js';
import { outboxProjectorName } from '../../workers/billing/webhook-outbox.js';
import { RETRY_DELAYS_MS } from '../../workers/billing/webhook-retries.js';
import { ManualClock } from '../../workers/scheduler/clock.js';
import { apiSuite, expectStatus } from '../support/api-suite.js';
import { CLI, sandboxEnv } from '../support/cli.js';
import { eventually } from '../support/isolated.js';
import { readLog } from '../support/log.js';
import { createPlan, grantPlan } from '../support/plans.js';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A receiver on a loopback port: answers each path from its queue of statuses (0: never answer), 200 when it runs out. */
async function startReceiver() {
  const received: Received[] = [];
  const queues = new Map<string, number[]>();
  const hanging: ServerResponse[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ path, headers: req.headers, body });
      const status = queues.get(path)?.shift() ?? 200;
      if (status === 0) hanging.push(res);
      else res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    answer: (path: string, statuses: number[]) => queues.set(path, statuses),
    at: (path: string) => received.filter((r) => r.path === path),
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

type Endpoint = { id: string; secret: string; status: string; disabledReason: string | null };
type Delivery = { webhookId: string; status: string; finalReason: string | null; nextAttemptAt: string | null; attempts: { attempt: number; statusCode: number | null; latencyMs: number | null; error: string | null; finishedAt: string | null }[] };

describe('outgoing webhooks', () => {
  const suite = apiSuite({ env: { RG_WEBHOOK_ALLOW_PRIVATE: '1' } });
  const logLines: string[] = [];
  /** Every secret answered, to look for in the log at the end. */
  const secrets: string[] = [];
  const clock = new ManualClock(new Date());
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let watcher: CheckpointWatcher;
  let worker: WebhookDelivery | undefined;
  let admin: string;
  let planId: string;

  const startWorker = async () => {
    const log = pino({ level: 'trace' }, { write: (line: string) => logLines.push(line) });
    // A handler of its own, as the fleet worker's process has.
    worker = await startWebhookWorker(suite.env.rt, new CommandHandler(suite.api.plans.deps.handler.store), watcher, { clock, random: () => 0.5, timeoutMs: 300, pollMs: 50, standbyPollMs: 50, log });
  };

  beforeAll(async () => {
    receiver = await startReceiver();
    watcher = new CheckpointWatcher(suite.env.rt.config.databaseUrl, suite.env.rt.db);
    admin = (await suite.signedIn(['admin'])).token;
    planId = await createPlan(suite.api.plans, { allowanceBytes: '1000', overage: 'block' });
    await startWorker();
  });
  afterAll(async () => {
    await worker?.close();
    await watcher?.close();
    await receiver?.close();
  });

  const create = async (path: string, eventTypes = ['subscription.limited']): Promise<Endpoint> => {
    const endpoint = expectStatus(await suite.call<Endpoint>('POST', '/v1/admin/webhooks', { token: admin, body: { url: `${receiver.url}${path}`, eventTypes, description: `receiver ${path}` } }), 201).body;
    secrets.push(endpoint.secret);
    return endpoint;
  };
  const deliveries = async (id: string) => expectStatus(await suite.call<{ deliveries: Delivery[] }>('GET', `/v1/admin/webhooks/${id}/deliveries`, { token: admin }), 200).body.deliveries;
  const endpoints = async () => expectStatus(await suite.call<{ endpoints: Endpoint[] }>('GET', '/v1/admin/webhooks', { token: admin }), 200).body.endpoints;
  const delivery = async (id: string, done: (d: Delivery) => boolean) => eventually(async () => (await deliveries(id)).find(done));

  /** A user whose subscription's allowance is spent: one `plans.SubscriptionLimited`, through the subscription command. */
  const limitUser = async (): Promise<string> => {
    const user = await suite.signedIn();
    await grantPlan(suite.api.plans, user.id, planId);
    const view = await eventually(async () => {
      const v = await suite.api.plans.subscriptions.view(user.id).catch(() => null);
      return v?.status === 'active' && v.periodStart ? v : undefined;
    });
    await suite.api.plans.subscriptions.markLimited(user.id, new Date(view.periodStart!), 1000n, 'allowance_spent');
    return user.id;
  };

  it('delivers a signed subscription.limited: 500 twice, then 200 — three attempts on the schedule, one webhook id, logged', async () => {
    const endpoint = await create('/limited');
    expect(endpoint.secret).toMatch(/^whsec_/);
    const listed = await endpoints();
    expect(listed.map((e) => e.id)).toContain(endpoint.id);
    expect(JSON.stringify(listed)).not.toContain(endpoint.secret);
    expect(listed.every((e) => !('secret' in e))).toBe(true);
    const row = await suite.env.rt.db.selectFrom('webhook_endpoints').selectAll().where('id', '=', endpoint.id).executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain(endpoint.secret.slice(6));
    const [createdEvent] = await readLog(suite.env.rt, suite.env.rt.names.aggregate('billing', 'webhook-endpoint', endpoint.id));
    expect(Buffer.from(createdEvent!.type === 'billing.WebhookEndpointCreated' ? createdEvent!.data.secretSealed : []).toString('latin1')).not.toContain(endpoint.secret.slice(6));

    receiver.answer('/limited', [500, 500, 200]);
    const userId = await limitUser();
    await eventually(() => receiver.at('/limited').length === 1);
    const first = await delivery(endpoint.id, (d) => d.attempts[0]?.finishedAt != null);
    expect(first).toMatchObject({ status: 'pending', attempts: [{ attempt: 1, statusCode: 500, error: 'http_500' }] });
    // The second attempt 5 s later (the jitter is pinned to its middle here).
    expect(new Date(first.nextAttemptAt!).getTime() - clock.now().getTime()).toBe(RETRY_DELAYS_MS[1]);
    clock.advance(RETRY_DELAYS_MS[1]!);
    await eventually(() => receiver.at('/limited').length === 2);
    clock.advance(RETRY_DELAYS_MS[2]!);
    const done = await delivery(endpoint.id, (d) => d.status === 'delivered');
    expect(receiver.at('/limited')).toHaveLength(3);
    expect(done.attempts.map((a) => [a.attempt, a.statusCode, a.error])).toEqual([
      [1, 500, 'http_500'],
      [2, 500, 'http_500'],
      [3, 200, null],
    ]);
    expect(done.attempts.every((a) => typeof a.latencyMs === 'number')).toBe(true);
    expect(done.nextAttemptAt).toBeNull();

    // Every attempt: the same id and body, signed afresh with its own timestamp.
    const sent = receiver.at('/limited');
    expect(new Set(sent.map((r) => r.headers['webhook-id'])).size).toBe(1);
    expect(new Set(sent.map((r) => r.body)).size).toBe(1);
    expect(sent[0]!.headers['webhook-id']).toBe(done.webhookId);
    const verified = verifyWebhook(endpoint.secret, sent[2]!.headers, sent[2]!.body, { now: clock.now() });
    expect(verified.payload).toMatchObject({ type: 'subscription.limited', data: { userId, cause: 'allowance_spent', usedBytes: '1000' } });
    expect(Object.keys(verified.payload).sort()).toEqual(['data', 'timestamp', 'type']);
    // The first attempt's signature, replayed now, is refused: its timestamp is 5 min 5 s old.
    expect(() => verifyWebhook(endpoint.secret, sent[0]!.headers, sent[0]!.body, { now: clock.now() })).toThrow(/more than 300 s old/);
    // No personal data: user ids only.
    expect(sent[0]!.body).not.toMatch(/@/);

    const metric = await suite.env.rt.metrics.webhookDeliveries.get();
    const byOutcome = Object.fromEntries(metric.values.map((v) => [String(v.labels['outcome']), v.value]));
    expect(byOutcome).toMatchObject({ retrying: 2, delivered: 1 });
  });

  it('a redelivered or replayed cause sends nothing again', async () => {
    const before = receiver.at('/limited').length;
    const rows = async () => Number((await suite.env.rt.db.selectFrom('webhook_deliveries').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);
    const queued = await rows();
    const { rt } = suite.env;
    const stream = rt.names.stream('plans');
    const limited = (await readLog(rt, rt.names.contextSubjects('plans'))).filter((e) => e.type === 'plans.SubscriptionLimited');
    expect(limited.length).toBeGreaterThan(0);
    // Redelivered: the same message (same ce-id) stored again, past JetStream's duplicate window.
    for (const event of limited) {
      const stored = await rt.nats.jsm.streams.getMessage(stream, { seq: event.seq });
      const copy = natsHeaders();
      for (const [key, values] of stored!.header) if (key !== 'Nats-Msg-Id') for (const value of values) copy.append(key, value);
      await rt.nats.js.publish(stored!.subject, stored!.data, { headers: copy, msgID: `redelivery-${event.id}` });
    }
    // Replayed: the feeder starts over from the beginning of the stream.
    await worker!.close();
    await rt.db.updateTable('projector_checkpoints').set({ seq: 0 }).where('projector', '=', outboxProjectorName('plans')).execute();
    await startWorker();
    const last = (await rt.nats.jsm.streams.info(stream)).state.last_seq;
    await eventually(async () => (await watcher.current(outboxProjectorName('plans'))) >= last);
    clock.advance(60_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await rows()).toBe(queued);
    expect(receiver.at('/limited')).toHaveLength(before);
  });

  it('410 Gone disables the endpoint: its delivery fails, and nothing more is queued for it', async () => {
    const gone = await create('/gone');
    receiver.answer('/gone', [410]);
    await limitUser();
    const failed = await delivery(gone.id, (d) => d.status === 'failed');
    expect(failed).toMatchObject({ finalReason: 'endpoint_gone', attempts: [{ attempt: 1, statusCode: 410, error: 'http_410' }] });
    await eventually(async () => (await endpoints()).find((e) => e.id === gone.id && e.status === 'disabled'));
    expect((await endpoints()).find((e) => e.id === gone.id)).toMatchObject({ status: 'disabled', disabledReason: 'gone' });
    const seen = receiver.at('/limited').length;
    await limitUser();
    await eventually(() => receiver.at('/limited').length === seen + 1);
    clock.advance(RETRY_DELAYS_MS[1]!);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await deliveries(gone.id)).toHaveLength(1);
    expect(receiver.at('/gone')).toHaveLength(1);
  });

  it('rotating the secret signs with both for a day; deleting an endpoint cancels what it has pending', async () => {
    const rotating = await create('/rotating');
    const rotated = expectStatus(await suite.call<Endpoint>('POST', `/v1/admin/webhooks/${rotating.id}/rotate-secret`, { token: admin }), 200).body;
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.secret).not.toBe(rotating.secret);
    secrets.push(rotated.secret);
    const doomed = await create('/doomed');
    receiver.answer('/doomed', [500]);
    await limitUser();
    const [hook] = await eventually(() => receiver.at('/rotating').length === 1 && receiver.at('/rotating'));
    // Before the 8-attempt test moves the clock past the day of grace.
    expect(String(hook!.headers['webhook-signature']).split(' ')).toHaveLength(2);
    for (const secret of [rotated.secret, rotating.secret]) expect(verifyWebhook(secret, hook!.headers, hook!.body, { now: clock.now() }).type).toBe('subscription.limited');

    await delivery(doomed.id, (d) => d.attempts[0]?.statusCode === 500);
    expectStatus(await suite.call('DELETE', `/v1/admin/webhooks/${doomed.id}`, { token: admin }), 200);
    expect((await endpoints()).map((e) => e.id)).not.toContain(doomed.id);
    expect(expectStatus(await suite.call('GET', `/v1/admin/webhooks/${doomed.id}/deliveries`, { token: admin }), 404).body).toMatchObject({ code: 'webhook_endpoint_not_found' });
    clock.advance(RETRY_DELAYS_MS[1]!);
    const cancelled = await eventually(async () => {
      const row = await suite.env.rt.db.selectFrom('webhook_deliveries').selectAll().where('endpoint_id', '=', doomed.id).executeTakeFirst();
      return row?.status === 'cancelled' && row;
    });
    expect(cancelled.final_reason).toBe('endpoint_deleted');
    expect(receiver.at('/doomed')).toHaveLength(1);
  });

  it('a receiver that times out, then fails, is tried 8 times over the schedule and the final failure recorded', async () => {
    const down = await create('/down');
    receiver.answer('/down', [0, ...Array.from({ length: 10 }, () => 503)]);
    await limitUser();
    await delivery(down.id, (d) => d.attempts[0]?.error === 'timeout');
    for (let attempt = 2; attempt <= 8; attempt++) {
      clock.advance(RETRY_DELAYS_MS[attempt - 1]!);
      await delivery(down.id, (d) => d.attempts.length === attempt && d.attempts[attempt - 1]!.finishedAt !== null);
    }
    const final = await delivery(down.id, (d) => d.status === 'failed');
    expect(final).toMatchObject({ finalReason: 'attempts_exhausted', nextAttemptAt: null });
    expect(final.attempts.map((a) => a.error)).toEqual(['timeout', ...Array.from({ length: 7 }, () => 'http_503')]);
    clock.advance(RETRY_DELAYS_MS.at(-1)!);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(receiver.at('/down')).toHaveLength(8);
  });

  it('refuses bad endpoints with stable codes, and is for admins only', async () => {
    const post = (body: unknown, token = admin) => suite.call('POST', '/v1/admin/webhooks', { token, body });
    expect(expectStatus(await post({ url: 'ftp://127.0.0.1/x', eventTypes: ['order.paid'] }), 400).body).toMatchObject({ code: 'invalid_webhook_url', field: 'url' });
    expect(expectStatus(await post({ url: `${receiver.url}/x`, eventTypes: ['order.shipped'] }), 400).body).toMatchObject({ code: 'invalid_body', field: 'eventTypes.0' });
    expect(expectStatus(await post({ url: `${receiver.url}/x`, eventTypes: [] }), 400).body).toMatchObject({ code: 'invalid_body' });
    const operator = (await suite.signedIn(['operator'])).token;
    expect(expectStatus(await post({ url: `${receiver.url}/x`, eventTypes: ['order.paid'] }, operator), 403).body).toMatchObject({ code: 'forbidden' });
    expect(expectStatus(await suite.call('DELETE', '/v1/admin/webhooks/0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b', { token: admin }), 404).body).toMatchObject({ code: 'webhook_endpoint_not_found' });
  });

  it('a worker killed between sending and recording resends once, with the same webhook-id, at the next retry', async () => {
    // The fleet worker role as its own process (the system clock), killed while its receiver holds the request.
    await worker!.close();
    worker = undefined;
    const crash = await create('/crash');
    receiver.answer('/crash', [0]);
    const env = sandboxEnv(suite.env.config, { RG_FLEET_WORKER_PORT: '0', RG_WEBHOOK_ALLOW_PRIVATE: '1', RG_WEBHOOK_TIMEOUT_MS: '60000', LOG_LEVEL: 'debug' });
    const child = spawn(process.execPath, [CLI, 'fleet-worker'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.stdout.on('data', (d: Buffer) => logLines.push(d.toString()));
    child.stderr.on('data', (d: Buffer) => logLines.push(d.toString()));
    try {
      await limitUser();
      await eventually(() => receiver.at('/crash').length === 1, 20_000);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    const orphan = await delivery(crash.id, (d) => d.attempts.length === 1);
    expect(orphan).toMatchObject({ status: 'pending', attempts: [{ attempt: 1, finishedAt: null, statusCode: null }] });

    // The next worker resends at the retry time the claim committed (already past on the suite's clock).
    await startWorker();
    const done = await delivery(crash.id, (d) => d.status === 'delivered');
    expect(done.attempts.map((a) => [a.attempt, a.statusCode])).toEqual([
      [1, null],
      [2, 200],
    ]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const sent = receiver.at('/crash');
    expect(sent).toHaveLength(2);
    expect(sent[1]!.headers['webhook-id']).toBe(sent[0]!.headers['webhook-id']);
    expect(sent[1]!.body).toBe(sent[0]!.body);
  });

  it('never wrote a secret or an email address to the log', () => {
    const all = logLines.join('');
    expect(all.length).toBeGreaterThan(0);
    expect(secrets.length).toBeGreaterThanOrEqual(5);
    for (const secret of secrets) expect(all).not.toContain(secret.slice('whsec_'.length));
    expect(all).not.toMatch(/@example\.org/);
  });
});
