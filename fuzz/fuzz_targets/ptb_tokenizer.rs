#![no_main]
//! cargo-fuzz target `ptb_tokenizer`: caplab_fuzz::targets::ptb_tokenizer (crates/fuzz/src/targets/).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    caplab_fuzz::targets::ptb_tokenizer(data);
});
