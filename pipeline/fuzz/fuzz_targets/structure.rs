//! The whole entry point: gzip detection, format detection, both readers, the protein check.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fusionprot_pipeline::structure::read_bytes(data);
});
