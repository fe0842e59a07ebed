/**
 * `/v1/fleet/rollouts`: plan a rollout of the current profiles to every node
 * whose template changes, watch it, and pause, resume, abort or roll it back.
 * The state machine is rollout.decider.ts's: a move it does not allow is 409
 * `invalid_rollout_state`, and repeating the move just made records nothing.
 */
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../app.js';
import { actorOf } from '../authenticate.js';
import { answerWritten, MIN_SEQUENCE_HEADER, waitForProjection } from '../read-your-writes.js';
import { OPERATOR } from './fleet-nodes.js';
import { body, idParams, UUID } from './schemas.js';
import { answers, INTEGER, listOf, nullable, READS, SEQUENCE, shape, STRING, STRINGS, TIME, WAITS } from '../contract.js';

const ROLLOUT_COUNTS = { rolloutId: UUID, status: STRING, reason: STRING, statusReason: nullable(STRING), plannedBy: STRING, plannedAt: TIME, wave: INTEGER, applied: INTEGER, rejected: INTEGER };
/** The list shows counts only (producers/fleet/views.ts). */
const ROLLOUT_SUMMARY = shape({ ...ROLLOUT_COUNTS, waves: INTEGER, nodes: INTEGER });
const ROLLOUT = shape({
  ...ROLLOUT_COUNTS,
  waves: listOf(STRINGS),
  targets: listOf(shape({ nodeId: STRING, template: STRING, previousTemplate: nullable(STRING) })),
  maxRejections: INTEGER,
  reports: listOf(shape({ nodeId: STRING, outcome: STRING, error: nullable(STRING), reportedAt: TIME })),
  sequence: SEQUENCE,
});

export function fleetRolloutRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { rollouts, views } = deps.fleet;
  const tags = ['fleet'];
  const config = { access: OPERATOR };

  app.post<{ Body: { reason?: string; waveShare?: number; maxRejections?: number } }>(
    '/v1/fleet/rollouts',
    {
      config,
      // Every field is optional, so "roll out now" may come without a body; validate it as {}.
      preValidation: (request, _reply, done) => {
        request.body ??= {};
        done();
      },
      schema: {
        tags,
        summary: 'Plan a rollout: a canary, then waveShare of the other nodes, then the rest (409 while another is in progress)', response: answers({ 201: shape({ rolloutId: UUID, targets: INTEGER, sequence: SEQUENCE }) }, [...WAITS, 409, 422]),
        body: body(
          {
            reason: { type: 'string', minLength: 1, maxLength: 500 },
            waveShare: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
            maxRejections: { type: 'integer', minimum: 0, maximum: 100_000 },
          },
          [],
        ),
      },
    },
    async (request, reply) => {
      const { seq, rolloutId, targets } = await rollouts.plan(request.body, actorOf(request));
      return answerWritten(deps, reply, 'fleet', seq, 201, { rolloutId, targets });
    },
  );

  app.get<{ Querystring: { limit?: number } }>(
    '/v1/fleet/rollouts',
    {
      config,
      schema: {
        tags,
        summary: 'The latest rollouts, newest first', response: answers({ 200: shape({ rollouts: listOf(ROLLOUT_SUMMARY) }) }, READS),
        querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 } } },
      },
    },
    async (request) => {
      await waitForProjection(deps, 'fleet', request.headers[MIN_SEQUENCE_HEADER]);
      return { rollouts: await views.rollouts(request.query.limit ?? 50) };
    },
  );

  app.get<{ Params: { id: string } }>('/v1/fleet/rollouts/:id', { config, schema: { tags, summary: 'One rollout: waves, targets and every node report', response: answers({ 200: ROLLOUT }, [...READS, 404]), params: idParams } }, async (request) => {
    await waitForProjection(deps, 'fleet', request.headers[MIN_SEQUENCE_HEADER]);
    return views.rollout(request.params.id);
  });

  for (const [path, type, summary] of [
    ['pause', 'Pause', 'Pause a running rollout: no further wave starts'],
    ['resume', 'Resume', 'Resume a paused rollout'],
    ['abort', 'Abort', 'Abort: no further wave starts; nodes keep what they were told'],
    ['rollback', 'RollBack', 'Roll back: every node told so far goes back to its previous template'],
  ] as const) {
    app.post<{ Params: { id: string } }>(`/v1/fleet/rollouts/:id/${path}`, { config, schema: { tags, summary, response: answers({ 200: ROLLOUT }, [...WAITS, 404, 409, 422]), params: idParams } }, async (request, reply) => {
      const { seq } = await rollouts.operate(type, request.params.id, actorOf(request));
      return answerWritten(deps, reply, 'fleet', seq, 200, async () => ({ ...(await views.rollout(request.params.id)) }));
    });
  }
}
