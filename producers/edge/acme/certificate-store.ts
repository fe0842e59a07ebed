/**
 * Edge certificates at rest: one object per site in the NATS object store
 * `<NS>_EDGE_CERTS` (per namespace, like every bucket: infra/naming.ts), the
 * certificate and its private key sealed together under a subkey of
 * RG_MASTER_KEY of their own ('edge-certificates'), bound to the object's
 * name so a sealed key cannot be moved to another site. The validity dates
 * are object metadata in clear: the renewal scheduler lists them without
 * opening anything.
 *
 * The ACME account key lives in the same bucket (`account/<hash of the
 * directory URL>`), sealed the same way.
 */
import { createHash } from 'node:crypto';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { Nats } from '../../../infra/nats/connection.js';
import { assertToken, type Names } from '../../../infra/naming.js';
import { deriveKey, open, seal } from '../../identity/crypto/sealing.js';

export interface StoredCertificate {
  siteId: string;
  /** What the certificate names, the site's domain first. */
  domains: string[];
  certificatePem: string;
  privateKeyPem: string;
  notBefore: Date;
  notAfter: Date;
}

/** What list() answers: no key material. */
export type CertificateListing = Omit<StoredCertificate, 'certificatePem' | 'privateKeyPem'>;

/** `<NS>_EDGE_CERTS`. */
export function edgeCertBucket(names: Names): string {
  return names.edgeCertBucket;
}

const SITE_PREFIX = 'site/';
const siteObject = (siteId: string) => `${SITE_PREFIX}${siteId}`;
const accountObject = (directoryUrl: string) => `account/${createHash('sha256').update(directoryUrl).digest('hex').slice(0, 32)}`;

interface SealedBody {
  certificatePem: string;
  privateKeyPem: string;
}

export class CertificateStore {
  private constructor(
    private readonly os: ObjectStore,
    readonly bucket: string,
    private readonly key: Buffer,
  ) {}

  /** Opens the bucket, creating it when missing. */
  static async open(nats: Pick<Nats, 'js'>, names: Names, masterKey: Buffer): Promise<CertificateStore> {
    const bucket = edgeCertBucket(names);
    const os = await new Objm(nats.js).create(bucket, { description: 'Edge: sealed site certificates and the ACME account key' });
    return new CertificateStore(os, bucket, deriveKey(masterKey, 'edge-certificates'));
  }

  private aad(name: string): string {
    return `${this.bucket}/${name}`;
  }

  async put(cert: StoredCertificate): Promise<void> {
    assertToken('site id', cert.siteId);
    const name = siteObject(cert.siteId);
    const body: SealedBody = { certificatePem: cert.certificatePem, privateKeyPem: cert.privateKeyPem };
    const metadata = { domains: cert.domains.join(','), notBefore: cert.notBefore.toISOString(), notAfter: cert.notAfter.toISOString() };
    await this.os.putBlob({ name, metadata }, seal(this.key, this.aad(name), JSON.stringify(body)));
  }

  /** The site's certificate with its key opened, or null. */
  async get(siteId: string): Promise<StoredCertificate | null> {
    assertToken('site id', siteId);
    const name = siteObject(siteId);
    // One read gives the metadata and the bytes of the same version, even while the leader replaces it.
    const result = await this.os.get(name);
    if (!result) return null;
    const [blob, error] = await Promise.all([readAll(result.data), result.error]);
    if (error) throw error;
    const body = JSON.parse(open(this.key, this.aad(name), blob).toString('utf8')) as SealedBody;
    return { ...listing(siteId, result.info.metadata), ...body };
  }

  /** Every stored site certificate's names and dates. */
  async list(): Promise<CertificateListing[]> {
    const infos = await this.os.list();
    return infos.filter((info) => !info.deleted && info.name.startsWith(SITE_PREFIX)).map((info) => listing(info.name.slice(SITE_PREFIX.length), info.metadata));
  }

  async delete(siteId: string): Promise<void> {
    assertToken('site id', siteId);
    const info = await this.os.info(siteObject(siteId));
    if (info && !info.deleted) await this.os.delete(siteObject(siteId));
  }

  /**
   * The account key for `directoryUrl`, made by `create` and stored the first
   * time. Only the edge leader calls this, so two first calls never race.
   */
  async accountKey(directoryUrl: string, create: () => Promise<string>): Promise<string> {
    const name = accountObject(directoryUrl);
    const blob = await this.os.getBlob(name);
    if (blob) return open(this.key, this.aad(name), blob).toString('utf8');
    const pem = await create();
    await this.os.putBlob({ name }, seal(this.key, this.aad(name), pem));
    return pem;
  }
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function listing(siteId: string, metadata: Record<string, string> | undefined): CertificateListing {
  const field = (key: string): string => {
    const value = metadata?.[key];
    if (value === undefined) throw new Error(`edge certificate of ${siteId} has no ${key} metadata`);
    return value;
  };
  return { siteId, domains: field('domains').split(',').filter(Boolean), notBefore: new Date(field('notBefore')), notAfter: new Date(field('notAfter')) };
}
