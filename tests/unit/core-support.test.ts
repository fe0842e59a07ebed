/** Which core flavour can run what: V2Ray is refused REALITY and XTLS flows it would silently drop; Xray runs everything Relaygrid renders. */
import { describe, expect, it } from 'vitest';
import { unsupportedByCore } from '../../workers/agent/core/core-support.js';

const reality = { inbounds: [{ tag: 'eu-reality', protocol: 'vless', streamSettings: { security: 'reality' }, settings: { clients: [] } }] };
const vision = { inbounds: [{ tag: 'eu-tls', protocol: 'vless', streamSettings: { security: 'tls' }, settings: { clients: [{ id: 'x', flow: 'xtls-rprx-vision' }] } }] };
const plain = { inbounds: [{ tag: 'lab', protocol: 'vless', streamSettings: { security: 'none' }, settings: { clients: [{ id: 'x' }] } }] };

describe('unsupportedByCore', () => {
  it('refuses REALITY and XTLS flows on V2Ray, naming the inbound and the way out', () => {
    expect(unsupportedByCore('v2ray', reality)).toBe('inbound eu-reality: V2Ray has no REALITY (it would serve plain VLESS); run the agent with --core xray');
    expect(unsupportedByCore('v2ray', vision)).toBe("inbound eu-tls: V2Ray has no xtls-rprx-vision flow; run the agent with --core xray or drop the profile's flow");
  });

  it('lets V2Ray run the rest, Xray run everything, and leaves odd files to the core', () => {
    expect(unsupportedByCore('v2ray', plain)).toBeNull();
    expect(unsupportedByCore('xray', reality)).toBeNull();
    expect(unsupportedByCore('xray', vision)).toBeNull();
    for (const odd of [null, 3, {}, { inbounds: {} }, { inbounds: [{ settings: { clients: {} } }] }]) expect(unsupportedByCore('v2ray', odd)).toBeNull();
  });
});
