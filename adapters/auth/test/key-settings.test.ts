// Each API key's own settings stay its own: configure shares one empty list between the keys
// without restrictions and encodes a key's name and tenant on first use, so a restricted key
// must not restrict its neighbours, an unrestricted one must not lose its freedom to an
// earlier key's methods, and a digest in any case must still be one key (and a duplicate).
import t from 'tap';
import { sha256hex, startAuthProxy } from './helpers.js';

const A = 'key-a-0123456789';
const B = 'key-b-0123456789';
const C = 'key-c-0123456789';
const D = 'key-d-0123456789';

t.test('restrictions, names and tenants belong to their own key', async (t) => {
  const p = await startAuthProxy({
    api_keys: {
      keys: [
        { name: 'a', tenant: 'ta', sha256: sha256hex(A), methods: ['get'], paths: ['/a/**'] },
        { name: 'b', sha256: sha256hex(B).toUpperCase() },
        { name: 'c', tenant: 'tc', sha256: sha256hex(C), methods: null, route_names: null, paths: null },
        { name: 'd', tenant: 'td', sha256: sha256hex(D), route_names: ['other'] },
      ],
    },
  });
  t.teardown(() => p.close());

  const a = await p.get('/a/1', { 'x-api-key': A });
  t.equal(a.status, 200, 'methods are upper-cased');
  t.equal(a.json.headers['x-auth-principal'], 'a');
  t.equal(a.json.headers['x-auth-tenant'], 'ta');
  t.equal((await p.get('/a/1', { 'x-api-key': A }, { method: 'POST' })).status, 403, "a's methods");
  t.equal((await p.get('/b/1', { 'x-api-key': A })).status, 403, "a's paths");

  for (let i = 0; i < 2; i++) {
    // twice: the second answer comes from the key cache, with the bytes encoded the first time
    const b = await p.get('/b/1', { 'x-api-key': B }, { method: 'POST' });
    t.equal(b.status, 200, 'an upper-case digest; no methods or paths from key a');
    t.equal(b.json.headers['x-auth-principal'], 'b');
    t.equal(b.json.headers['x-auth-tenant'], undefined, 'no tenant header for a key without one');
  }
  const c = await p.get('/anything', { 'x-api-key': C }, { method: 'DELETE' });
  t.equal(c.status, 200, 'null restrictions are none');
  t.equal(c.json.headers['x-auth-tenant'], 'tc');
  t.equal((await p.get('/anything', { 'x-api-key': D })).status, 403, "d's route names (the route is api)");
});

t.test('digests are compared in lower case; bad settings are still refused', async (t) => {
  await t.rejects(startAuthProxy({ api_keys: { keys: [{ name: 'a', sha256: sha256hex(A) }, { name: 'b', sha256: sha256hex(A).toUpperCase() }] } }), {
    message: /config "api_keys.keys\[1\].sha256": the same key is listed twice/,
  });
  await t.rejects(startAuthProxy({ api_keys: { keys: [{ name: 'a', sha256: sha256hex(A), methods: 'GET' }] } }), {
    message: /config "api_keys.keys\[0\].methods": must be an array of strings/,
  });
  await t.rejects(startAuthProxy({ api_keys: { keys: [{ name: 'a', sha256: sha256hex(A), methods: ['GET', 7] }] } }), {
    message: /config "api_keys.keys\[0\].methods\[1\]": must be a string/,
  });
  await t.rejects(startAuthProxy({ api_keys: { keys: [{ name: 'a', sha256: sha256hex(A).slice(1) + 'G' }] } }), {
    message: /must be the SHA-256 of the key as 64 hex digits/,
  });
  await t.rejects(startAuthProxy({ api_keys: { keys: [{ name: 'a', sha256: sha256hex(A), paths: ['/x'], extra: 1 }] } }), {
    message: /config "api_keys.keys\[0\].extra": unknown setting/,
  });
});
