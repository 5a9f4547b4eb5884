// A Proxy-Wasm filter in Rust, written for this test suite directly against the
// ABI (proxy-wasm/spec abi-versions/v0.2.1; no SDK: the Rust SDK is on crates.io,
// which this project cannot reach). Compiled at test time by Debian's rustc for
// wasm32-wasi as a cdylib (native-build.ts), which gives a module of the shape
// Rust SDK builds have: proxy_on_memory_allocate only (no malloc), Rust's own
// allocator, memory/__heap_base/__data_end exports, std's WASI imports (random_get
// for HashMap, fd_write, environ_*, proc_exit), contexts in thread_local HashMaps,
// and the root context factory set in _initialize (the SDK's main! entry).
//   root id ""  request: x-rust-config: <plugin configuration>;
//               an x-rust-deny header -> 429 "denied by rust filter" [x-rust-reason: <its value>]
//               response: x-rust: rust; on_configure logs through proxy_log
// Another root id gets no contexts: its callbacks do nothing.
use std::cell::RefCell;
use std::collections::HashMap;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, msg: *const u8, size: usize) -> u32;
    fn proxy_get_property(path: *const u8, size: usize, ret: *mut *mut u8, ret_size: *mut usize) -> u32;
    fn proxy_get_buffer_bytes(t: u32, start: usize, max: usize, ret: *mut *mut u8, ret_size: *mut usize) -> u32;
    fn proxy_get_header_map_value(t: u32, key: *const u8, key_size: usize, ret: *mut *mut u8, ret_size: *mut usize) -> u32;
    fn proxy_add_header_map_value(t: u32, key: *const u8, key_size: usize, value: *const u8, value_size: usize) -> u32;
    fn proxy_send_local_response(status: u32, details: *const u8, details_size: usize, body: *const u8, body_size: usize,
        headers: *const u8, headers_size: usize, grpc_status: i32) -> u32;
}

const OK: u32 = 0;
const CONTINUE: u32 = 0;
const PAUSE: u32 = 1;
const LOG_INFO: u32 = 2;
const PLUGIN_CONFIGURATION: u32 = 7;
const REQUEST_HEADERS: u32 = 0;
const RESPONSE_HEADERS: u32 = 2;

struct Root {
    config: String,
}

thread_local! {
    static FACTORIES: RefCell<HashMap<String, fn() -> Root>> = RefCell::new(HashMap::new());
    static ROOTS: RefCell<HashMap<u32, Root>> = RefCell::new(HashMap::new());
    // Stream context id -> its root context id; only streams of a registered root.
    static STREAMS: RefCell<HashMap<u32, u32>> = RefCell::new(HashMap::new());
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut v: Vec<u8> = Vec::with_capacity(size);
    let p = v.as_mut_ptr();
    std::mem::forget(v);
    p
}

// Takes ownership of a buffer the host allocated through proxy_on_memory_allocate.
fn owned(ptr: *mut u8, size: usize) -> Vec<u8> {
    if ptr.is_null() { Vec::new() } else { unsafe { Vec::from_raw_parts(ptr, size, size) } }
}

fn returned(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Option<Vec<u8>> {
    let (mut ptr, mut size) = (std::ptr::null_mut(), 0usize);
    if call(&mut ptr, &mut size) != OK { return None; }
    Some(owned(ptr, size))
}

fn header(map: u32, name: &str) -> Option<String> {
    returned(|p, s| unsafe { proxy_get_header_map_value(map, name.as_ptr(), name.len(), p, s) })
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}

fn add_header(map: u32, name: &str, value: &str) {
    unsafe { proxy_add_header_map_value(map, name.as_ptr(), name.len(), value.as_ptr(), value.len()) };
}

fn log(msg: &str) {
    unsafe { proxy_log(LOG_INFO, msg.as_ptr(), msg.len()) };
}

// Spec "Serialization": u32 count, u32 (key, value) lengths, each key and value NUL-terminated.
fn serialize_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(id: u32, parent: u32) {
    if parent == 0 {
        let root_id = returned(|p, s| unsafe { proxy_get_property("plugin_root_id".as_ptr(), 14, p, s) }).unwrap_or_default();
        let factory = FACTORIES.with(|f| f.borrow().get(&*String::from_utf8_lossy(&root_id)).copied());
        if let Some(make) = factory {
            ROOTS.with(|r| r.borrow_mut().insert(id, make()));
        }
    } else if ROOTS.with(|r| r.borrow().contains_key(&parent)) {
        STREAMS.with(|s| s.borrow_mut().insert(id, parent));
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(id: u32, size: usize) -> u32 {
    ROOTS.with(|r| {
        if let Some(root) = r.borrow_mut().get_mut(&id) {
            let bytes = returned(|p, s| unsafe { proxy_get_buffer_bytes(PLUGIN_CONFIGURATION, 0, size, p, s) }).unwrap_or_default();
            root.config = String::from_utf8_lossy(&bytes).into_owned();
            log(&format!("rust filter configured: {}", root.config));
        }
    });
    1
}

fn root_config(stream: u32) -> Option<String> {
    let root = STREAMS.with(|s| s.borrow().get(&stream).copied())?;
    ROOTS.with(|r| r.borrow().get(&root).map(|root| root.config.clone()))
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(id: u32, _headers: u32, _eos: u32) -> u32 {
    let config = match root_config(id) {
        Some(c) => c,
        None => return CONTINUE,
    };
    if let Some(reason) = header(REQUEST_HEADERS, "x-rust-deny") {
        let headers = serialize_pairs(&[("x-rust-reason", &reason)]);
        let (details, body) = ("rust_denied", "denied by rust filter");
        unsafe {
            proxy_send_local_response(429, details.as_ptr(), details.len(), body.as_ptr(), body.len(), headers.as_ptr(), headers.len(), -1)
        };
        return PAUSE;
    }
    add_header(REQUEST_HEADERS, "x-rust-config", &config);
    CONTINUE
}

#[no_mangle]
pub extern "C" fn proxy_on_request_body(_id: u32, _size: usize, _eos: u32) -> u32 { CONTINUE }

#[no_mangle]
pub extern "C" fn proxy_on_response_headers(id: u32, _headers: u32, _eos: u32) -> u32 {
    if root_config(id).is_some() { add_header(RESPONSE_HEADERS, "x-rust", "rust"); }
    CONTINUE
}

#[no_mangle]
pub extern "C" fn proxy_on_done(_id: u32) -> u32 { 1 }

#[no_mangle]
pub extern "C" fn proxy_on_delete(id: u32) {
    if STREAMS.with(|s| s.borrow_mut().remove(&id)).is_none() {
        ROOTS.with(|r| r.borrow_mut().remove(&id));
    }
}

// The Rust SDK's main! entry: runs once after instantiation and sets the factories.
#[no_mangle]
pub extern "C" fn _initialize() {
    FACTORIES.with(|f| f.borrow_mut().insert(String::new(), || Root { config: String::new() }));
}
