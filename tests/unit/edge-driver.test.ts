/**
 * The agent's edge driver without NATS or nginx: it applies only when the
 * fleet's fingerprint moves (producers/edge/edge-desired.ts), reports every
 * outcome, and sends a report the fleet did not take again before asking
 * anything else.
 */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../infra/logger.js';
import type { AgentOp } from '../../infra/naming.js';
import { edgeDesired } from '../../producers/edge/edge-desired.js';
import type { EdgeDesired, SiteOutcome } from '../../producers/edge/model.js';
import { EdgeDriver, type FleetRequest } from '../../workers/agent/edge/edge-driver.js';
import { siteSpec } from '../support/edge-sites.js';

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

function harness(failReports = 0) {
  let desired = edgeDesired([siteSpec('a', { version: 3 })]);
  const applied: EdgeDesired[] = [];
  const calls: { op: AgentOp; body: unknown }[] = [];
  let failures = failReports;
  const request = ((op: AgentOp, body: unknown) => {
    calls.push({ op, body });
    if (op === 'edge-report' && failures-- > 0) return Promise.reject(new Error('the fleet is away'));
    return Promise.resolve(op === 'edge-desired' ? desired : {});
  }) as FleetRequest;
  const driver = new EdgeDriver({
    log: createLogger('silent'),
    syncIntervalMs: 60_000,
    edge: {
      start: () => Promise.resolve(),
      stop: () => Promise.resolve(),
      apply: (d) => {
        applied.push(d);
        return Promise.resolve(d.sites.map((s): SiteOutcome => ({ siteId: s.siteId, version: s.version, status: 'applied' })));
      },
    },
  });
  return { driver, request, applied, calls, set: (next: EdgeDesired) => (desired = next) };
}

/** Started (its first sync), then pushed once. */
async function startedAndPushed(h: ReturnType<typeof harness>) {
  await h.driver.resume();
  h.driver.start(h.request);
  await settle();
  h.driver.requestSync();
  await settle();
  return h;
}

describe('edge desired state', () => {
  it('its version is a fingerprint of the sites and their versions, whatever their order', () => {
    const a = siteSpec('a', { version: 5 });
    const b = siteSpec('b', { version: 9 });
    expect(edgeDesired([a, b]).version).toBe(edgeDesired([b, a]).version);
    expect(Number.isSafeInteger(edgeDesired([a, b]).version)).toBe(true);
    // A site that is not the newest leaving the node moves it (a maximum of versions would not).
    expect(edgeDesired([b]).version).not.toBe(edgeDesired([a, b]).version);
    expect(edgeDesired([a, siteSpec('b', { version: 10 })]).version).not.toBe(edgeDesired([a, b]).version);
  });
});

describe('the edge driver', () => {
  it('applies once per fingerprint and reports each site’s outcome', async () => {
    const h = await startedAndPushed(harness());
    expect(h.applied).toHaveLength(1);
    expect(h.calls.filter((c) => c.op === 'edge-report').map((c) => c.body)).toEqual([{ version: h.applied[0]!.version, outcomes: [{ siteId: 'a', version: 3, status: 'applied' }] }]);

    h.set(edgeDesired([siteSpec('a', { version: 4 })]));
    h.driver.requestSync();
    await settle();
    expect(h.applied.map((d) => d.sites[0]!.version)).toEqual([3, 4]);
    await h.driver.stop();
  });

  it('sends a report the fleet did not take again at the next sync, without applying again', async () => {
    const h = await startedAndPushed(harness(1));
    expect(h.applied).toHaveLength(1);
    expect(h.calls.map((c) => c.op)).toEqual(['edge-desired', 'edge-report', 'edge-report', 'edge-desired']);
    await h.driver.stop();
  });
});
