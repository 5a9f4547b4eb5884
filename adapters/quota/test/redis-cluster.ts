// A real Redis Cluster for the tests: Debian's redis-server with cluster-enabled yes,
// three masters and one replica each on free loopback ports, joined with
// `redis-cli --cluster create`. Everything is removed by stop().

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, sleep } from './helpers.js';

const run = promisify(execFile);

export interface RedisCluster {
  /** redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3 (the masters as seeds) */
  readonly url: string;
  readonly ports: number[];
  cli(port: number, ...args: string[]): Promise<string>;
  /** The master that owns `key`'s slot and one of its replicas. */
  ownerOf(key: string): Promise<{ master: number; replica: number; slot: number }>;
  /** SIGKILL the redis-server on `port` (an unplanned failure). */
  kill(port: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedisCluster(masters = 3, replicasPerMaster = 1): Promise<RedisCluster> {
  const n = masters * (1 + replicasPerMaster);
  const dir = await mkdtemp(join(tmpdir(), 'quota-redis-cluster-'));
  const ports: number[] = [];
  const procs: ChildProcess[] = [];
  const cli = async (port: number, ...args: string[]) => (await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 20_000 })).stdout.trim();
  const stop = async () => {
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((r) => {
            if (p.exitCode !== null || p.signalCode !== null) return r();
            p.once('exit', () => r());
            p.kill('SIGKILL');
          }),
      ),
    );
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < n; i++) {
      const port = await freePort();
      ports.push(port);
      procs.push(
        spawn(
          'redis-server',
          [
            '--bind', '127.0.0.1', '--port', String(port), '--daemonize', 'no', '--save', '', '--appendonly', 'no',
            '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '2000',
            '--dbfilename', `dump-${port}.rdb`, '--dir', dir,
          ],
          { stdio: 'ignore' },
        ),
      );
    }
    for (const p of ports) {
      for (let i = 0; ; i++) {
        if ((await cli(p, 'PING').catch(() => '')) === 'PONG') break;
        if (i > 200) throw new Error(`redis-server on ${p} did not start`);
        await sleep(25);
      }
    }
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicasPerMaster), '--cluster-yes'], { timeout: 30_000 });
    // Every node agrees the cluster is up and every replica is attached.
    for (let i = 0; ; i++) {
      const states = await Promise.all(ports.map((p) => cli(p, 'CLUSTER', 'INFO').catch(() => '')));
      const ok = states.every((s) => /cluster_state:ok/.test(s) && /cluster_slots_ok:16384/.test(s));
      const replicasUp = (await Promise.all(ports.map((p) => cli(p, 'ROLE').catch(() => '')))).filter((r) => r.startsWith('slave') && /connected/.test(r)).length;
      if (ok && replicasUp === masters * replicasPerMaster) break;
      if (i > 300) throw new Error('the Redis Cluster did not come up');
      await sleep(50);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const masterPorts = ports.slice(0, masters);
  return {
    url: `redis+cluster://${masterPorts.map((p) => `127.0.0.1:${p}`).join(',')}`,
    ports,
    cli,
    async ownerOf(key) {
      const slot = Number(await cli(ports[0]!, 'CLUSTER', 'KEYSLOT', key));
      // CLUSTER NODES: id addr flags master-id ping pong epoch state slots...
      const lines = (await cli(ports[0]!, 'CLUSTER', 'NODES')).split('\n').map((l) => l.trim().split(' '));
      const owner = lines.find((f) => f[2]!.includes('master') && f.slice(8).some((r) => {
        const [a, b] = r.split('-').map(Number);
        return b === undefined ? a === slot : slot >= a! && slot <= b;
      }));
      if (owner === undefined) throw new Error(`no master owns slot ${slot}`);
      const replica = lines.find((f) => f[3] === owner[0] && f[2]!.includes('slave'));
      if (replica === undefined) throw new Error(`the master of slot ${slot} has no replica`);
      const portOf = (f: string[]) => Number(f[1]!.split('@')[0]!.split(':')[1]);
      return { master: portOf(owner), replica: portOf(replica), slot };
    },
    kill: (port) =>
      new Promise<void>((r) => {
        const p = procs[ports.indexOf(port)]!;
        if (p.exitCode !== null || p.signalCode !== null) return r();
        p.once('exit', () => r());
        p.kill('SIGKILL');
      }),
    stop,
  };
}
