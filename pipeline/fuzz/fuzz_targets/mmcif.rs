//! The mmCIF reader (tokenizer, loops, _atom_site rows) on arbitrary text.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fusionprot_pipeline::structure::parse_text(fusionprot_pipeline::structure::Format::Mmcif, data);
});
