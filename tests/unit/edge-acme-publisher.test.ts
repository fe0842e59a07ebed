import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DirectoryChallengePublisher } from '../../producers/edge/acme/challenge-publisher.js';

const root = mkdtempSync(path.join(tmpdir(), 'acme-publisher-'));
const dirs = [path.join(root, 'a', 'acme'), path.join(root, 'b', 'acme')];
const TOKEN = 'LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0';

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('DirectoryChallengePublisher', () => {
  it('writes the key authorization as the token file in every directory, and removes it again', async () => {
    const publisher = new DirectoryChallengePublisher(dirs);
    await publisher.publish(TOKEN, `${TOKEN}.thumbprint`);
    for (const dir of dirs) {
      expect(readdirSync(dir)).toEqual([TOKEN]);
      expect(readFileSync(path.join(dir, TOKEN), 'utf8')).toBe(`${TOKEN}.thumbprint`);
    }
    await publisher.unpublish(TOKEN);
    await publisher.unpublish(TOKEN);
    for (const dir of dirs) expect(readdirSync(dir)).toEqual([]);
  });

  it('never turns a token that is not base64url into a path', async () => {
    const publisher = new DirectoryChallengePublisher(dirs);
    await expect(publisher.publish('../../../etc/passwd-xxxxxxxx', 'x')).rejects.toThrow(/base64url/);
    await expect(publisher.unpublish('a/b')).rejects.toThrow(/base64url/);
  });
});
