#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| heir_fuzz_doors::csaf_import(data));
