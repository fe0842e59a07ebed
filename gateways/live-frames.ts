/**
 * What gateways say to each other over core NATS: newline-separated fields,
 * the stored JSON last, so a gateway builds the client's frame by string
 * concatenation instead of parsing and re-serialising every message.
 *
 * On a user's subject (`<ns>.live.user.<id>`):
 *   m \n <device> \n <offset> \n <stored json>     a stored message for one device
 *   f \n <device | *> \n <frame>                   an ephemeral frame (receipt, typing, signal)
 *   k \n <device> \n <connection id>               that device connected elsewhere: close others
 * On a group's subject (`<ns>.live.group.<id>`):
 *   m \n <sender device> \n <offset> \n <stored json>
 *   f \n <sender device> \n <frame>
 */
import type { HeldEntry } from './inbox.js';

export type UserLive =
  | { kind: 'message'; device: string; entry: HeldEntry }
  | { kind: 'frame'; device: string; frame: string }
  | { kind: 'kick'; device: string; connId: string };

export type GroupLive = { kind: 'message'; senderDevice: string; entry: HeldEntry } | { kind: 'frame'; senderDevice: string; frame: string };

/** Splits off the first `n` fields; the rest (which may contain newlines) is the last. */
function fields(text: string, n: number): string[] | undefined {
  const out: string[] = [];
  let from = 0;
  for (let i = 0; i < n; i++) {
    const nl = text.indexOf('\n', from);
    if (nl < 0) return undefined;
    out.push(text.slice(from, nl));
    from = nl + 1;
  }
  out.push(text.slice(from));
  return out;
}

export const live = {
  message: (device: string, entry: HeldEntry) => `m\n${device}\n${entry.offset}\n${entry.json}`,
  frame: (device: string, frame: string) => `f\n${device}\n${frame}`,
  kick: (device: string, connId: string) => `k\n${device}\n${connId}`,
  groupMessage: (senderDevice: string, entry: HeldEntry) => `m\n${senderDevice}\n${entry.offset}\n${entry.json}`,
  groupFrame: (senderDevice: string, frame: string) => `f\n${senderDevice}\n${frame}`,

  parseUser(text: string): UserLive | undefined {
    const kind = text[0];
    if (kind === 'm') {
      const [, device, offset, json] = fields(text, 3) ?? [];
      return device && offset && json ? { kind: 'message', device, entry: { offset: Number(offset), json } } : undefined;
    }
    const [, device, rest] = fields(text, 2) ?? [];
    if (!device || rest === undefined) return undefined;
    if (kind === 'f') return { kind: 'frame', device, frame: rest };
    if (kind === 'k') return { kind: 'kick', device, connId: rest };
    return undefined;
  },

  parseGroup(text: string): GroupLive | undefined {
    if (text[0] === 'm') {
      const [, senderDevice, offset, json] = fields(text, 3) ?? [];
      return senderDevice && offset && json ? { kind: 'message', senderDevice, entry: { offset: Number(offset), json } } : undefined;
    }
    const [, senderDevice, frame] = fields(text, 2) ?? [];
    return text[0] === 'f' && senderDevice && frame ? { kind: 'frame', senderDevice, frame } : undefined;
  },
};
