// TLS and mutual TLS between the proxy and the adapter server (grpc-js credentials),
// and the refusal to speak plaintext off loopback unless the config allows it.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import type { MixerConfig } from '../../host/src/index.js';
import { fixtureDir, request, startRemoteProxy, startServer } from './helpers.js';
import { startDemoUpstream } from '../../host/src/index.js';

/** A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate, made with openssl. */
function makePki(dir: string): void {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=wasm-mixer test CA', '-keyout', 'ca.key', '-out', 'ca.pem');
  for (const [name, ext] of [
    ['server', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth'],
    ['client', 'extendedKeyUsage=clientAuth'],
    ['stranger', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    execFileSync('sh', ['-c', `printf '${ext}\\n' > ${name}.ext`], { cwd: dir });
    if (name === 'stranger') {
      // Signed by its own key, not by the CA: mutual TLS must refuse it.
      ssl('x509', '-req', '-in', `${name}.csr`, '-signkey', `${name}.key`, '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
    } else {
      ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
    }
  }
}

t.test('mutual TLS: the proxy with the CA-signed client certificate is served; others are refused', async (t) => {
  const dir = await fixtureDir();
  makePki(dir);
  const upstream = await startDemoUpstream(0);
  t.teardown(() => upstream.close());
  const base: MixerConfig = {
    logLevel: 'critical',
    routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }],
    plugins: [{ name: 'spec', url: 'spec.wasm', pluginConfig: 'ok', failStrategy: 'FAIL_CLOSE' }],
  };
  const server = await startServer(
    { ...base, remote: { plugins: 'all', tls: { server: { cert: 'server.pem', key: 'server.key', clientCa: 'ca.pem' } } } } as MixerConfig,
    { baseDir: dir },
  );
  t.teardown(() => server.close());
  const proxyWith = async (client: Record<string, string>) => {
    const p = await startRemoteProxy({ ...base, remote: { address: server.address, plugins: 'all', timeoutMs: 2000, tls: { client } } } as MixerConfig, { baseDir: dir });
    t.teardown(() => p.close());
    return p;
  };

  const good = await proxyWith({ ca: 'ca.pem', cert: 'client.pem', key: 'client.key' });
  const ok = await request(good.port, '/hello');
  t.equal(ok.status, 200, 'served over mutual TLS');
  t.match(ok.body, /"x-spec-filter":"seen"/, 'the adapter in the server acted');
  t.equal((await request(good.port, '/deny')).status, 403);

  const noCert = await proxyWith({ ca: 'ca.pem' });
  t.equal((await request(noCert.port, '/hello')).status, 503, 'a client without a certificate is refused (fail closed)');

  const stranger = await proxyWith({ ca: 'ca.pem', cert: 'stranger.pem', key: 'stranger.key' });
  t.equal((await request(stranger.port, '/hello')).status, 503, 'a certificate not signed by the CA is refused');
});

t.test('plaintext off loopback is refused unless remote.insecure says so', async (t) => {
  const dir = await fixtureDir();
  const config = { logLevel: 'critical', plugins: [{ name: 'spec', url: 'spec.wasm', pluginConfig: 'ok' }], remote: { plugins: 'all' } } as MixerConfig;
  await t.rejects(startServer(config, { baseDir: dir, listen: '0.0.0.0:0' }), { code: 'CONFIG_INVALID', message: /plaintext gRPC on 0\.0\.0\.0:0, which is not a loopback address/ });
  const allowed = await startServer({ ...config, remote: { plugins: 'all', insecure: true } } as MixerConfig, { baseDir: dir, listen: '0.0.0.0:0' });
  t.ok(allowed.address, 'starts when insecure: true');
  await allowed.close();
  const unix = await startServer(config, { baseDir: dir, listen: `unix:${join(dir, 'mixer.sock')}` });
  t.ok(unix.address.startsWith('unix:'), 'a unix socket needs no TLS');
  await unix.close();
  await t.rejects(
    startRemoteProxy({ ...config, routes: [{ name: 'r', upstream: 'http://127.0.0.1:1' }], remote: { address: '10.0.0.1:9091', plugins: 'all' } } as MixerConfig, { baseDir: dir }),
    { code: 'CONFIG_INVALID', message: /the proxy would speak plaintext gRPC on 10\.0\.0\.1:9091/ },
  );
});
