#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| heir_fuzz_doors::mesh_backfill(data));
