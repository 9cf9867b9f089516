#![no_main]
//! cargo-fuzz target `vocab`: caplab_fuzz::targets::vocab (crates/fuzz/src/targets/).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    caplab_fuzz::targets::vocab(data);
});
