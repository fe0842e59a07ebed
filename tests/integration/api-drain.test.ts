/**
 * The API drains on stop: a request in flight when close() begins (a
 * registration, whose argon2 hash takes a while) is answered in full and its
 * effect stored; a connection attempted after that is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type RunningApi } from '../../infra/roles/api.js';
import { client } from '../support/http.js';
import { isolated, type Isolated } from '../support/isolated.js';

describe('API drain', () => {
  let env: Isolated;
  let api: RunningApi;

  beforeAll(async () => {
    env = await isolated();
    api = await startApi(env.rt, { host: '127.0.0.1' });
  });
  afterAll(() => env?.cleanup());

  it('answers the request in flight, then refuses new connections', async () => {
    const call = client(api.url);
    // The suite's fetch holds every answer to the OpenAPI document, which it reads (once) from this server: read it now.
    expect((await call('GET', '/health')).status).toBe(200);
    const inFlight = call('POST', '/v1/auth/register', { body: { email: 'drain@example.org', password: 'correct horse battery staple' } });
    // Let the request reach the server (its connection accepted, the body read), then stop.
    const connections = () => new Promise<number>((resolve) => api.app.server.getConnections((_err, n) => resolve(n)));
    while ((await connections()) === 0) await new Promise((resolve) => setTimeout(resolve, 2));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const closing = api.close();
    const answer = await inFlight;
    expect(answer.status).toBe(201);
    // Within moments, not fastify's 72 s keep-alive timeout on the connection that just answered.
    const started = Date.now();
    await closing;
    expect(Date.now() - started).toBeLessThan(5_000);
    await expect(fetch(`${api.url}/health`)).rejects.toThrow();
    // What it answered is in the log: the address is taken.
    const stream = await env.rt.nats.jsm.streams.info(env.rt.names.stream('identity'));
    expect(stream.state.messages).toBeGreaterThanOrEqual(2);
  });
});
