#![no_main]
//! cargo-fuzz target `karpathy`: caplab_fuzz::targets::karpathy (crates/fuzz/src/targets/).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    caplab_fuzz::targets::karpathy(data);
});
