#![no_main]
//! cargo-fuzz target `wordpiece`: caplab_fuzz::targets::wordpiece (crates/fuzz/src/targets/).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    caplab_fuzz::targets::wordpiece(data);
});
