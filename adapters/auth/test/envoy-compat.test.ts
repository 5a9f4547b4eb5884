// Portability of the module to other Proxy-Wasm hosts: it imports nothing but the ABI;
// its verify_signature arguments decode with Envoy's own message definition (by
// protobufjs, not by our host's decoder) and carry a DER SubjectPublicKeyInfo, DER ECDSA
// signatures and the exact JWS signing input; and on a host without verify_signature it
// refuses RSA/EC keys at load time while HMAC and API keys keep working.
import t from 'tap';
import { createPublicKey, verify } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import protobuf from 'protobufjs';
import { checkAdapterModule } from '../../../host/src/build/build-adapter.js';
import { defaultForeignFunctions, foreignBytes, verifySignature } from '../../../host/src/plugin/foreign-functions.js';
import { loadAdapter } from '../../../host/testing/index.js';
import { authWasm, makeKey, nowS, sha256hex, sign } from './helpers.js';

// envoyproxy/envoy source/extensions/common/wasm/ext/verify_signature.proto
const envoyProto = protobuf.parse(`
syntax = "proto3";
package envoy.source.extensions.common.wasm;
message VerifySignatureArguments {
  string hash_function = 1;
  bytes public_key = 2;
  string public_key_pem = 5;
  bytes signature = 3;
  bytes text = 4;
}
message VerifySignatureResult {
  bool result = 1;
  string error = 2;
}`, { keepCase: true }).root;
const Args = envoyProto.lookupType('envoy.source.extensions.common.wasm.VerifySignatureArguments');
const Result = envoyProto.lookupType('envoy.source.extensions.common.wasm.VerifySignatureResult');

const wasm = await authWasm();

/** DER SEQUENCE { INTEGER r, INTEGER s } from JOSE's r||s, written independently of the module. */
function derFromRaw(raw: Buffer): Buffer {
  const int = (b: Buffer) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = b.subarray(i);
    const body = v[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v;
    return Buffer.concat([Buffer.from([0x02, body.length]), body]);
  };
  const n = raw.length / 2;
  const seq = Buffer.concat([int(raw.subarray(0, n)), int(raw.subarray(n))]);
  return Buffer.concat([Buffer.from(seq.length < 0x80 ? [0x30, seq.length] : [0x30, 0x81, seq.length]), seq]);
}
const ISS = 'https://idp.example.com';

t.test('the module imports only the Proxy-Wasm ABI', async (t) => {
  const bytes = await readFile(wasm);
  t.same(checkAdapterModule(bytes), []);
  const imports = WebAssembly.Module.imports(new WebAssembly.Module(bytes));
  t.ok(imports.every((i) => i.module === 'env' && i.name.startsWith('proxy_')), imports.map((i) => `${i.module}.${i.name}`).join(' '));
});

t.test("verify_signature arguments are Envoy's message, with DER keys and signatures", async (t) => {
  const keys = await Promise.all([makeKey('RS256', 'r'), makeKey('RS512', 'r5'), makeKey('ES256', 'e'), makeKey('ES384', 'e3'), makeKey('ES512', 'e5')]);
  const h = await loadAdapter(wasm, { config: { jwt: { providers: [{ issuer: ISS, local_jwks: { keys: keys.map((k) => k.jwk) } }], cache: { max_entries: 0 } } }, logLevel: 'warn' });
  t.teardown(() => h.close());
  const seen: Array<Record<string, any>> = [];
  h.host.telemetry.foreign.register('verify_signature', (args, caller) => {
    const m = Args.toObject(Args.decode(args), { bytes: Buffer as never, defaults: true });
    const out = verifySignature(args, caller);
    seen.push({ ...m, result: typeof out === 'number' ? out : Result.toObject(Result.decode(foreignBytes(out)), { defaults: true }) });
    return out;
  });
  for (const k of keys) {
    const tok = await sign(k, { iss: ISS, exp: nowS() + 60, sub: k.alg });
    t.equal((await h.run({ headers: { authorization: `Bearer ${tok}` } })).status, 200, k.alg);
    const call = seen.at(-1)!;
    const [hd, pl, sg] = tok.split('.') as [string, string, string];
    t.equal(call.hash_function, `sha${k.alg.slice(2)}`, `${k.alg}: hash_function`);
    t.equal(call.public_key_pem, '', 'DER, not PEM');
    const der = createPublicKey({ key: call.public_key, format: 'der', type: 'spki' });
    t.same(der.export({ format: 'jwk' }), createPublicKey({ key: k.jwk as never, format: 'jwk' }).export({ format: 'jwk' }), `${k.alg}: the SPKI is the JWK's key`);
    t.equal(Buffer.from(call.text).toString(), `${hd}.${pl}`, 'text is the JWS signing input');
    const sig = Buffer.from(sg, 'base64url');
    if (k.alg.startsWith('ES')) {
      t.ok(verify(`sha${k.alg.slice(2)}`, Buffer.from(`${hd}.${pl}`), { key: der, dsaEncoding: 'der' }, call.signature), `${k.alg}: signature converted to DER`);
      t.same(Buffer.from(call.signature), Buffer.from(sig.length ? derFromRaw(sig) : sig), `${k.alg}: the canonical DER of r||s`);
      t.equal(call.signature[0], 0x30, 'a DER SEQUENCE');
    } else {
      t.same(Buffer.from(call.signature), sig, `${k.alg}: PKCS#1 signature as is`);
    }
    t.same(call.result, { result: true, error: '' });
  }
});

t.test('a host without verify_signature: RSA/EC keys refused at load, HMAC and API keys still work', async (t) => {
  defaultForeignFunctions.setGrant((_adapter, name) => name !== 'verify_signature');
  t.teardown(() => void defaultForeignFunctions.setGrant(() => true));
  const rs = await makeKey('RS256', 'r');
  const hs = await makeKey('HS256', 'h');
  await t.rejects(loadAdapter(wasm, { config: { jwt: { providers: [{ issuer: ISS, local_jwks: { keys: [rs.jwk] } }] } }, logLevel: 'warn' }), {
    message: /RSA\/EC keys need the host's verify_signature foreign function, which this host does not provide/,
  });
  const h = await loadAdapter(wasm, {
    config: { api_keys: { keys: [{ name: 'svc', sha256: sha256hex('key-1234567') }] }, jwt: { providers: [{ issuer: ISS, local_jwks: { keys: [rs.jwk, hs.jwk] } }] } },
    logLevel: 'warn',
  });
  t.teardown(() => h.close());
  t.ok(h.logsAt('warn', 'auth').some((r) => /skipped key 0 \(kid "r"\): the host has no verify_signature/.test(r.message)));
  t.equal((await h.run({ headers: { authorization: `Bearer ${await sign(hs, { iss: ISS, exp: nowS() + 60 })}` } })).status, 200, 'HS256');
  t.equal((await h.run({ headers: { authorization: `Bearer ${await sign(rs, { iss: ISS, exp: nowS() + 60 })}` } })).status, 401, 'RS256: no usable key');
  t.equal((await h.run({ headers: { 'x-api-key': 'key-1234567' } })).status, 200, 'API key');
});
