/**
 * Broker subscriptions shared by every socket of this gateway: the first
 * socket that needs a subject subscribes, the last one to leave unsubscribes.
 * A thousand devices of one group on this gateway cost one NATS subscription.
 */
import type { Subscription } from '@nats-io/transport-node';
import type { Nats } from '../infra/nats/connection.js';

export class SharedSubscriptions {
  private readonly subs = new Map<string, { sub: Subscription; holders: number }>();

  constructor(
    private readonly nats: Nats,
    private readonly onMessage: (subject: string, data: Uint8Array) => void,
  ) {}

  acquire(subject: string): void {
    const held = this.subs.get(subject);
    if (held) {
      held.holders++;
      return;
    }
    const sub = this.nats.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (!err) this.onMessage(subject, msg.data);
      },
    });
    this.subs.set(subject, { sub, holders: 1 });
  }

  release(subject: string): void {
    const held = this.subs.get(subject);
    if (!held || --held.holders > 0) return;
    held.sub.unsubscribe();
    this.subs.delete(subject);
  }

  get size(): number {
    return this.subs.size;
  }

  close(): void {
    for (const { sub } of this.subs.values()) sub.unsubscribe();
    this.subs.clear();
  }
}
