//! Fuzz target `jwt_claims`: runs `checks::jwt_claims` (see `fuzz/checks.rs` for the invariant).
#![no_main]

#[path = "../checks.rs"]
#[allow(dead_code)]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::jwt_claims(data));
