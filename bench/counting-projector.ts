/** A real Projector for a bench, its projection's apply wrapped only to count transactions; and a wait until it has applied a sequence. */
import { projectorDeps } from '../infra/roles/projectors.js';
import type { Runtime } from '../infra/runtime.js';
import type { Projection } from '../projectors/runtime/projection.js';
import { Projector } from '../projectors/runtime/projector.js';
import { until } from './support.js';

export function countingProjector(rt: Runtime, projection: Projection): { projector: Projector; transactions: () => number } {
  let transactions = 0;
  const projector = new Projector({
    ...projectorDeps(rt),
    projection: {
      ...projection,
      apply: async (trx, events, ctx) => {
        await projection.apply(trx, events, ctx);
        transactions++;
      },
    },
  });
  return { projector, transactions: () => transactions };
}

/** Resolves once `projector` has applied `seq`; throws if it stopped on a failure instead. */
export async function untilProjected(projector: Projector, seq: number): Promise<void> {
  let failure: string | undefined;
  await until(
    `the ${projector.status().name} projector to catch up`,
    () => {
      const status = projector.status();
      failure = status.failure?.error;
      return status.checkpoint >= seq || failure !== undefined;
    },
    10 * 60_000,
    2,
  );
  if (failure) throw new Error(`the ${projector.status().name} projector stopped: ${failure}`);
}
