#![no_main]
//! cargo-fuzz target `meteor_norm`: caplab_fuzz::targets::meteor_norm (crates/fuzz/src/targets/).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    caplab_fuzz::targets::meteor_norm(data);
});
