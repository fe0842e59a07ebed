/**
 * ACME (RFC 8555) issuance with HTTP-01 only, through acme-client.
 *
 * One order per domain set for the whole fleet: the caller must be the single
 * leader of the edge context (one process in the cluster holds the lease and
 * calls `issue`). Every node serves the same token from its challenge
 * directory, so one validation covers all of them, and the resulting
 * certificate is installed everywhere — N nodes ordering for themselves would
 * multiply CA rate-limit use by N and race each other's tokens.
 *
 * The account key is created once (`newAccountKeyPem`) and kept sealed by the
 * certificate store (`CertificateStore.accountKey`); registering it again is
 * harmless: the CA answers the existing account for a known key (§7.3.1).
 */
import { Agent } from 'node:https';
import acme from 'acme-client';
import type { Authorization, Client, Order } from 'acme-client';
import type { ChallengePublisher } from './challenge-publisher.js';

export interface IssuedCertificate {
  /** Leaf first, then the chain the CA sent: what nginx's ssl_certificate wants. */
  certificatePem: string;
  /** PKCS#8 PEM of the certificate's fresh ECDSA P-256 key. */
  privateKeyPem: string;
  notBefore: Date;
  notAfter: Date;
}

export interface AcmeIssuerOptions {
  directoryUrl: string;
  /** PEM; see newAccountKeyPem. */
  accountKeyPem: string;
  /** Where tokens go, unless `issue` is given a publisher of its own (the fleet's is per site). */
  publisher?: ChallengePublisher;
  /** Account contact (`mailto:`), for the CA's expiry and incident mail. */
  contactEmail?: string;
  /** Polling of authorizations and orders: first wait, and longest (acme-client defaults 5 s and 30 s). */
  pollMinMs?: number;
  pollMaxMs?: number;
}

/** A fresh ACME account key (ECDSA P-256, PEM). */
export async function newAccountKeyPem(): Promise<string> {
  return (await acme.crypto.createPrivateEcdsaKey('P-256')).toString('utf8');
}

/**
 * Trusts `caPem` for the ACME directory's own HTTPS (a test CA such as
 * pebble's listener). acme-client has one HTTP client per process, so this
 * holds for every issuer in the process; production directories need none.
 */
export function trustAcmeDirectoryCa(caPem: string): void {
  acme.axios.defaults.httpsAgent = new Agent({ ca: caPem });
}

export class AcmeIssuer {
  private readonly client: Client;
  private registered?: Promise<unknown>;

  constructor(private readonly opts: AcmeIssuerOptions) {
    this.client = new acme.Client({
      directoryUrl: opts.directoryUrl,
      accountKey: opts.accountKeyPem,
      backoffMin: opts.pollMinMs,
      backoffMax: opts.pollMaxMs,
    });
  }

  /** Orders one certificate naming every domain (the first is the subject's CN), validating each over HTTP-01. */
  async issue(domains: string[], publisher: ChallengePublisher | undefined = this.opts.publisher): Promise<IssuedCertificate> {
    if (!publisher) throw new Error('AcmeIssuer.issue: no challenge publisher');
    const names = [...new Set(domains.map((d) => d.toLowerCase()))];
    if (names.length === 0) throw new Error('AcmeIssuer.issue: no domains');
    await this.register();
    const order = await this.client.createOrder({ identifiers: names.map((value) => ({ type: 'dns', value })) });
    const authorizations = await this.client.getAuthorizations(order);
    const attempts = authorizations.map((authz) => this.authorize(authz, publisher));
    const settled = await Promise.allSettled(attempts);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    const [key, csr] = await acme.crypto.createCsr({ commonName: names[0], altNames: names }, await acme.crypto.createPrivateEcdsaKey('P-256'));
    const finalized: Order = await this.client.finalizeOrder(order, csr);
    const certificatePem = await this.client.getCertificate(finalized);
    const info = acme.crypto.readCertificateInfo(certificatePem);
    return { certificatePem, privateKeyPem: key.toString('utf8'), notBefore: info.notBefore, notAfter: info.notAfter };
  }

  private register(): Promise<unknown> {
    const contact = this.opts.contactEmail ? [`mailto:${this.opts.contactEmail}`] : undefined;
    this.registered ??= this.client.createAccount({ termsOfServiceAgreed: true, contact }).catch((err: unknown) => {
      this.registered = undefined;
      throw err;
    });
    return this.registered;
  }

  /** One authorization: publish its HTTP-01 answer on every node, have the CA check it, take the answer down again. */
  private async authorize(authz: Authorization, publisher: ChallengePublisher): Promise<void> {
    if (authz.status === 'valid') return;
    const challenge = authz.challenges.find((c) => c.type === 'http-01');
    if (!challenge) throw new Error(`ACME authorization for ${authz.identifier.value} offers no http-01 challenge`);
    const keyAuthorization = await this.client.getChallengeKeyAuthorization(challenge);
    let answered = false;
    try {
      await publisher.publish(challenge.token, keyAuthorization);
      await this.client.completeChallenge(challenge);
      answered = true;
      await this.client.waitForValidStatus(challenge);
    } catch (err) {
      // A pending authorization we give up on would be reused by the next order with the same stale state.
      if (!answered) await this.client.deactivateAuthorization(authz).catch(() => undefined);
      throw err;
    } finally {
      // A token left behind is harmless (it only proves control to this account) and must not hide the order's own outcome.
      await publisher.unpublish(challenge.token).catch(() => undefined);
    }
  }
}
