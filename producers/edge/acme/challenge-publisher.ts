/**
 * Where HTTP-01 answers go. The CA fetches
 * `http://<domain>/.well-known/acme-challenge/<token>` from whichever edge
 * node the domain resolves to, so a token must be on every node serving the
 * site before the challenge is answered.
 *
 * `DirectoryChallengePublisher` writes one file per token into a list of
 * directories: every nginx edge node's `acmeChallenges` directory
 * (workers/edge/nginx/layout.ts) that shares this host's file system. Nodes
 * elsewhere receive tokens through their agents; that publisher is not built
 * yet (docs/edge-acme.md).
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface ChallengePublisher {
  /** Resolves once every node answers `keyAuthorization` for `token`. */
  publish(token: string, keyAuthorization: string): Promise<void>;
  unpublish(token: string): Promise<void>;
}

/** RFC 8555 §8.1: a token is base64url; anything else must never become a file name. */
const TOKEN = /^[A-Za-z0-9_-]{16,256}$/;

export function assertChallengeToken(token: string): void {
  if (!TOKEN.test(token)) throw new Error('ACME challenge token is not base64url of 16-256 characters');
}

export class DirectoryChallengePublisher implements ChallengePublisher {
  constructor(private readonly directories: readonly string[]) {}

  async publish(token: string, keyAuthorization: string): Promise<void> {
    assertChallengeToken(token);
    // Written beside the final name and renamed: nginx never serves half a file.
    await Promise.all(
      this.directories.map(async (dir) => {
        await mkdir(dir, { recursive: true });
        const partial = path.join(dir, `.${token}.partial`);
        await writeFile(partial, keyAuthorization, { mode: 0o644 });
        await rename(partial, path.join(dir, token));
      }),
    );
  }

  async unpublish(token: string): Promise<void> {
    assertChallengeToken(token);
    await Promise.all(this.directories.map((dir) => rm(path.join(dir, token), { force: true })));
  }
}
