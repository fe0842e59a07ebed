/**
 * Moving bytes for one user: `pump` copies a readable into a writable,
 * counting every chunk and paying for it from the user's bucket for that
 * direction (shared by all their connections), pausing the source while the
 * bucket is in debt and while the destination's buffer is full.
 */
import type { Readable, Writable } from 'node:stream';
import type net from 'node:net';
import type { TokenBucket } from './token-bucket.js';

export function pump(src: Readable, dst: Writable, bucket: () => TokenBucket | null, count: (bytes: number) => void): void {
  let waiting = false;
  src.on('data', (chunk: Buffer) => {
    count(chunk.length);
    const full = !dst.write(chunk);
    const wait = bucket()?.take(chunk.length) ?? 0;
    if (!full && wait === 0) return;
    src.pause();
    let pending = (full ? 1 : 0) + (wait > 0 ? 1 : 0);
    const resume = () => {
      if (--pending === 0 && !waiting) src.resume();
    };
    if (full) dst.once('drain', resume);
    if (wait > 0) {
      waiting = true;
      setTimeout(() => {
        waiting = false;
        resume();
      }, wait).unref();
    }
  });
  src.once('end', () => dst.end());
}

/** Both directions of a tunnel; either side closing or failing closes both. */
export function tunnel(client: net.Socket, upstream: net.Socket, o: { uplink: () => TokenBucket | null; downlink: () => TokenBucket | null; up: (n: number) => void; down: (n: number) => void; closed: () => void }): void {
  let done = false;
  const close = () => {
    if (done) return;
    done = true;
    client.destroy();
    upstream.destroy();
    o.closed();
  };
  for (const s of [client, upstream]) s.on('error', close).on('close', close);
  pump(client, upstream, o.uplink, o.up);
  pump(upstream, client, o.downlink, o.down);
}
