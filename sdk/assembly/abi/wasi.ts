// The only WASI function the SDK may use: random_get, for seeding Math.random
// (routed with `--use seed=mixer_seed`). It is imported only when the adapter
// actually uses Math.random.

@external("wasi_snapshot_preview1", "random_get")
export declare function random_get(buf: usize, bufLen: usize): u16;
