#![no_main]
//! cargo-fuzz target `coco_annotations`: caplab_fuzz::targets::coco_annotations (crates/fuzz/src/targets/).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    caplab_fuzz::targets::coco_annotations(data);
});
