/**
 * The auditable log end to end, on real NATS and Postgres: the worker folds
 * <NS>_AUDIT into a Merkle tree and signs checkpoints (file, stream,
 * Postgres); `verify` recomputes it; proofs verify offline; and tampering with
 * a copy of the stream (one message altered, one removed, two swapped), a
 * checkpoint signed by another key, and a proof for an event not in the tree
 * are all caught.
 */
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MsgHdrs } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DomainEvent } from '../../contracts/envelope.js';
import { commitIdOf, uuidv7 } from '../../contracts/ids.js';
import { EventStore } from '../../producers/event-store/event-store.js';
import { runAudit } from '../../replay/audit/cli.js';
import { deliveredLeafHash, messageLeafHash, storedMessageOf } from '../../replay/audit/leaf.js';
import { rawHeaderBlock } from '../../infra/nats/raw-headers.js';
import { rootOf } from '../../replay/audit/merkle.js';
import { generateKeyPair, openCheckpoint, parseSignerKey, parseVerifierKey, signCheckpoint } from '../../replay/audit/note.js';
import type { InclusionProofFile } from '../../replay/audit/proof.js';
import { readStream } from '../../replay/range.js';
import { startAuditWorker, type AuditWorker } from '../../workers/audit/audit-worker.js';
import { freePort } from '../../infra/stack/ports.js';
import { runCli } from '../support/cli.js';
import { eventually, isolated, type Isolated } from '../support/isolated.js';

const meta = { source: 'relaygrid/test', actor: 'system:test' };

const registered = (userId: string): DomainEvent<'identity.UserRegistered'> => ({
  type: 'identity.UserRegistered',
  data: { userId, emailHash: `${userId}@example.org`, emailSealed: null, displayNameSealed: null, passwordHashSealed: null, roles: ['client'], registeredAt: new Date() },
});

interface CopiedMessage {
  subject: string;
  headers: MsgHdrs | undefined;
  data: Uint8Array;
}

describe('auditable log', () => {
  let env: Isolated;
  let store: EventStore;
  let dir: string;
  let checkpointDir: string;
  let keys: { signer: string; verifier: string };
  let verifierFile: string;
  /** Message ids in append order; commits are recorded with their inner event ids. */
  const appended: { id: string; inner: string[] }[] = [];

  beforeAll(async () => {
    env = await isolated();
    store = new EventStore(env.rt.nats, env.rt.names, env.rt.registry);
    dir = await mkdtemp(join(tmpdir(), 'rg-audit-'));
    checkpointDir = join(dir, 'checkpoints');
    keys = generateKeyPair(`relaygrid.test/${env.namespace}`);
    verifierFile = join(dir, 'audit.pub');
    await writeFile(verifierFile, `${keys.verifier}\n`);
  });
  afterAll(async () => {
    await env?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /**
   * Appends `count` messages, every third a commit of two events. Each goes to a
   * new aggregate (expectation 0), so a copy of the log can be re-published in
   * any order: JetStream checks the stored Nats-Expected-Last-Subject-Sequence
   * header again on the copy.
   */
  async function append(count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const id = uuidv7();
      const events = appended.length % 3 === 2 ? [registered(id), registered(id)] : [registered(id)];
      const { ids } = await store.append(env.rt.names.aggregate('identity', 'user', id), events, { expectedSeq: 0, meta });
      appended.push(ids.length > 1 ? { id: commitIdOf(ids), inner: ids } : { id: ids[0]!, inner: [] });
    }
    // Sourcing into the audit stream is asynchronous.
    await eventually(async () => (await env.rt.nats.jsm.streams.info(env.rt.names.auditStream)).state.messages === appended.length);
  }

  async function auditMessages(stream = env.rt.names.auditStream): Promise<CopiedMessage[]> {
    const out: CopiedMessage[] = [];
    await readStream(env.rt, stream, (msg) => {
      out.push({ subject: msg.subject, headers: msg.headers, data: msg.data });
    });
    return out;
  }

  function worker(): Promise<AuditWorker> {
    return startAuditWorker(env.rt, { signer: parseSignerKey(keys.signer), checkpointDir, checkpointEvery: 10, checkpointSeconds: 1, standbyPollMs: 100 });
  }

  const cli = (args: string[], extraEnv: Record<string, string | undefined> = {}) => runCli(env.config, ['replay', 'audit', ...args], extraEnv);

  /** Runs the command in process, keeping its stdout for the assertions. */
  async function audit(args: string[]): Promise<string> {
    const writes: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk));
      return true;
    });
    try {
      await runAudit(env.config, args);
    } finally {
      spy.mockRestore();
    }
    return writes.join('');
  }

  it('the worker signs checkpoints every 10 leaves and after a quiet second, resumes after a restart, and they verify', async () => {
    await append(25);
    const w = await worker();
    await eventually(() => w.status().checkpointSize === 25, 15_000);
    await w.close();
    expect((await readdir(checkpointDir)).sort()).toEqual(['10.checkpoint', '20.checkpoint', '25.checkpoint']);

    // New instances continue from the stored frontier; of two, one works and one stands by.
    await append(7);
    const pair = await Promise.all([worker(), worker()]);
    await eventually(() => pair.some((x) => x.status().checkpointSize === 32), 15_000);
    expect(pair.map((x) => x.status().state).sort()).toEqual(['running', 'standby']);
    await Promise.all(pair.map((x) => x.close()));

    // The root is the RFC 6962 tree of the stored messages, computed here independently.
    const leaves = (await auditMessages()).map((m) => messageLeafHash(storedMessageOf(m)));
    const note = await readFile(join(checkpointDir, '32.checkpoint'), 'utf8');
    const checkpoint = openCheckpoint(note, parseVerifierKey(keys.verifier), `relaygrid.test/${env.namespace}`);
    expect(checkpoint.size).toBe(32);
    expect(checkpoint.root.equals(rootOf(leaves))).toBe(true);
    expect(note).toMatch(new RegExp(`^relaygrid\\.test/${env.namespace}\\n32\\n[A-Za-z0-9+/]{43}=\\n\\n— relaygrid\\.test/${env.namespace} [A-Za-z0-9+/]+=*\\n$`));

    // The same checkpoints went to the checkpoint stream.
    const published = (await auditMessages(env.rt.names.auditCheckpointStream)).map((m) => Buffer.from(m.data).toString('utf8'));
    expect(published).toHaveLength(4);
    expect(published.at(-1)).toBe(note);

    expect(await audit(['verify', '--key', verifierFile])).toMatch(/4 checkpoints verified \(latest: size 32, .*3 consistency proofs, 0 leaves after the latest checkpoint/);
    expect(await audit(['verify', '--key', keys.verifier, '--checkpoints', checkpointDir])).toMatch(/4 checkpoints verified/);
  });

  it('prove → verify-proof, for an event alone and for one inside a commit; offline, as a subprocess, with files only', async () => {
    const inner = appended.find((a) => a.inner.length > 0)!.inner[1]!;
    for (const id of [appended[4]!.id, inner]) {
      const proofPath = join(dir, `proof-${id}.json`);
      await audit(['prove', id, '--out', proofPath]);
      const proof = JSON.parse(await readFile(proofPath, 'utf8')) as InclusionProofFile;
      expect(proof).toMatchObject({ eventId: id, treeSize: 32 });
      expect(await audit(['verify-proof', proofPath, '--checkpoint', join(checkpointDir, '32.checkpoint'), '--key', verifierFile])).toMatch(
        new RegExp(`^proof verified: event ${id} is leaf ${proof.leafIndex} of relaygrid\\.test/${env.namespace} at tree size 32`),
      );
    }
    // No NATS, Postgres or Redis behind these URLs: verify-proof must not need them.
    const proofPath = join(dir, `proof-${inner}.json`);
    const offline = await cli(['verify-proof', proofPath, '--checkpoint', join(checkpointDir, '32.checkpoint'), '--key', verifierFile], {
      NATS_URL: 'nats://127.0.0.1:1',
      DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
      REDIS_URL: 'redis://127.0.0.1:1',
    });
    expect(offline.code, offline.stderr).toBe(0);
    expect(offline.stdout).toMatch(/^proof verified: event /);
  });

  it('a proof for an event not in the tree does not verify', async () => {
    await expect(audit(['prove', uuidv7()])).rejects.toThrow(/is not in the audit tree/);
    const checkpoint = join(checkpointDir, '32.checkpoint');
    const real = JSON.parse(await readFile(join(dir, `proof-${appended[4]!.id}.json`), 'utf8')) as InclusionProofFile;
    const forge = async (name: string, change: (p: InclusionProofFile) => void) => {
      const p = structuredClone(real);
      change(p);
      await writeFile(join(dir, name), JSON.stringify(p));
      return audit(['verify-proof', join(dir, name), '--checkpoint', checkpoint, '--key', verifierFile]);
    };
    // Another id on the real message.
    await expect(forge('other-id.json', (p) => (p.eventId = uuidv7()))).rejects.toThrow(/does not carry event/);
    // A message that was never appended, made self-consistent (its own leaf hash, its own id).
    const fake = uuidv7();
    await expect(
      forge('fake-message.json', (p) => {
        p.eventId = fake;
        p.message.headers = p.message.headers.map(([n, v]) => [n, n === 'ce-id' ? fake : v]);
        p.leafHash = messageLeafHash({ subject: p.message.subject, headers: p.message.headers, data: Buffer.from(p.message.data, 'base64') }).toString('base64');
      }),
    ).rejects.toThrow(new RegExp(`event ${fake} is not leaf 4 of the tree of size 32`));
    // The real leaf claimed at another position.
    await expect(forge('moved.json', (p) => (p.leafIndex = 5))).rejects.toThrow(/is not leaf 5/);
  });

  it('a checkpoint signed by another key is rejected', async () => {
    const impostor = generateKeyPair(`relaygrid.test/${env.namespace}`);
    const forgedDir = join(dir, 'forged');
    await mkdir(forgedDir, { recursive: true });
    await copyFile(join(checkpointDir, '10.checkpoint'), join(forgedDir, '10.checkpoint'));
    const forged = signCheckpoint({ origin: `relaygrid.test/${env.namespace}`, size: 20, root: Buffer.alloc(32, 1) }, parseSignerKey(impostor.signer));
    await writeFile(join(forgedDir, '20.checkpoint'), forged);
    await expect(audit(['verify', '--key', verifierFile, '--checkpoints', forgedDir])).rejects.toThrow(
      /^checkpoint file 20\.checkpoint: not signed by key relaygrid\.test\/t[0-9a-f]+\+[0-9a-f]{8} \(signed by relaygrid\.test\/t[0-9a-f]+\+[0-9a-f]{8}\)$/,
    );
    await expect(
      audit(['verify-proof', join(dir, `proof-${appended[4]!.id}.json`), '--checkpoint', join(forgedDir, '20.checkpoint'), '--key', verifierFile]),
    ).rejects.toThrow(/not signed by key/);
  });

  it('bad arguments end with one line and exit 2', async () => {
    const missingKey = await cli(['verify', '--key', join(dir, 'no-such.pub')]);
    expect(missingKey.code).toBe(2);
    expect(missingKey.stderr).toMatch(/^relaygrid: --key: cannot read key file .*no-such\.pub \(ENOENT\)\n$/);
    // Another installation's stream on the same server is none of this one's business.
    const foreign = `OTHER${env.namespace.toUpperCase()}_AUDIT`;
    await env.rt.nats.jsm.streams.add({ name: foreign, subjects: [`other${env.namespace}.x`] });
    try {
      const noStream = await cli(['verify', '--key', verifierFile, '--stream', 'NO_SUCH_STREAM']);
      expect(noStream.code).toBe(2);
      expect(noStream.stderr).toMatch(new RegExp(`^relaygrid: --stream: no stream "NO_SUCH_STREAM" \\(streams of namespace ${env.rt.names.upper}: [^\\n]*\\b${env.rt.names.auditStream}\\b[^\\n]*\\)\\n$`));
      expect(noStream.stderr).not.toContain(foreign);
    } finally {
      await env.rt.nats.jsm.streams.delete(foreign);
    }
  });

  it('worker and verifier hash real consumer messages from the raw header bytes, as nats.js decodes them, odd headers included', async () => {
    // The audit stream's own messages take the raw path (infra/nats/raw-headers.ts).
    let audited = 0;
    await readStream(env.rt, env.rt.names.auditStream, (msg) => {
      expect(rawHeaderBlock(msg)?.length).toBeGreaterThan(0);
      expect(deliveredLeafHash(msg).equals(messageLeafHash(storedMessageOf(msg)))).toBe(true);
      audited++;
    });
    expect(audited).toBe(32);

    // Header blocks nats.js would not write, stored as sent: raw bytes through a stand-in for MsgHdrs.encode().
    const stream = `${env.rt.names.upper}_ODD_HEADERS`;
    await env.rt.nats.jsm.streams.add({ name: stream, subjects: [`${env.rt.names.prefix}.odd.>`] });
    const blocks = [
      'NATS/1.0\r\nb: 1\r\na: 2\r\nb: 3\r\nB: 4\r\n\r\n',
      'NATS/1.0\r\nk: \t v \u000b\u000c\r\ne:\r\n:empty name\r\nno colon\r\nc: a:b:c\r\n\r\n',
      'NATS/1.0\r\nk: v\n\r\nl: \rv\r\r\nm: a\u0000b\r\n\r\n',
      'NATS/1.0\r\nk: grüße\r\nn: \u00a0v\u00a0\r\n\r\n', // UTF-8: nats.js decodes it
      'NATS/1.0\r\nk: v', // no final CRLF
    ];
    for (const [i, block] of blocks.entries()) {
      const raw = Buffer.from(block, 'utf8');
      env.rt.nats.nc.publish(`${env.rt.names.prefix}.odd.${i}`, Buffer.of(i), { headers: { encode: () => raw } as unknown as MsgHdrs });
    }
    await env.rt.nats.nc.flush();
    await eventually(async () => (await env.rt.nats.jsm.streams.info(stream)).state.messages === blocks.length);
    const raw: Buffer[] = [];
    await readStream(env.rt, stream, (msg) => {
      raw.push(Buffer.from(rawHeaderBlock(msg)!));
      expect(deliveredLeafHash(msg).equals(messageLeafHash(storedMessageOf(msg))), raw.at(-1)!.toString('latin1')).toBe(true);
    });
    // Stored and delivered byte for byte, so both paths were really given these blocks.
    expect(raw.map((b) => b.toString('utf8'))).toEqual(blocks);
    await env.rt.nats.jsm.streams.delete(stream);
  });

  describe('export, verified offline', () => {
    let exportFile: string;
    let lines: string[];
    /** No NATS, Postgres or Redis behind these: verify --file must not need them. */
    let offline: Record<string, string>;

    beforeAll(async () => {
      exportFile = join(dir, 'audit.export');
      const [nats, pg, redis] = [await freePort(), await freePort(), await freePort()];
      offline = { NATS_URL: `nats://127.0.0.1:${nats}`, DATABASE_URL: `postgres://nobody@127.0.0.1:${pg}/none`, REDIS_URL: `redis://127.0.0.1:${redis}` };
    });

    const verifyFile = (file: string, key = verifierFile) => cli(['verify', '--file', file, '--checkpoints', checkpointDir, '--key', key], offline);

    /** A copy of the export with `change` applied to its lines (line 0 the header, line i + 1 leaf i). */
    async function tampered(name: string, change: (lines: string[]) => void): Promise<string> {
      const copy = [...lines];
      change(copy);
      const path = join(dir, name);
      await writeFile(path, copy.join(''));
      return path;
    }
    const record = (line: string) => JSON.parse(line) as { leaf: number; seq: number; subject: string; headers: string; body: string; recorded?: string };
    const withRecord = (line: string, change: (r: ReturnType<typeof record>) => void) => {
      const r = record(line);
      change(r);
      return `${JSON.stringify(r)}\n`;
    };
    const flipByte = (b64: string, at: (bytes: Buffer) => number) => {
      const bytes = Buffer.from(b64, 'base64');
      const i = at(bytes);
      bytes[i] = bytes[i]! ^ 0x01;
      return bytes.toString('base64');
    };

    it('holds every stored header block and body byte for byte, with leaf index, seq and the worker\'s record', async () => {
      expect(await audit(['export', '--out', exportFile])).toMatch(
        new RegExp(`^audit export ${env.rt.names.auditStream}: 32 leaves in \\d+\\.\\d\\d s .*32 leaves \\(seq 1\\.\\.32\\), 32 with the worker's records, [\\d,]+ bytes written to ${exportFile}\\n$`),
      );
      lines = (await readFile(exportFile, 'utf8')).split(/(?<=\n)/);
      expect(lines).toHaveLength(34);
      expect(JSON.parse(lines[0]!)).toMatchObject({ format: 'relaygrid-audit-export', version: 1, stream: env.rt.names.auditStream, leaves: 32, recorded: 32 });
      expect(JSON.parse(lines[33]!)).toEqual({ end: true, records: 32, missing: 0 });
      let i = 0;
      await readStream(env.rt, env.rt.names.auditStream, (msg) => {
        const r = record(lines[i + 1]!);
        expect(r).toMatchObject({ leaf: i, seq: msg.seq, subject: msg.subject });
        expect(Buffer.from(r.headers, 'base64').equals(Buffer.from(rawHeaderBlock(msg)!))).toBe(true);
        expect(Buffer.from(r.body, 'base64').equals(Buffer.from(msg.data))).toBe(true);
        expect(r.recorded).toBe(deliveredLeafHash(msg).toString('base64'));
        i++;
      });
      expect(i).toBe(32);
    });

    it('verify --file passes as a subprocess with NATS, Postgres and Redis unreachable', async () => {
      const result = await verifyFile(exportFile);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/^audit verify export audit\.export: 32 leaves in .*4 checkpoints verified \(latest: size 32, root [A-Za-z0-9+/]{43}=\), 3 consistency proofs, 0 leaves after the latest checkpoint\n$/);
    });

    it('export --to 20: leaves 0..19; the checkpoints beyond them are counted, not checked', async () => {
      const prefix = join(dir, 'audit-20.export');
      await audit(['export', '--out', prefix, '--to', '20']);
      expect(JSON.parse((await readFile(prefix, 'utf8')).split('\n')[0]!)).toMatchObject({ leaves: 20, recorded: 20 });
      const result = await verifyFile(prefix);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/2 checkpoints verified \(latest: size 20, .*, 2 newer checkpoints beyond the export not checked\n$/);
    });

    it.each([
      ['a body byte altered', (l: string[]) => (l[8] = withRecord(l[8]!, (r) => (r.body = flipByte(r.body, (b) => b.length - 1)))), /checkpoint file 10\.checkpoint: first bad index 7 \(stream seq 8\), the first leaf that differs from the audit worker's records in the export/],
      ['a header byte altered', (l: string[]) => (l[14] = withRecord(l[14]!, (r) => (r.headers = flipByte(r.headers, (b) => b.indexOf('ce-id: ') + 8)))), /checkpoint file 20\.checkpoint: first bad index 13 \(stream seq 14\), the first leaf/],
      ['a record removed', (l: string[]) => l.splice(13, 1), /first bad index 12: audit-\S+ line 14 holds leaf 13 where leaf 12 belongs \(a record removed, inserted or moved\)/],
      ['two records swapped', (l: string[]) => ([l[16], l[17]] = [l[17]!, l[16]!]), /first bad index 15: audit-\S+ line 17 holds leaf 16 where leaf 15 belongs/],
      [
        'two messages swapped under their leaf numbers and records',
        (l: string[]) => {
          const [a, b] = [record(l[22]!), record(l[23]!)];
          l[22] = `${JSON.stringify({ ...a, subject: b.subject, headers: b.headers, body: b.body })}\n`;
          l[23] = `${JSON.stringify({ ...b, subject: a.subject, headers: a.headers, body: a.body })}\n`;
        },
        /checkpoint file 25\.checkpoint: first bad index 21 \(stream seq 22\), the first leaf that differs/,
      ],
      [
        'a record removed and the rest renumbered with their records: only a range',
        (l: string[]) => {
          l.splice(13, 1);
          for (let i = 13; i < l.length - 1; i++) l[i] = withRecord(l[i]!, (r) => (r.leaf = i - 1));
          l[0] = `${JSON.stringify({ ...JSON.parse(l[0]!), leaves: 31, recorded: 31 })}\n`;
          l[l.length - 1] = `${JSON.stringify({ end: true, records: 31, missing: 0 })}\n`;
        },
        /checkpoint file 20\.checkpoint: first bad index is between 10 and 19 \(no matching worker records/,
      ],
    ] as [string, (l: string[]) => void, RegExp][])('%s: exit 1 naming the first bad index, one line', async (name, change, finding) => {
      const result = await verifyFile(await tampered(`audit-${name.replaceAll(' ', '-')}.export`, change));
      expect(result.code, result.stderr).toBe(1);
      expect(result.stderr).toMatch(/^relaygrid: export audit-\S+: [^\n]+\n$/);
      expect(result.stderr).toMatch(finding);
    });

    it('another key: exit 3; a cut-off or foreign file: exit 4; --file without --checkpoints: exit 2', async () => {
      const other = join(dir, 'other.pub');
      await writeFile(other, `${generateKeyPair(`relaygrid.test/${env.namespace}`).verifier}\n`);
      const wrongKey = await verifyFile(exportFile, other);
      expect(wrongKey.code).toBe(3);
      expect(wrongKey.stderr).toMatch(/^relaygrid: checkpoint file \d+\.checkpoint: not signed by key relaygrid\.test\/t[0-9a-f]+\+[0-9a-f]{8} \(signed by .*\)\n$/);

      const cut = await verifyFile(await tampered('audit-cut.export', (l) => l.splice(20)));
      expect(cut.code).toBe(4);
      expect(cut.stderr).toMatch(/^relaygrid: audit-cut\.export ends at line 20 without its trailer: the export is incomplete/);
      const proof = join(dir, `proof-${appended[4]!.id}.json`);
      const foreign = await verifyFile(proof);
      expect(foreign.code).toBe(4);
      expect(foreign.stderr).toMatch(/line 1: not JSON|not an audit export/);

      const noCheckpoints = await cli(['verify', '--file', exportFile, '--key', verifierFile], offline);
      expect(noCheckpoints.code).toBe(2);
      expect(noCheckpoints.stderr).toMatch(/^relaygrid: --checkpoints: the directory of signed checkpoints is required with --file/);
    });
  });

  describe('tampering with a copy of the audit stream', () => {
    let original: CopiedMessage[];
    const copy = () => `${env.rt.names.auditStream}_COPY`;

    beforeAll(async () => {
      original = await auditMessages();
      expect(original).toHaveLength(32);
      // The copy must keep the messages' subjects, which the context streams own:
      // this sandbox is done appending, so they go (the audit stream keeps its copy).
      for (const context of env.rt.names.allContexts) await env.rt.nats.jsm.streams.delete(env.rt.names.stream(context));
    });

    /** A fresh copy stream holding `messages` with their subjects, headers and data unchanged. */
    async function copyOf(messages: CopiedMessage[]): Promise<void> {
      await env.rt.nats.jsm.streams.delete(copy()).catch(() => undefined);
      await env.rt.nats.jsm.streams.add({ name: copy(), subjects: [`${env.rt.names.prefix}.evt.>`] });
      for (const m of messages) await env.rt.nats.js.publish(m.subject, m.data, { headers: m.headers });
      const copied = (await auditMessages(copy())).map((m) => storedMessageOf(m));
      expect(copied.map((m) => messageLeafHash(m).toString('hex'))).toEqual(messages.map((m) => messageLeafHash(storedMessageOf(m)).toString('hex')));
    }

    it('an untouched copy verifies', async () => {
      await copyOf(original);
      expect(await audit(['verify', '--stream', copy(), '--key', verifierFile])).toMatch(/4 checkpoints verified/);
    });

    it('one message altered: first bad index 7', async () => {
      const altered = original.map((m, i) => (i === 7 ? { ...m, data: Buffer.concat([Buffer.from(m.data), Buffer.of(0)]) } : m));
      await copyOf(altered);
      await expect(audit(['verify', '--stream', copy(), '--key', verifierFile])).rejects.toThrow(
        /does not match checkpoint stream .* seq 1: first bad index 7 \(stream seq 8\)/,
      );
    });

    it('one message removed: first bad index 12', async () => {
      await copyOf(original.filter((_, i) => i !== 12));
      await expect(audit(['verify', '--stream', copy(), '--key', verifierFile])).rejects.toThrow(/checkpoint stream .* seq 2: first bad index 12 \(stream seq 13\)/);
    });

    it('the last message removed: first bad index 31, missing', async () => {
      await copyOf(original.slice(0, 31));
      await expect(audit(['verify', '--stream', copy(), '--key', verifierFile])).rejects.toThrow(/holds 31 leaves, but checkpoint .* covers 32: first bad index 31 \(missing from the stream\)/);
    });

    it('two messages swapped: first bad index 15, one line and exit 1 from the CLI, no stack trace', async () => {
      const swapped = [...original];
      [swapped[15], swapped[16]] = [swapped[16]!, swapped[15]!];
      await copyOf(swapped);
      const result = await cli(['verify', '--stream', copy(), '--key', verifierFile]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^relaygrid: [^\n]*first bad index 15 \(stream seq 16\)[^\n]*\n$/);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    });
  });
});

