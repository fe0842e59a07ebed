/** Fleet test data shared by the renderer and subscription tests. */
import type { InboundProfile } from '../../producers/fleet/model.js';

/** A VLESS+REALITY profile with its secret, as the renderer receives it; the keys and fingerprint are the caller's. */
export function realityProfile(keys: { publicKey: string; privateKey: string }, fingerprint = 'chrome'): InboundProfile {
  return {
    profileId: 'p-reality',
    kind: 'vless-reality',
    port: 443,
    labels: [],
    settings: {
      dest: 'www.example.com:443',
      serverNames: ['www.example.com', 'example.com'],
      shortIds: ['0123456789abcdef', 'ab'],
      publicKey: keys.publicKey,
      fingerprint,
      flow: 'xtls-rprx-vision',
    },
    secrets: { realityPrivateKey: keys.privateKey },
  };
}
