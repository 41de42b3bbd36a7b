#![no_main]

use libfuzzer_sys::fuzz_target;
use rprof::aggregate::{self, ProfileOptions};
use rprof::perfdata::format::feature;
use rprof::perfdata::PerfFile;
use rprof::symbolize::SymbolTable;

// What a report does with a file, short of reading binaries.
fuzz_target!(|data: &[u8]| {
    let Ok(file) = PerfFile::from_bytes(data.to_vec()) else {
        return;
    };
    let mut profile = aggregate::profile_file(&file, &ProfileOptions::default());
    if let Some(Ok(table)) = file.feature(feature::RPROF_SYMBOLS).map(SymbolTable::decode) {
        profile.name_locations(&table);
    }
    for event in 0..profile.events.len() as u32 {
        let _ = profile.named(event);
    }
});
