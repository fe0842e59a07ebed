/**
 * `relaygrid nats-config --routes …` renders one cluster member's
 * configuration: a cluster block with authenticated routes to every member,
 * this server's own name, and the same account and users as a single server.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../infra/config.js';
import { natsServerConfig } from '../../infra/nats/server-config.js';
import { clusterMember } from '../../infra/roles/nats-config.js';

const passwords = { operator: 'o'.repeat(16), service: 's'.repeat(16), analyst: 'a'.repeat(16), audit: 'u'.repeat(16), gateway: 'g'.repeat(16) };
const env = { NATS_CLUSTER_PASSWORD: 'route/pass word+16chars' };
const options = { host: '0.0.0.0', 'cluster-port': '6222' };
const routes = 'nats-1:6222,nats-2:6222,nats-3:6222';

describe('nats-config for a cluster member', () => {
  const single = natsServerConfig({ namespace: 'rg', port: 4222, storeDir: '/var/lib/nats', passwords });
  const member = (name: string) => {
    const cluster = clusterMember('rg', { ...options, name, routes }, env);
    return natsServerConfig({ namespace: 'rg', port: 4222, storeDir: '/var/lib/nats', passwords, serverName: name, ...(cluster ? { cluster } : {}) });
  };

  it('routes to every member with the shared route user, under one cluster name', () => {
    const conf = member('nats-2');
    expect(conf).toContain('server_name: "nats-2"');
    expect(conf).toMatch(/cluster: \{\n {2}name: "relaygrid-rg"\n {2}listen: "0\.0\.0\.0:6222"/);
    expect(conf).toContain('authorization: { user: "route", password: "route/pass word+16chars", timeout: 2 }');
    // The password is URL-encoded in the route URLs, so any character is safe in it.
    const encoded = encodeURIComponent(env.NATS_CLUSTER_PASSWORD);
    expect(conf).toContain(`routes: ["nats-route://route:${encoded}@nats-1:6222", "nats-route://route:${encoded}@nats-2:6222", "nats-route://route:${encoded}@nats-3:6222"]`);
  });

  it('has the same account and least-privilege users as a single server', () => {
    const accounts = (conf: string) => conf.slice(conf.indexOf('accounts: {'));
    expect(accounts(member('nats-1'))).toBe(accounts(single));
    expect(accounts(member('nats-3'))).toBe(accounts(single));
    // Only the name differs between members: one route list serves every node.
    expect(member('nats-1').replace('"nats-1"', '"nats-3"')).toBe(member('nats-3'));
  });

  it('sets a JetStream domain only when asked', () => {
    expect(member('nats-1')).not.toContain('domain');
    const cluster = clusterMember('rg', { ...options, name: 'nats-1', routes, domain: 'hub' }, env);
    expect(natsServerConfig({ namespace: 'rg', port: 4222, storeDir: '/d', passwords, ...(cluster ? { cluster } : {}) })).toContain('jetstream: { store_dir: "/d", domain: "hub" }');
  });

  it('renders no cluster block without --routes', () => {
    expect(clusterMember('rg', options, env)).toBeUndefined();
    expect(single).not.toContain('cluster');
  });

  it.each([
    [{ routes }, '--name', /unique in the cluster/],
    [{ name: 'n1' }, '--name', /give --routes too/],
    [{ domain: 'hub' }, '--domain', /give --routes too/],
    [{ name: 'n1', routes: 'nats-1:6222,nats-2:6222' }, '--routes', /at least 3 members/],
    [{ name: 'n1', routes: 'nats-1:6222,nats://nats-2:6222,nats-3:6222' }, '--routes', /"nats:\/\/nats-2:6222" is not host:port/],
    [{ name: 'n1', routes, 'cluster-port': 'x' }, '--cluster-port', /"x" is not a port/],
  ])('refuses %o, naming %s', (values, variable, message) => {
    const attempt = () => clusterMember('rg', { ...options, ...values }, env);
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(message);
    let thrown: unknown;
    try {
      attempt();
    } catch (err) {
      thrown = err;
    }
    expect((thrown as ConfigError).variable).toBe(variable);
  });

  it('needs the route password from the environment', () => {
    expect(() => clusterMember('rg', { ...options, name: 'n1', routes }, {})).toThrow(/NATS_CLUSTER_PASSWORD: the routes' shared password, at least 16 characters/);
  });
});
