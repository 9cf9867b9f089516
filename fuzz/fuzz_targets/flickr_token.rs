#![no_main]
//! cargo-fuzz target `flickr_token`: caplab_fuzz::targets::flickr_token (crates/fuzz/src/targets/).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    caplab_fuzz::targets::flickr_token(data);
});
