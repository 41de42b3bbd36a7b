#![no_main]

use libfuzzer_sys::fuzz_target;
use rprof::symbolize::SymbolTable;

fuzz_target!(|data: &[u8]| {
    let Ok(table) = SymbolTable::decode(data) else {
        return;
    };
    // What decodes encodes to a table that decodes the same, unless it
    // shrank so much (duplicate entries dropped) that its strings no longer
    // fit the memory budget of its smaller size.
    match SymbolTable::decode(&table.encode()) {
        Ok(again) => {
            assert_eq!(again.len(), table.len());
            assert_eq!(again.modules(), table.modules());
        }
        Err(error) => assert!(error.to_string().contains("bytes in memory"), "{error}"),
    }
});
