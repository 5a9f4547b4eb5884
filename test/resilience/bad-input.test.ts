// Bad input through the real proxy: malformed HTTP gets 400 and the proxy keeps
// serving; malformed modules are refused at load naming the plugin and file.
import net from 'node:net';
import t from 'tap';
import { startDemoUpstream, startProxy } from '../../host/src/index.js';
import { compileGuest } from '../fixtures/guests/index.js';
import { captureLogs, request } from './helpers.js';

function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(text));
    let buf = '';
    s.setTimeout(5000, () => s.destroy());
    s.on('data', (d) => (buf += d.toString()));
    s.on('close', () => resolve(buf));
    s.on('error', () => resolve(buf));
  });
}

t.test('malformed HTTP gets 400 and the proxy keeps serving', async (t) => {
  const up = await startDemoUpstream(0);
  const proxy = await startProxy(
    { listen: { port: 0 }, routes: [{ name: 'r', upstream: `http://127.0.0.1:${up.port}` }], plugins: [{ name: 'spec', url: 'spec.wasm' }] },
    { modules: { 'spec.wasm': await compileGuest('spec-filter') }, logger: captureLogs().logger },
  );
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  const cases: Array<[string, string]> = [
    ['bad request line', 'GARBAGE / NOT-HTTP\r\n\r\n'],
    ['oversized headers', `GET / HTTP/1.1\r\nHost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`],
    ['invalid chunked body', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nhello\r\n0\r\n\r\n'],
    ['content-length and transfer-encoding together (smuggling)', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['invalid header name', 'GET / HTTP/1.1\r\nHost: x\r\nbad header: v\r\n\r\n'],
  ];
  for (const [what, text] of cases) {
    const res = await raw(proxy.port, text);
    t.match(res, /^HTTP\/1\.1 4\d\d/, `${what}: answered 4xx`);
    t.equal((await request(proxy.port, '/ok', { fresh: true })).status, 200, `${what}: still serving`);
  }
});

t.test('malformed modules are refused at load, naming the plugin and the file', async (t) => {
  const spec = await compileGuest('spec-filter');
  const cases: Array<[string, Uint8Array, string]> = [
    ['random bytes', new Uint8Array(Array.from({ length: 512 }, (_, i) => (i * 7919) & 0xff)), 'WASM_MALFORMED'],
    ['truncated', spec.slice(0, Math.floor(spec.length / 2)), 'WASM_MALFORMED'],
    ['empty', new Uint8Array(0), 'WASM_MALFORMED'],
    ['no ABI marker', await compileGuest('no-abi-marker'), 'WASM_ABI_MISSING'],
    ['unknown imports', await compileGuest('unknown-import'), 'WASM_IMPORT_UNKNOWN'],
    ['unknown ABI version', unknownAbi(await compileGuest('abi-v010')), 'WASM_ABI_UNSUPPORTED'],
  ];
  for (const [what, bytes, code] of cases) {
    await t.rejects(
      startProxy({ listen: { port: 0 }, plugins: [{ name: 'bad', url: 'bad.wasm' }] }, { modules: { 'bad.wasm': bytes }, logger: captureLogs().logger }),
      { code, message: /plugin bad: bad\.wasm/ },
      what,
    );
  }
});

/** The 0.1.0 fixture with its marker renamed to a version no host speaks. */
function unknownAbi(wasm: Uint8Array): Uint8Array {
  const b = Buffer.from(wasm);
  b.write('proxy_abi_version_9_9_9', b.indexOf('proxy_abi_version_0_1_0'), 'latin1');
  return new Uint8Array(b);
}
