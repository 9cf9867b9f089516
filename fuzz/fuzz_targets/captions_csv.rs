#![no_main]
//! cargo-fuzz target `captions_csv`: caplab_fuzz::targets::captions_csv (crates/fuzz/src/targets/).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    caplab_fuzz::targets::captions_csv(data);
});
