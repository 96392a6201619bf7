//! The PDB reader on arbitrary text: an error is fine, a panic is a bug.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fusionprot_pipeline::structure::parse_text(fusionprot_pipeline::structure::Format::Pdb, data);
});
