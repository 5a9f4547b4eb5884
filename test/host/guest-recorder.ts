// What the ABI tests share: a guest fixture (test/fixtures/guests/abi-*.wat) in an
// AdapterHarness, and a reader for what the guest recorded in shared data under each
// observation key (its .wat header lists them).

import { AdapterHarness, type AdapterSpec, type HarnessOptions } from '../../host/testing/index.js';
import { compileGuest } from '../fixtures/guests/index.js';
import { parsePairs } from './pairs-codec.js';

/** Reads the guest's records: raw bytes, u32/u64 arrays, [u32 status][bytes] returns, serialized pairs. */
export function recorder(get: (key: string) => Uint8Array | undefined) {
  const raw = (k: string): Uint8Array => {
    const v = get(k);
    if (v === undefined) throw new Error(`guest recorded nothing under ${k}`);
    return v;
  };
  const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
  /** u32s from byte `from` on. */
  const u32s = (k: string, from = 0): number[] => {
    const b = raw(k);
    return Array.from({ length: Math.floor((b.length - from) / 4) }, (_, i) => view(b).getUint32(from + 4 * i, true));
  };
  /** A [u32 status][bytes] record. */
  const ret = (k: string) => {
    const b = raw(k);
    return { status: view(b).getUint32(0, true), text: Buffer.from(b.subarray(4)).toString('utf8'), bytes: Buffer.from(b.subarray(4)) };
  };
  /** The bytes of a [status][bytes] record whose status is OK. */
  const value = (k: string): Buffer => {
    const r = ret(k);
    if (r.status !== 0) throw new Error(`${k}: status ${r.status}`);
    return r.bytes;
  };
  return {
    raw,
    has: (k: string) => get(k) !== undefined,
    /** The record as UTF-8; `ifAbsent` (when given) for a key not recorded yet. */
    text: (k: string, ifAbsent?: string) => (ifAbsent !== undefined && get(k) === undefined ? ifAbsent : Buffer.from(raw(k)).toString('utf8')),
    u32: (k: string) => u32s(k)[0],
    u32s,
    u64s: (k: string) => Array.from({ length: raw(k).length / 8 }, (_, i) => view(raw(k)).getBigUint64(8 * i, true)),
    ret,
    value,
    /** An Envoy int64 property: 8 bytes, little-endian. */
    i64: (k: string) => {
      const b = value(k);
      if (b.length !== 8) throw new Error(`${k}: ${b.length} bytes, not 8`);
      return b.readBigInt64LE(0);
    },
    pairs: (k: string) => parsePairs(value(k)),
    /** proxy_get_status: [status, code][message]. */
    status: (k: string) => {
      const b = raw(k);
      return { status: view(b).getUint32(0, true), code: view(b).getUint32(4, true), message: Buffer.from(b.subarray(8)).toString() };
    },
  };
}

/** The guest fixture `guest` as adapter `spec.name` in a harness under VM id `vmId` (closed with `t`), and its recorder. */
export async function guestHarness(
  t: { teardown(fn: () => unknown): void },
  guest: string,
  vmId: string,
  spec: Partial<AdapterSpec> & { name: string },
  options: HarnessOptions = {},
) {
  const h = await AdapterHarness.create([{ wasm: await compileGuest(guest), ...spec, vmConfig: { vmId, ...spec.vmConfig } }], options);
  t.teardown(() => h.close());
  return { h, rec: recorder((k) => h.sharedData(vmId, k)) };
}
