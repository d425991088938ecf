//! Fuzz target `sse`: runs `checks::sse` (see `fuzz/checks.rs` for the invariant).
#![no_main]

#[path = "../checks.rs"]
#[allow(dead_code)]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::sse(data));
