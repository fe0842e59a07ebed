/**
 * Access as a function of the subscription (producers/plans/access.ts), and
 * how the fleet applies it: which users a node gets (entitled-users.ts), on
 * which of its inbounds (renderConfig), and what a push adds and removes
 * (userChanges).
 */
import { describe, expect, it } from 'vitest';
import type { InboundProfile, ProxyUser } from '../../producers/fleet/model.js';
import { accessOn, givesAccess, type AccessTerms } from '../../producers/plans/access.js';
import { accessKey, namedLabels, usersOnNode, type EntitledUser } from '../../workers/fleet/entitled-users.js';
import { renderConfig, renderTemplate, usersByInbound } from '../../workers/fleet/render/render.js';
import { userChanges } from '../../workers/fleet/user-changes.js';

const sub = (over: Partial<AccessTerms> = {}): AccessTerms => ({ status: 'active', overage: 'block', nodeLabels: [], inboundKinds: [], ...over });

describe('the access rule', () => {
  it.each([
    ['active', 'block', true],
    ['active', 'soft', true],
    // The hold ends at first traffic, which needs access.
    ['on_hold', 'block', true],
    // Billing's grace period after a failed renewal charge.
    ['past_due', 'block', true],
    ['limited', 'block', false],
    ['limited', 'soft', true],
    ['expired', 'soft', false],
    ['disabled', 'soft', false],
  ])('status %s with overage %s: access %s', (status, overage, expected) => {
    expect(givesAccess({ status, overage })).toBe(expected);
    expect(accessOn(sub({ status, overage }), ['eu'], 'vless')).toBe(expected);
  });

  it('no subscription: no access anywhere', () => {
    expect(givesAccess(null)).toBe(false);
    expect(accessOn(null, [], 'vless')).toBe(false);
  });

  it('node labels: any one in common, none = every node', () => {
    expect(accessOn(sub(), [], 'vless')).toBe(true);
    expect(accessOn(sub({ nodeLabels: ['eu', 'premium'] }), ['premium', 'de'], 'vless')).toBe(true);
    expect(accessOn(sub({ nodeLabels: ['eu'] }), ['us'], 'vless')).toBe(false);
    expect(accessOn(sub({ nodeLabels: ['eu'] }), [], 'vless')).toBe(false);
  });

  it('inbound kinds: listed only, none = every kind', () => {
    expect(accessOn(sub(), ['eu'], 'http')).toBe(true);
    expect(accessOn(sub({ inboundKinds: ['vless-reality', 'trojan-tls'] }), ['eu'], 'trojan-tls')).toBe(true);
    expect(accessOn(sub({ inboundKinds: ['vless-reality'] }), ['eu'], 'http')).toBe(false);
  });
});

const profiles: InboundProfile[] = [
  { profileId: 'p-vless', kind: 'vless', port: 10000, labels: [], settings: {}, secrets: {} },
  { profileId: 'p-http', kind: 'http', port: 3128, labels: [], settings: {}, secrets: {} },
];
const user = (name: string, inboundKinds?: string[]): ProxyUser => ({
  userId: `u-${name}`, vlessId: `00000000-0000-4000-8000-00000000000${name.length}`, trojanPassword: `${name}-t`, proxyUsername: name, proxyPassword: `${name}-p`, ...(inboundKinds ? { inboundKinds } : {}),
});
const entitled = (u: ProxyUser, nodeLabels: string[]): EntitledUser => ({ user: u, nodeLabels });

describe('users on a node', () => {
  const everywhere = entitled(user('ann'), []);
  const euOnly = entitled(user('bo'), ['eu']);
  const usPremium = entitled(user('cyd'), ['us', 'premium']);
  const all = [everywhere, euOnly, usPremium];

  it('a node gets the users whose plans name one of its labels, or no label', () => {
    expect(usersOnNode(all, ['eu', 'fast']).map((u) => u.userId)).toEqual(['u-ann', 'u-bo']);
    expect(usersOnNode(all, ['premium']).map((u) => u.userId)).toEqual(['u-ann', 'u-cyd']);
    expect(usersOnNode(all, []).map((u) => u.userId)).toEqual(['u-ann']);
  });

  it('nodes differing only in labels no plan names share one access key (one rendering)', () => {
    const named = namedLabels(all);
    expect(accessKey(named, ['eu', 'fast'])).toBe(accessKey(named, ['eu', 'slow']));
    expect(accessKey(named, ['fast'])).toBe(accessKey(named, []));
    expect(accessKey(named, ['eu'])).not.toBe(accessKey(named, ['us']));
  });

  it('each inbound carries only the users whose plan allows its kind; an HTTP inbound with nobody allowed is left out', () => {
    const byInbound = usersByInbound(renderConfig(renderTemplate(profiles), profiles, [user('ann'), user('bo', ['vless'])]));
    expect([...byInbound.get('p-vless')!.users.keys()]).toEqual(['u-ann', 'u-bo']);
    expect([...byInbound.get('p-http')!.users.keys()]).toEqual(['ann']);
    expect(renderConfig(renderTemplate(profiles), profiles, [user('bo', ['vless'])]).inbounds.map((i) => i.tag)).toEqual(['p-vless']);
  });

  it('a push adds the node’s users where allowed and removes the rest of the batch from every other inbound', () => {
    const batch = [user('ann'), user('bo'), user('cyd')].map((u) => ({ userId: u.userId, proxyUsername: u.proxyUsername }));
    const changes = userChanges(profiles, [user('ann'), user('bo', ['vless'])], batch);
    expect(changes.add.map((a) => `${a.tag}:${a.user.email}`).sort()).toEqual(['p-http:ann', 'p-vless:u-ann', 'p-vless:u-bo']);
    expect(changes.remove.map((r) => `${r.tag}:${r.email}`).sort()).toEqual(['p-http:bo', 'p-http:cyd', 'p-vless:u-cyd']);
    // Nobody left on the HTTP inbound: its accounts still go.
    expect(userChanges(profiles, [], batch).remove.filter((r) => r.tag === 'p-http').map((r) => r.email)).toEqual(['ann', 'bo', 'cyd']);
  });
});
