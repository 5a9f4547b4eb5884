// RateLimit headers written in the response phase (assembly/ratelimit-headers.ts):
// the values of both styles, and no record left behind by requests that end
// without response headers (the pending map is emptied by onEnd, from proxy_on_delete).
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { WasmHost } from '../../../host/src/host.js';
import type { MixerConfig } from '../../../host/src/config/schema.js';
import { buildQuota } from './helpers.js';

const { wasm, cleanup } = await buildQuota();
t.teardown(cleanup);
const quiet = { level: 5, log() {} } as never;

async function makeHost(headers: string) {
  const pluginConfig = { domain: 'rh', headers, limits: [{ name: 'per_user', limit: 1_000_000, window: '1m', dimensions: { user: 'header:x-user' } }] };
  const config = { plugins: [{ name: 'quota', url: 'q.wasm', pluginConfig }] } as MixerConfig;
  const host = await WasmHost.create(config, { modules: { 'q.wasm': await readFile(wasm) }, logger: quiet });
  const send = async (user: string, withResponse: boolean) => {
    const st = host.newStream({ method: 'GET', path: '/', authority: 'x', headers: [['x-user', user]] });
    let d = st.requestHeaders(true);
    if (d instanceof Promise) d = await d;
    let got: Record<string, string> = {};
    if (withResponse) {
      const r = st.responseHeaders(200, [['content-type', 'text/plain']], true);
      if (r instanceof Promise) await r;
      got = Object.fromEntries((st.stream.responseHeaders ?? []).filter(([k]) => k.includes('ratelimit')));
    }
    st.finish();
    return got;
  };
  return { host, send };
}

t.test('draft and x-ratelimit values', async (t) => {
  const draft = await makeHost('draft');
  t.teardown(() => draft.host.close());
  await draft.send('a', true);
  const d = await draft.send('a', true);
  t.match(d, { 'ratelimit-limit': '1000000', 'ratelimit-policy': '1000000;w=60;name="per_user"', 'ratelimit-remaining': '999998' });
  t.ok(Number(d['ratelimit-reset']) >= 1 && Number(d['ratelimit-reset']) <= 60, 'reset: seconds to the end of the window');
  t.same(Object.keys(d), ['ratelimit-limit', 'ratelimit-policy', 'ratelimit-remaining', 'ratelimit-reset'], 'in the order they were always set');
  const x = await makeHost('x-ratelimit');
  t.teardown(() => x.host.close());
  const xh = await x.send('b', true);
  t.match(xh, { 'x-ratelimit-limit': '1000000, 1000000;w=60;name="per_user"', 'x-ratelimit-remaining': '999999', 'x-ratelimit-reset': /^[1-9][0-9]?$/ });
  t.same(Object.keys(xh), ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']);
});

t.test('requests that end without response headers leave nothing behind', async (t) => {
  const { host, send } = await makeHost('draft');
  t.teardown(() => host.close());
  const memory = () => host.describe()[0]!.memoryBytes as number;
  for (let i = 0; i < 3000; i++) await send(`u${i % 50}`, false);
  const before = memory();
  for (let i = 0; i < 30000; i++) await send(`u${i % 50}`, false);
  t.ok(memory() - before < 1 << 20, `linear memory grew ${memory() - before} bytes over 30000 requests (a record kept per request would be ~2 MiB)`);
  t.equal((await send('u1', true))['ratelimit-limit'], '1000000', 'headers still written afterwards');
});

t.test('exports no proxy_on_log: cleanup runs from proxy_on_delete', async (t) => {
  const names = WebAssembly.Module.exports(new WebAssembly.Module(await readFile(wasm))).map((e) => e.name);
  for (const e of ['proxy_on_context_create', 'proxy_on_request_headers', 'proxy_on_response_headers', 'proxy_on_delete']) t.ok(names.includes(e), `exports ${e}`);
  for (const e of ['proxy_on_log', 'proxy_on_done']) t.notOk(names.includes(e), `does not export ${e}`);
});
