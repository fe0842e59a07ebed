/** `relaygrid skip-event <projector> --seq N --reason "…"`: an audited skip of a failed event. */
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { checkSkipRequest, skipFailedEvent, SkipRefusedError, type SkipRequest } from '../../projectors/runtime/skip.js';
import type { Runtime } from '../runtime.js';

/** Checks the arguments before anything connects. */
export function parseSkipArgs(args: string[]): SkipRequest {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { seq: { type: 'string' }, reason: { type: 'string' }, actor: { type: 'string' } },
  });
  const [projector] = positionals;
  if (!projector) throw new SkipRefusedError('<projector>: name the projector, e.g. `relaygrid skip-event users --seq 42 --reason "…"`');
  const seq = Number(values.seq);
  if (!values.seq || !Number.isSafeInteger(seq) || seq <= 0) throw new SkipRefusedError('--seq: the stream sequence of the failed event');
  return checkSkipRequest({ projector, seq, actor: values.actor ?? `operator:${userInfo().username}`, reason: values.reason ?? '' });
}

export async function runSkip(rt: Runtime, cmd: SkipRequest): Promise<void> {
  const { projector, seq, actor, reason } = cmd;
  await skipFailedEvent(rt.db, { projector, seq, actor, reason });
  rt.log.warn({ projector, seq, actor, reason }, 'event skipped by operator');
  console.log(`skipped sequence ${seq} of projector ${projector}; a running instance resumes within seconds`);
}
