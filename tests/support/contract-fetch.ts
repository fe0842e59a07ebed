/**
 * Setup file of the whole suite (vitest.config.ts): every `fetch` a test
 * makes to a server on this machine that publishes an OpenAPI document is
 * checked against it (./contract.ts), so no answer of the API that the suite
 * receives escapes the contract — raw `fetch` calls included, not only those
 * through `client()`. A mismatch rejects the fetch, which fails the test.
 */
import { checkIfApi } from './contract.js';

const LOCAL = new Set(['127.0.0.1', 'localhost', '[::1]']);
const fetchAsNodeHasIt = globalThis.fetch;

function describe(input: string | URL | Request, init?: RequestInit): { url: URL; method: string } {
  const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
  const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
  return { url, method };
}

globalThis.fetch = async function checkedFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const res = await fetchAsNodeHasIt(input, init);
  const { url, method } = describe(input, init);
  if (url.protocol === 'http:' && LOCAL.has(url.hostname)) await checkIfApi(url.origin, method, `${url.pathname}${url.search}`, res);
  return res;
};
