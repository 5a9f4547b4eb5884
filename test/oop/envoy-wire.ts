// What the tests of the Envoy-facing gRPC services share: clients generated from the
// protos in proto/ (written from the published ones), a unary call with a deadline,
// and the raw bytes of a call and its protobuf fields, to check what is on the wire.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { protoDir } from '../../host/src/oop/protos.js';

export const creds = grpc.credentials.createInsecure();

/** The generated package of `files` (paths under proto/); untyped, as grpc-js returns it. */
export function envoyPackage(files: string[]): Record<string, any> {
  const def = protoLoader.loadSync(files, { includeDirs: [protoDir()], keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  return grpc.loadPackageDefinition(def) as Record<string, any>;
}

/** One unary call on a generated client, with a 5 s deadline. */
export const call = <T>(client: any, method: string, req: object): Promise<T> =>
  new Promise((resolve, reject) => client[method](req, { deadline: Date.now() + 5000 }, (err: Error | null, res: T) => (err ? reject(err) : resolve(res))));

/** A unary call with hand-encoded request bytes; resolves with the response bytes. */
export function rawCall(address: string, path: string, bytes: Uint8Array): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const client = new grpc.Client(address, creds);
    client.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(bytes), (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res!);
    });
  });
}

/** A message's fields by number: varints as numbers, length-delimited ones as bytes. */
export function protoFields(buf: Uint8Array): Map<number, Array<number | Uint8Array>> {
  const r = protobuf.Reader.create(buf);
  const out = new Map<number, Array<number | Uint8Array>>();
  while (r.pos < r.len) {
    const tag = r.uint32();
    const v = (tag & 7) === 0 ? r.int32() : r.bytes();
    out.set(tag >>> 3, [...(out.get(tag >>> 3) ?? []), v]);
  }
  return out;
}
