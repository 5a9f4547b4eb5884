// Global-mode configuration mistakes a new user makes, refused when the real CLI
// (`wasm-mixer proxy --config`) loads the plugin, with a message that says what to do,
// instead of a proxy that starts and then silently never limits.
import t from 'tap';
import { buildQuota, startProxyProcess, startRedis } from './helpers.js';

const { wasm, dir, cleanup } = await buildQuota();
t.teardown(cleanup);
const redis = await startRedis();
t.teardown(() => redis.stop());

function config(plugin: Record<string, unknown>) {
  return {
    listen: { address: '127.0.0.1', port: 0 },
    admin: { port: 0 },
    logLevel: 'warn',
    routes: [{ name: 'default', upstream: 'http://127.0.0.1:9' }],
    clusters: { redis: { url: redis.url } },
    plugins: [{ name: 'quota', url: wasm, ...plugin }],
  };
}

let seq = 0;
/** Starts the CLI and expects it to exit at load; returns what it wrote to stderr. */
async function refusal(plugin: Record<string, unknown>): Promise<string> {
  try {
    const p = await startProxyProcess(config(plugin), dir, `refusal-${++seq}`);
    await p.stop();
    return 'the proxy started';
  } catch (err) {
    return (err as Error).message;
  }
}

t.test('a global limit whose plugin is not granted its Redis cluster is refused at load', async (t) => {
  const msg = await refusal({ pluginConfig: { global: { cluster: 'redis' }, limits: [{ name: 'g', limit: 5, window: '1m', mode: 'global' }] } });
  t.match(msg, /exited with 1/, 'the CLI exits');
  t.match(msg, /PLUGIN_CONFIGURE_FAILED/);
  t.match(msg, /global limit g needs cluster "redis", and the host refused a call to it: .*grant it to this plugin \(plugins\[\]\.clusters: \["redis"\]\)/);
  const undefinedCluster = await refusal({ clusters: ['redis'], pluginConfig: { limits: [{ name: 'g', limit: 5, window: '1m', global: { cluster: 'nope' } }] } });
  t.match(undefinedCluster, /global limit g needs cluster "nope"/, 'a cluster the proxy does not define is refused too');
});

t.test('a top-level "global" block with no global limit is refused, not silently local', async (t) => {
  const msg = await refusal({ clusters: ['redis'], pluginConfig: { global: { cluster: 'redis' }, limits: [{ name: 'l', limit: 5, window: '1m' }] } });
  t.match(msg, /PLUGIN_CONFIGURE_FAILED/);
  t.match(msg, /config "global": is set but no limit is global, so every limit is local to this proxy: add "mode": "global"/);
});

t.test('granted and global: the proxy starts (and its startup probe reached Redis)', async (t) => {
  const p = await startProxyProcess(
    config({ clusters: ['redis'], pluginConfig: { global: { cluster: 'redis' }, limits: [{ name: 'g', limit: 5, window: '1m', mode: 'global' }, { name: 'l', limit: 5, window: '1m' }] } }),
    dir,
    'granted',
  );
  t.teardown(() => p.stop());
  t.ok(p.port > 0);
  t.notMatch(p.stderr(), /did not answer the startup probe/);
});

t.test('Redis down at startup: the proxy starts and says so', async (t) => {
  const down = await startRedis();
  await down.stop();
  const cfg = config({ clusters: ['redis'], pluginConfig: { global: { cluster: 'redis', timeout_ms: 200 }, limits: [{ name: 'g', limit: 5, window: '1m', mode: 'global' }] } });
  cfg.clusters.redis.url = down.url;
  const p = await startProxyProcess(cfg, dir, 'down');
  t.teardown(() => p.stop());
  for (let i = 0; i < 100 && !/startup probe/.test(p.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
  t.match(p.stderr(), /quota: cluster redis did not answer the startup probe .*global limits apply their on_error policy/);
});
