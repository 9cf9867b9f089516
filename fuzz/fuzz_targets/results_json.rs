#![no_main]
//! cargo-fuzz target `results_json`: caplab_fuzz::targets::results_json (crates/fuzz/src/targets/).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    caplab_fuzz::targets::results_json(data);
});
