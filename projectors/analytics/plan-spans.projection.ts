/**
 * Each user's subscriptions as spans of time (`analytics_plan_spans`), from
 * the plans stream: a SubscriptionStarted ends the running span (replaced)
 * and opens one; a SubscriptionExpired ends it (expired). The plan dimension
 * of usage trends, new and churned subscriptions, MRR and ARPU read them
 * (producers/analytics).
 */
import { sql } from 'kysely';
import type { StoredEvent } from '../../contracts/envelope.js';
import type { Projection } from '../runtime/projection.js';

interface Span {
  userId: string;
  startedAt: Date;
  planId: string;
  cause: string;
  endedAt: Date | null;
  endCause: string | null;
}

/** Spans opened in the batch, and the ends of spans that were running before it (to update in place). */
function fold(events: readonly StoredEvent[]): { opened: Span[]; ends: Map<string, { at: Date; cause: string }> } {
  const opened: Span[] = [];
  const running = new Map<string, Span>();
  const ends = new Map<string, { at: Date; cause: string }>();
  const end = (userId: string, at: Date, cause: string) => {
    const span = running.get(userId);
    if (span) {
      span.endedAt = at;
      span.endCause = cause;
      running.delete(userId);
    } else if (!ends.has(userId) && !opened.some((s) => s.userId === userId)) ends.set(userId, { at, cause }); // the first end of a span from before the batch
  };
  for (const e of events) {
    if (e.type === 'plans.SubscriptionStarted') {
      end(e.data.userId, e.data.startedAt, 'replaced');
      const span: Span = { userId: e.data.userId, startedAt: e.data.startedAt, planId: e.data.planId, cause: e.data.cause, endedAt: null, endCause: null };
      opened.push(span);
      running.set(span.userId, span);
    } else if (e.type === 'plans.SubscriptionExpired') end(e.data.userId, e.data.expiredAt, 'expired');
  }
  return { opened, ends };
}

export const planSpansProjection: Projection = {
  name: 'analytics-plans',
  context: 'plans',
  tables: ['analytics_plan_spans'],
  filter: (names) => names.aggregateSubjects('plans', 'subscription'),
  async apply(trx, events) {
    const { opened, ends } = fold(events);
    if (ends.size > 0) {
      const users = [...ends];
      await sql`
        update analytics_plan_spans s set ended_at = u.at, end_cause = u.cause
        from unnest(${users.map(([id]) => id)}::text[], ${users.map(([, e]) => e.at)}::timestamptz[], ${users.map(([, e]) => e.cause)}::text[]) as u(user_id, at, cause)
        where s.user_id = u.user_id and s.ended_at is null
      `.execute(trx);
    }
    if (opened.length === 0) return;
    await sql`
      insert into analytics_plan_spans (user_id, started_at, plan_id, cause, ended_at, end_cause)
      select * from unnest(${opened.map((s) => s.userId)}::text[], ${opened.map((s) => s.startedAt)}::timestamptz[], ${opened.map((s) => s.planId)}::text[],
                           ${opened.map((s) => s.cause)}::text[], ${opened.map((s) => s.endedAt)}::timestamptz[], ${opened.map((s) => s.endCause)}::text[])
      on conflict (user_id, started_at) do nothing
    `.execute(trx);
  },
};
