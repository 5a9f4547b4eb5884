// The host's foreign functions: Envoy's verify_signature argument/result format, checked
// against signatures made by node:crypto, and the registry's NOT_FOUND / grant behaviour.
import t from 'tap';
import { generateKeyPairSync, sign } from 'node:crypto';
import { Status } from '../../host/src/abi/constants.js';
import { decodeProto, defaultForeignFunctions, encodeProto, foreignBytes, ForeignFunctionRegistry, verifySignature, type ForeignResult } from '../../host/src/plugin/foreign-functions.js';

const caller = { adapter: 'test' };
const data = Buffer.from('header.payload');

function result(r: ForeignResult): { result: boolean; error: string } {
  if (typeof r === 'number') throw new Error(`status ${r}`);
  const f = decodeProto(foreignBytes(r))!;
  const ok = f.get(1);
  const err = f.get(2);
  return { result: typeof ok === 'bigint' && ok === 1n, error: err instanceof Uint8Array ? Buffer.from(err).toString() : '' };
}

t.test('verify_signature: RSA PKCS#1 v1.5 and ECDSA (DER), DER and PEM keys', async (t) => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsaDer = rsa.publicKey.export({ format: 'der', type: 'spki' });
  const ecPem = ec.publicKey.export({ format: 'pem', type: 'spki' }) as string;
  for (const hash of ['sha256', 'SHA384', 'sha512']) {
    const sig = sign(hash.toLowerCase(), data, rsa.privateKey);
    t.same(result(verifySignature(encodeProto([[1, hash], [2, rsaDer], [3, sig], [4, data]]), caller)), { result: true, error: '' }, `RSA ${hash}`);
    const bad = Buffer.from(sig);
    bad[10]! ^= 1;
    const r = result(verifySignature(encodeProto([[1, hash], [2, rsaDer], [3, bad], [4, data]]), caller));
    t.equal(r.result, false, `tampered RSA ${hash}`);
    t.match(r.error, /Failed to verify/);
  }
  const esig = sign('sha256', data, { key: ec.privateKey, dsaEncoding: 'der' });
  t.same(result(verifySignature(encodeProto([[1, 'sha256'], [3, esig], [4, data], [5, ecPem]]), caller)), { result: true, error: '' }, 'ECDSA, PEM key');
  t.equal(result(verifySignature(encodeProto([[1, 'sha256'], [3, esig], [4, Buffer.from('other')], [5, ecPem]]), caller)).result, false, 'other text');
  t.same(result(verifySignature(encodeProto([[1, 'md5'], [2, rsaDer], [3, esig], [4, data]]), caller)), { result: false, error: 'md5 is not supported.' });
  const raw = sign('sha256', data, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' });
  t.equal(result(verifySignature(encodeProto([[1, 'sha256'], [3, raw], [4, data], [5, ecPem]]), caller)).result, false, 'raw r||s is not DER: refused');
});

t.test('verify_signature: BAD_ARGUMENT for unparseable arguments and unusable keys, as Envoy', async (t) => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const der = ec.publicKey.export({ format: 'der', type: 'spki' });
  const pem = ec.publicKey.export({ format: 'pem', type: 'spki' }) as string;
  t.equal(verifySignature(new Uint8Array([0x0a, 0x05, 0x61]), caller), Status.BadArgument, 'truncated message');
  t.equal(verifySignature(encodeProto([[1, 'sha256'], [4, data]]), caller), Status.BadArgument, 'no key');
  t.equal(verifySignature(encodeProto([[1, 'sha256'], [2, der], [5, pem]]), caller), Status.BadArgument, 'both key forms');
  t.equal(verifySignature(encodeProto([[1, 'sha256'], [2, Buffer.from('not a key')]]), caller), Status.BadArgument, 'garbage key');
  t.equal(verifySignature(encodeProto([[1, 'sha256'], [2, Buffer.from('not a key')]]), caller), Status.BadArgument, 'garbage key (cached)');
  // unknown fields are skipped, as protobuf requires
  const withExtra = Buffer.concat([Buffer.from(encodeProto([[9, 'x'], [10, 7]])), Buffer.from(encodeProto([[1, 'sha256'], [2, der], [3, sign('sha256', data, ec.privateKey)], [4, data]]))]);
  t.equal(result(verifySignature(withExtra, caller)).result, true);
});

t.test('registry: unknown names are NOT_FOUND; the grant hook refuses and reports', async (t) => {
  t.ok(defaultForeignFunctions.has('verify_signature'));
  t.equal(defaultForeignFunctions.call(caller, 'no_such_function', new Uint8Array(0)), Status.NotFound);
  const warnings: string[] = [];
  const reg = new ForeignFunctionRegistry()
    .register('echo', (a) => a)
    .register('boom', () => {
      throw new Error('kaput');
    })
    .setGrant((adapter, name) => adapter === 'auth' || name === 'boom');
  const c = { adapter: 'other', warn: (m: string) => warnings.push(m) };
  t.equal(reg.call(c, 'echo', new Uint8Array([1])), Status.NotFound);
  t.same(reg.call({ adapter: 'auth' }, 'echo', new Uint8Array([1])), new Uint8Array([1]));
  t.equal(reg.call(c, 'boom', new Uint8Array(0)), Status.InternalFailure);
  t.same(warnings, ['foreign function "echo" is not granted to this adapter', 'foreign function "boom" failed: kaput']);
  t.same(reg.names(), ['boom', 'echo']);
});
