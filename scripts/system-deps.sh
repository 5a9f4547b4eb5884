#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks start by themselves:
#   redis-server  (global quota mode, started on a free loopback port by the tests; also a
#                 3-master Redis Cluster and a Sentinel, in --cluster-enabled / --sentinel mode)
#   redis-tools   (redis-cli: `redis-cli --cluster create` joins the test cluster)
#   prometheus    (promtool check metrics, and a real scrape in the telemetry tests)
#   wrk           (constant-rate latency runs in the benchmark)
#   clang, lld    (the portability suite compiles a C filter for wasm32 with clang and
#                 wasm-ld at test time: test/portability/native-build.ts)
#   libc++-dev-wasm32, libclang-rt-dev-wasm32 (and wasi-libc, which they pull in)
#                 (and a C++ filter for wasm32-wasi with libc++ and wasi-libc)
#   rustc, libstd-rust-dev-wasm32 (and a Rust filter for wasm32-wasi; /usr/bin/rustc is
#                 used by path, a rustup toolchain on PATH need not have the wasm32 std)
# Nothing is started here and nothing is installed when all are present.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v clang >/dev/null 2>&1 || need+=(clang)
command -v wasm-ld >/dev/null 2>&1 || need+=(lld)
[ -f /usr/lib/wasm32-wasi/libc++.a ] || need+=(libc++-dev-wasm32)
compgen -G '/usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a' >/dev/null || need+=(libclang-rt-dev-wasm32)
[ -x /usr/bin/rustc ] || need+=(rustc)
[ -d /usr/lib/rustlib/wasm32-wasi ] || need+=(libstd-rust-dev-wasm32)
if [ ${#need[@]} -eq 0 ]; then
  echo "system-deps: redis-server, redis-cli, promtool, wrk, clang, wasm-ld, rustc and the wasm32 libraries are installed"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "system-deps: need root to install: ${need[*]} (run: apt-get install -y ${need[*]})" >&2
    exit 1
  fi
fi
echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian's prometheus package may try to start a service; tests start their own.
$SUDO systemctl stop prometheus >/dev/null 2>&1 || true
echo "system-deps: done"
