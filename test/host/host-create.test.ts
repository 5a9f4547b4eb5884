// WasmHost.create compiles every module at once but starts them one by one in chain order:
// a plugin that fails (to compile, or in configure) is reported with its code and name as if
// they loaded one after another; plugins before it are stopped, plugins after it never start.
import t, { type Test } from 'tap';
import { LogLevel } from '../../host/src/abi/constants.js';
import { WasmHost } from '../../host/src/host.js';
import { createLogger, type LogRecord } from '../../host/src/log/logger.js';
import { PluginVm } from '../../host/src/plugin/plugin-vm.js';
import type { PluginConfig } from '../../host/src/config/schema.js';
import { compileGuest } from '../fixtures/guests/index.js';

async function modules(): Promise<Record<string, Uint8Array>> {
  return {
    good: await compileGuest('spec-filter'),
    'no-marker': await compileGuest('no-abi-marker'),
    'unknown-import': await compileGuest('unknown-import'),
  };
}

/** Names of the PluginVms started and stopped while `fn` runs. */
async function watchVms<T>(t: Test, fn: () => Promise<T>): Promise<{ started: string[]; stopped: string[]; result: Promise<T> }> {
  const started: string[] = [];
  const stopped: string[] = [];
  const start = PluginVm.prototype.start;
  const stop = PluginVm.prototype.stop;
  PluginVm.prototype.start = function (this: PluginVm) {
    started.push(this.name);
    return start.call(this);
  };
  PluginVm.prototype.stop = function (this: PluginVm) {
    stopped.push(this.name);
    return stop.call(this);
  };
  t.teardown(() => {
    PluginVm.prototype.start = start;
    PluginVm.prototype.stop = stop;
  });
  const result = fn();
  await result.catch(() => {});
  return { started, stopped, result };
}

function create(plugins: PluginConfig[], mods: Record<string, Uint8Array>, records: LogRecord[] = []) {
  return WasmHost.create({ plugins, logLevel: 'trace' }, { modules: mods, logger: createLogger(LogLevel.Trace, (r) => records.push(r)) });
}

t.test('plugins start in chain order (phase, then config order), each with its own load time', async (t) => {
  const records: LogRecord[] = [];
  const host = await create(
    [
      { name: 'stats', url: 'good', phase: 'STATS', pluginConfig: 'ok' },
      { name: 'authn', url: 'good', phase: 'AUTHN', pluginConfig: 'ok' },
      { name: 'authz', url: 'good', phase: 'AUTHZ', pluginConfig: 'ok' },
    ],
    await modules(),
    records,
  );
  t.teardown(() => host.close());
  t.same(host.plugins.map((p) => p.config.name), ['authn', 'authz', 'stats']);
  const loaded = records.filter((r) => /^adapter loaded from/.test(r.message)).map((r) => r.source);
  t.same(loaded, ['authn', 'authz', 'stats'], 'started and logged in chain order');
  for (const p of host.plugins) t.ok(p.loadMs > 0 && Number.isFinite(p.loadMs), `${p.config.name} has a load time`);
});

t.test('a module that does not load: its code and plugin name; the plugins before it stopped, none after it started', async (t) => {
  const mods = await modules();
  const w = await watchVms(t, () =>
    create(
      [
        { name: 'first', url: 'good', pluginConfig: 'ok' },
        { name: 'broken', url: 'no-marker' },
        { name: 'third', url: 'good', pluginConfig: 'ok' },
      ],
      mods,
    ),
  );
  await t.rejects(w.result, { code: 'WASM_ABI_MISSING', message: /^plugin broken: / });
  t.same(w.started, ['first'], 'the plugin after the broken one never starts');
  t.same(w.stopped, ['first'], 'the plugin before it is stopped');
});

t.test('two broken modules: the first in chain order is reported (not whichever compiled first), the other rejection is not unhandled', async (t) => {
  const mods = await modules();
  let unhandled: unknown = null;
  const onUnhandled = (reason: unknown) => (unhandled = reason);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => process.off('unhandledRejection', onUnhandled));
  const w = await watchVms(t, () =>
    create(
      [
        { name: 'late', url: 'no-marker', phase: 'STATS' },
        { name: 'early', url: 'unknown-import', phase: 'AUTHN' },
        { name: 'good', url: 'good', phase: 'STATS', pluginConfig: 'ok' },
      ],
      mods,
    ),
  );
  await t.rejects(w.result, { code: 'WASM_IMPORT_UNKNOWN', message: /^plugin early: / });
  t.same(w.started, []);
  await new Promise((r) => setTimeout(r, 50));
  t.equal(unhandled, null, 'no unhandled rejection from the plugins not awaited');
});

t.test('a configure failure: PLUGIN_CONFIGURE_FAILED for that plugin; it and the ones before it are stopped, none after it started', async (t) => {
  const mods = await modules();
  const w = await watchVms(t, () =>
    create(
      [
        { name: 'first', url: 'good', pluginConfig: 'ok' },
        { name: 'refuses', url: 'good', pluginConfig: 'fail' },
        { name: 'third', url: 'good', pluginConfig: 'ok' },
      ],
      mods,
    ),
  );
  await t.rejects(w.result, { code: 'PLUGIN_CONFIGURE_FAILED', message: /adapter refuses refused its configuration/ });
  t.same(w.started, ['first', 'refuses']);
  t.same(w.stopped.sort(), ['first', 'refuses']);
});

t.test('loadPlugin (reload) still loads one plugin on its own', async (t) => {
  const host = await create([], await modules());
  t.teardown(() => host.close());
  const lp = await host.loadPlugin({ name: 'later', url: 'good', pluginConfig: 'ok' });
  t.equal(lp.adapter.healthy, true);
  t.equal(lp.module.abiVersion, '0.2.1');
  lp.adapter.stop();
  await t.rejects(host.loadPlugin({ name: 'bad', url: 'no-marker' }), { code: 'WASM_ABI_MISSING', message: /^plugin bad: / });
});
