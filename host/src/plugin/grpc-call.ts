// gRPC call-outs of one VM (proxy_grpc_call, proxy_grpc_stream, proxy_grpc_send,
// proxy_grpc_cancel, proxy_grpc_close) over @grpc/grpc-js, with the messages
// passed through as the module serialised them (no proto definitions needed).
//
// What the module is told, as Envoy tells it (source/extensions/common/wasm/context.cc):
//   * a unary call: proxy_on_grpc_receive with the answer, or proxy_on_grpc_close
//     with the gRPC status (message through proxy_get_status) when it failed or
//     its deadline passed; nothing else;
//   * a stream: proxy_on_grpc_receive_initial_metadata, proxy_on_grpc_receive per
//     message, proxy_on_grpc_receive_trailing_metadata, then proxy_on_grpc_close;
//   * nothing after proxy_grpc_cancel; proxy_grpc_close half-closes a stream (the
//     server's status still arrives) and cancels a unary call.
// Bounds (docs/operating.md): MAX_GRPC_CALLOUTS open calls and streams per VM,
// a deadline on every unary call (at most 60 s), messages of at most 4 MiB each
// way; everything is cancelled when the VM stops or crashes.
//
// grpc-js is imported on the first call-out, so a proxy whose modules never
// call out does not load it.

import type * as GrpcJs from '@grpc/grpc-js';
import type { HeaderPair } from '../abi/pairs.js';
import { MAX_GRPC_CALLOUTS, MAX_GRPC_MESSAGE_BYTES } from '../limits.js';

type Grpc = typeof GrpcJs;
let grpcModule: Promise<Grpc> | null = null;
const loadGrpc = (): Promise<Grpc> => (grpcModule ??= import('@grpc/grpc-js'));

export type GrpcEvent =
  | { readonly kind: 'initial_metadata'; readonly token: number; readonly metadata: HeaderPair[] }
  | { readonly kind: 'message'; readonly token: number; readonly message: Uint8Array }
  | { readonly kind: 'trailing_metadata'; readonly token: number; readonly metadata: HeaderPair[] }
  | { readonly kind: 'close'; readonly token: number; readonly status: number; readonly message: string };

export interface GrpcTarget {
  /** host:port */
  readonly address: string;
  readonly tls: boolean;
}

export interface GrpcRequest {
  readonly target: GrpcTarget;
  readonly service: string;
  readonly method: string;
  readonly metadata: readonly HeaderPair[];
}

type Stream = GrpcJs.ClientDuplexStream<Uint8Array, Uint8Array>;

interface Entry {
  readonly kind: 'call' | 'stream';
  /** Operations wait for grpc-js to load and the call to start. */
  ready: Promise<void>;
  call: GrpcJs.ClientUnaryCall | Stream | null;
  cancelled: boolean;
}

const serialize = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const deserialize = (b: Buffer): Uint8Array => b;

export class GrpcCallouts {
  private readonly clients = new Map<string, GrpcJs.Client>();
  private readonly entries = new Map<number, Entry>();
  private closed = false;

  constructor(
    private readonly deliver: (e: GrpcEvent) => void,
    private readonly newToken: () => number,
  ) {}

  get open(): number {
    return this.entries.size;
  }

  /** Starts a unary call; null when too many call-outs are open. */
  call(req: GrpcRequest, message: Uint8Array, timeoutMs: number): number | null {
    return this.start('call', req, (g, client, md, token) => {
      const path = `/${req.service}/${req.method}`;
      return client.makeUnaryRequest(path, serialize, deserialize, message, md, { deadline: Date.now() + timeoutMs }, (err, value) => {
        if (this.closed || !this.entries.delete(token)) return;
        if (err !== null || value === undefined) {
          const e = err as GrpcJs.ServiceError | null;
          return this.deliver({ kind: 'close', token, status: e?.code ?? g.status.INTERNAL, message: e?.details ?? 'no response message' });
        }
        this.deliver({ kind: 'message', token, message: value });
      });
    });
  }

  /** Opens a bidirectional stream; null when too many call-outs are open. */
  stream(req: GrpcRequest): number | null {
    return this.start('stream', req, (_g, client, md, token) => {
      const s = client.makeBidiStreamRequest(`/${req.service}/${req.method}`, serialize, deserialize, md, {});
      s.on('metadata', (m: GrpcJs.Metadata) => this.live(token) && this.deliver({ kind: 'initial_metadata', token, metadata: toPairs(m) }));
      s.on('data', (m: Uint8Array) => this.live(token) && this.deliver({ kind: 'message', token, message: m }));
      s.on('error', () => {}); // the status event below carries the same failure
      s.on('status', (st: GrpcJs.StatusObject) => {
        if (!this.live(token)) return;
        this.deliver({ kind: 'trailing_metadata', token, metadata: toPairs(st.metadata) });
        if (!this.entries.delete(token)) return;
        this.deliver({ kind: 'close', token, status: st.code, message: st.details });
      });
      return s;
    });
  }

  /** proxy_grpc_send: false for an unknown (or unary) token. */
  send(token: number, message: Uint8Array, endStream: boolean): boolean {
    const e = this.entries.get(token);
    if (e === undefined || e.kind !== 'stream') return false;
    const copy = message.slice();
    e.ready = e.ready.then(() => {
      const s = e.call as Stream | null;
      if (s === null || e.cancelled) return;
      s.write(copy);
      if (endStream) s.end();
    });
    return true;
  }

  /** proxy_grpc_cancel: no callback follows. */
  cancel(token: number): boolean {
    const e = this.entries.get(token);
    if (e === undefined) return false;
    this.entries.delete(token);
    e.cancelled = true;
    void e.ready.then(() => e.call?.cancel());
    return true;
  }

  /** proxy_grpc_close: half-closes a stream (its status still arrives); cancels a unary call. */
  close(token: number): boolean {
    const e = this.entries.get(token);
    if (e === undefined) return false;
    if (e.kind === 'call') return this.cancel(token);
    e.ready = e.ready.then(() => {
      if (!e.cancelled) (e.call as Stream | null)?.end();
    });
    return true;
  }

  /** The VM stopped or crashed: cancel everything, close the channels. */
  closeAll(): void {
    this.closed = true;
    for (const token of [...this.entries.keys()]) this.cancel(token);
    if (this.clients.size === 0) return;
    void loadGrpc().then(() => {
      for (const c of this.clients.values()) c.close();
      this.clients.clear();
    });
  }

  private live(token: number): boolean {
    return !this.closed && this.entries.has(token);
  }

  private start(
    kind: Entry['kind'],
    req: GrpcRequest,
    open: (g: Grpc, client: GrpcJs.Client, md: GrpcJs.Metadata, token: number) => GrpcJs.ClientUnaryCall | Stream,
  ): number | null {
    if (this.closed || this.entries.size >= MAX_GRPC_CALLOUTS) return null;
    const token = this.newToken();
    const entry: Entry = { kind, ready: Promise.resolve(), call: null, cancelled: false };
    this.entries.set(token, entry);
    entry.ready = loadGrpc().then(
      (g) => {
        if (entry.cancelled || this.closed) return;
        try {
          entry.call = open(g, this.client(g, req.target), toMetadata(g, req.metadata), token);
        } catch (err) {
          if (this.entries.delete(token)) this.deliver({ kind: 'close', token, status: g.status.INTERNAL, message: (err as Error).message });
        }
      },
      (err: Error) => {
        if (this.entries.delete(token)) this.deliver({ kind: 'close', token, status: 13, message: `gRPC is not available: ${err.message}` });
      },
    );
    return token;
  }

  private client(g: Grpc, t: GrpcTarget): GrpcJs.Client {
    const key = `${t.tls ? 's' : 'p'}:${t.address}`;
    let c = this.clients.get(key);
    if (c === undefined) {
      const creds = t.tls ? g.credentials.createSsl() : g.credentials.createInsecure();
      c = new g.Client(t.address, creds, {
        'grpc.max_receive_message_length': MAX_GRPC_MESSAGE_BYTES,
        'grpc.max_send_message_length': MAX_GRPC_MESSAGE_BYTES,
      });
      this.clients.set(key, c);
    }
    return c;
  }
}

function toMetadata(g: Grpc, pairs: readonly HeaderPair[]): GrpcJs.Metadata {
  const md = new g.Metadata();
  for (const [k, v] of pairs) {
    const key = k.toLowerCase();
    if (key.startsWith(':') || key === 'content-type' || key === 'te') continue;
    if (key.endsWith('-bin')) md.add(key, Buffer.from(v, 'latin1'));
    else md.add(key, v);
  }
  return md;
}

function toPairs(md: GrpcJs.Metadata): HeaderPair[] {
  const out: HeaderPair[] = [];
  for (const key of Object.keys(md.getMap())) {
    for (const v of md.get(key)) out.push([key, typeof v === 'string' ? v : Buffer.from(v).toString('latin1')]);
  }
  return out;
}
