/**
 * Gapless document numbers (invoices, credit notes) per year and currency.
 * A series is one aggregate (document-series.decider.ts); every process
 * batches the requests for one series that arrive while its previous append
 * is in flight into the next append, so fifty concurrent checkouts cost a
 * couple of appends rather than fifty conflicting ones. Across processes the
 * appends race on the series' sequence and the loser decides again.
 *
 * The year is the finalization instant's in the seller's zone
 * (RG_BILLING_TIME_ZONE): an invoice finalized at 00:30 on 1 January in
 * Berlin is in the new year's series there, whatever UTC says.
 */
import { Temporal } from '@js-temporal/polyfill';
import type { Actor } from '../identity/identity-deps.js';
import type { BillingDeps } from './billing-deps.js';
import { numberOf, seriesDecider } from './document-series.decider.js';
import type { DocumentNumber } from './invoice.decider.js';

const SYSTEM: Actor = { actor: 'system:billing' };
/** A series append loses only to another process's append; it wins after a few rounds, whatever the load. */
const MAX_ATTEMPTS = 200;

export type DocumentKind = 'invoice' | 'credit-note';

const PREFIX: Record<DocumentKind, string> = { invoice: '', 'credit-note': 'CN-' };

interface Waiting {
  documentId: string;
  resolve(n: number): void;
  reject(err: unknown): void;
}

export class DocumentNumbers {
  private readonly queues = new Map<string, { waiting: Waiting[]; running: boolean }>();

  constructor(
    private readonly d: BillingDeps,
    private readonly timeZone: string,
  ) {}

  /** The series a document finalized at `at` belongs to. */
  seriesOf(kind: DocumentKind, currency: string, at: Date): { series: string; year: number } {
    const year = Temporal.Instant.fromEpochMilliseconds(at.getTime()).toZonedDateTimeISO(this.timeZone).year;
    return { series: `${kind}-${year}-${currency}`, year };
  }

  /** The document's number in its series: the one it was given before, or the next free one. */
  async number(kind: DocumentKind, documentId: string, currency: string, at: Date): Promise<DocumentNumber> {
    const { series, year } = this.seriesOf(kind, currency, at);
    const sequence = await new Promise<number>((resolve, reject) => {
      const queue = this.queues.get(series) ?? { waiting: [], running: false };
      this.queues.set(series, queue);
      queue.waiting.push({ documentId, resolve, reject });
      if (!queue.running) void this.drain(series, queue);
    });
    return { series, sequence, number: `${PREFIX[kind]}${year}-${currency}-${String(sequence).padStart(6, '0')}` };
  }

  private async drain(series: string, queue: { waiting: Waiting[]; running: boolean }): Promise<void> {
    queue.running = true;
    while (queue.waiting.length > 0) {
      const batch = queue.waiting.splice(0);
      try {
        const { state } = await this.d.decide(seriesDecider, 'document-series', series, { type: 'Assign', series, documentIds: batch.map((w) => w.documentId), at: new Date() }, SYSTEM, { maxAttempts: MAX_ATTEMPTS });
        for (const w of batch) {
          const n = numberOf(state, w.documentId);
          if (n === undefined) w.reject(new Error(`series ${series} gave no number to ${w.documentId}`));
          else w.resolve(n);
        }
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    queue.running = false;
    this.queues.delete(series);
  }
}
