/**
 * `relaygrid replay audit …`: the auditors' commands. `verify`, `export` and
 * `prove` read the log (a runtime); `verify --file`, `verify-proof` and
 * `keygen` touch no NATS, Postgres or Redis at all, so an auditor can run
 * them anywhere. Bad arguments and failed audits both end with one line and
 * a non-zero exit (errors.ts lists the codes).
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { Config } from '../../infra/config.js';
import { openRuntime, type Runtime } from '../../infra/runtime.js';
import { ReplayArgumentError } from '../range.js';
import { checkpointsFromDir, checkpointsFromStream, verifyCheckpoints } from './checkpoint-source.js';
import { resolveVerifier, verifierFrom } from './keys.js';
import { generateKeyPair, NoteError } from './note.js';
import { parseProofFile, verifyProofFile } from './proof.js';
import { proveEvent } from './prove.js';
import { verifyStream } from './verify.js';
import { exportAudit } from './export-audit.js';
import { verifyExportFile } from './verify-file.js';
import { parseBound } from '../range.js';

export const AUDIT_USAGE = `usage: relaygrid replay audit <command>

  verify [--stream S] [--checkpoints DIR] [--key KEY]
        recompute the Merkle tree from the stream's stored bytes (default <NS>_AUDIT) and check
        every checkpoint (from <NS>_AUDIT_CHECKPOINTS, or the *.checkpoint files in DIR):
        signature, root, consistency between consecutive ones; names the first bad leaf
  verify --file EXPORT --checkpoints DIR [--key KEY]
        the same check on an export file, offline (no NATS, no database)
  export --out FILE [--to SEQ]
        the audit stream byte for byte, leaf 0 up to its last sequence now (or SEQ), with the
        worker's leaf records, into FILE for verify --file
  prove <event id> [--out FILE]
        a JSON inclusion proof of the event against the newest checkpoint covering it
  verify-proof <proof file> --checkpoint FILE --key KEY
        check a proof offline against a signed checkpoint (no NATS, no database)
  keygen <name> --out FILE
        a new Ed25519 signing key in FILE (mode 600) and FILE.pub; prints the verifier key

KEY is a verifier key <name>+<hash>+<base64> or a file holding one; without --key, verify uses
RG_AUDIT_VERIFIER_KEY, or the public half of RG_AUDIT_SIGNING_KEY.

Exit codes: 0 verified, 1 the log does not match its signed checkpoints (or a proof does not
verify), 2 bad arguments, 3 a checkpoint is not signed by KEY, 4 not a complete export file.`;

function parse(args: string[], options: Record<string, { type: 'string' }>) {
  return parseArgs({ args, options, allowPositionals: true, strict: true });
}

function readText(flag: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ReplayArgumentError(`${flag}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

async function withRuntime<T>(config: Config, fn: (rt: Runtime) => Promise<T>): Promise<T> {
  const rt = await openRuntime(config, 'replay-audit');
  try {
    return await fn(rt);
  } finally {
    await rt.close();
  }
}

async function verify(config: Config, args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { stream: { type: 'string' }, checkpoints: { type: 'string' }, key: { type: 'string' }, file: { type: 'string' } });
  if (positionals.length > 0) throw new ReplayArgumentError(`verify: unexpected argument "${positionals[0]}"\n\n${AUDIT_USAGE}`);
  if (values.file !== undefined) {
    if (values.stream !== undefined) throw new ReplayArgumentError('--stream: not with --file (the export names its stream)');
    if (values.checkpoints === undefined) throw new ReplayArgumentError('--checkpoints: the directory of signed checkpoints is required with --file (offline, there is no checkpoint stream)');
  }
  // The key first: a missing or unreadable key should fail before any connection is made.
  const verifier = resolveVerifier(values.key);
  if (values.file !== undefined) {
    // Offline: files only, no runtime.
    await verifyExportFile(values.file, verifyCheckpoints(await checkpointsFromDir(values.checkpoints!), verifier));
    return;
  }
  await withRuntime(config, async (rt) => {
    const raw = values.checkpoints !== undefined ? await checkpointsFromDir(values.checkpoints) : await checkpointsFromStream(rt);
    const checkpoints = verifyCheckpoints(raw, verifier);
    await verifyStream(rt, values.stream ?? rt.names.auditStream, checkpoints);
  });
}

async function exportLog(config: Config, args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { out: { type: 'string' }, to: { type: 'string' } });
  if (positionals.length > 0) throw new ReplayArgumentError(`export: unexpected argument "${positionals[0]}"\n\n${AUDIT_USAGE}`);
  if (values.out === undefined) throw new ReplayArgumentError('--out: the file to write the export to is required');
  const to = parseBound('--to', values.to);
  if (to && !('seq' in to)) throw new ReplayArgumentError('--to: a stream sequence (an export always starts at leaf 0)');
  await withRuntime(config, (rt) => exportAudit(rt, values.out!, to?.seq));
}

async function prove(config: Config, args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { out: { type: 'string' } });
  const [eventId, extra] = positionals;
  if (!eventId || extra !== undefined) throw new ReplayArgumentError(`prove: exactly one <event id>\n\n${AUDIT_USAGE}`);
  const proof = await withRuntime(config, (rt) => proveEvent(rt, eventId));
  const json = `${JSON.stringify(proof, null, 2)}\n`;
  if (values.out !== undefined) {
    await writeFile(values.out, json);
    process.stdout.write(`proof of event ${eventId} (leaf ${proof.leafIndex}, tree size ${proof.treeSize}) written to ${values.out}\n`);
  } else {
    process.stdout.write(json);
  }
}

function verifyProof(args: string[]): void {
  const { values, positionals } = parse(args, { checkpoint: { type: 'string' }, key: { type: 'string' } });
  const [proofPath, extra] = positionals;
  if (!proofPath || extra !== undefined) throw new ReplayArgumentError(`verify-proof: exactly one <proof file>\n\n${AUDIT_USAGE}`);
  if (values.checkpoint === undefined) throw new ReplayArgumentError('--checkpoint: the signed checkpoint file to verify against is required');
  if (values.key === undefined) throw new ReplayArgumentError('--key: the verifier key (or a file holding it) is required');
  const verifier = verifierFrom('--key', values.key);
  const checkpointText = readText('--checkpoint', values.checkpoint);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readText('<proof file>', proofPath));
  } catch (err) {
    if (err instanceof ReplayArgumentError) throw err;
    throw new ReplayArgumentError(`<proof file>: ${proofPath} is not JSON (${(err as Error).message})`);
  }
  const verdict = verifyProofFile(parseProofFile(parsed), checkpointText, verifier, values.checkpoint);
  process.stdout.write(
    `proof verified: event ${verdict.eventId} is leaf ${verdict.leafIndex} of ${verdict.checkpoint.origin} at tree size ${verdict.checkpoint.size} (checkpoint signed by ${verifier.text.split('+').slice(0, 2).join('+')})\n`,
  );
}

async function keygen(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { out: { type: 'string' } });
  const [name, extra] = positionals;
  if (!name || extra !== undefined) throw new ReplayArgumentError(`keygen: exactly one <name> (the log's origin, e.g. relaygrid.example.org/audit)\n\n${AUDIT_USAGE}`);
  if (values.out === undefined) throw new ReplayArgumentError('--out: the file to write the signing key to is required (it is never printed)');
  let keys: { signer: string; verifier: string };
  try {
    keys = generateKeyPair(name);
  } catch (err) {
    if (err instanceof NoteError) throw new ReplayArgumentError(`<name>: ${err.message}`);
    throw err;
  }
  try {
    // 'wx': never overwrite a signing key; losing one orphans every checkpoint it signed.
    await writeFile(values.out, `${keys.signer}\n`, { mode: 0o600, flag: 'wx' });
    await writeFile(`${values.out}.pub`, `${keys.verifier}\n`, { mode: 0o644, flag: 'wx' });
  } catch (err) {
    throw new ReplayArgumentError(`--out: cannot create ${values.out} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  process.stdout.write(`${keys.verifier}\n`);
}

export async function runAudit(config: Config, args: string[]): Promise<void> {
  const [command, ...rest] = args;
  switch (command) {
    case 'verify':
      return verify(config, rest);
    case 'export':
      return exportLog(config, rest);
    case 'prove':
      return prove(config, rest);
    case 'verify-proof':
      return verifyProof(rest);
    case 'keygen':
      return keygen(rest);
    default:
      throw new ReplayArgumentError(command ? `unknown audit command "${command}"\n\n${AUDIT_USAGE}` : AUDIT_USAGE);
  }
}

