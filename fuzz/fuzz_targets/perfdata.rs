#![no_main]

use libfuzzer_sys::fuzz_target;
use rprof::perfdata::format::feature;
use rprof::perfdata::PerfFile;
use rprof::symbolize::SymbolTable;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = PerfFile::from_bytes(data.to_vec()) else {
        return;
    };
    let _ = file.sorted_records();
    if let Some(section) = file.feature(feature::RPROF_SYMBOLS) {
        let _ = SymbolTable::decode(section);
    }
});
