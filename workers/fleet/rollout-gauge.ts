/**
 * `relaygrid_fleet_rollouts{status}`: how many rollouts are running, paused
 * and halted, counted from the fleet read model every few seconds. A halted
 * rollout stays halted until an operator resumes, aborts or rolls it back, so
 * an alert on it fires until someone has decided, not for a moment after the
 * halt (every fleet worker reports the same count: alert on `max`).
 */
import type { Kysely } from 'kysely';
import type { Logger } from '../../infra/logger.js';
import type { Metrics } from '../../infra/metrics.js';
import type { RolloutStatus } from '../../producers/fleet/rollout.decider.js';
import type { Database } from '../../schema/database.js';

/** The statuses a rollout leaves only by an operator's or an agent's action; each has a series, 0 included. */
export const UNFINISHED_ROLLOUTS: readonly RolloutStatus[] = ['running', 'paused', 'halted'];

export class RolloutGauge {
  private timer?: NodeJS.Timeout;
  private counting?: Promise<void>;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly metrics: Pick<Metrics, 'fleetRollouts'>,
    private readonly log: Logger,
  ) {}

  /** Counts once now, then every `intervalMs`. */
  async start(intervalMs = 5_000): Promise<void> {
    await this.count();
    this.timer = setInterval(() => {
      this.counting ??= this.count().finally(() => (this.counting = undefined));
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.counting;
  }

  async count(): Promise<void> {
    try {
      const rows = await this.db
        .selectFrom('fleet_rollouts')
        .select(['status', (eb) => eb.fn.countAll<string>().as('n')])
        .where('status', 'in', UNFINISHED_ROLLOUTS)
        .groupBy('status')
        .execute();
      for (const status of UNFINISHED_ROLLOUTS) this.metrics.fleetRollouts.set({ status }, Number(rows.find((r) => r.status === status)?.n ?? 0));
    } catch (err) {
      // The last count stays: a Postgres outage has alerts of its own.
      this.log.warn({ err }, 'counting rollouts failed');
    }
  }
}
