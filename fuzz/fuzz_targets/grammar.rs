//! The region and manifest grammar: parsing never panics, and what parses
//! prints back to text that parses to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use photodeid::region::{glob_match, parse_manifest, RegionSpec};

fn round_trips(spec: &RegionSpec) {
    let text = spec.to_string();
    let back: RegionSpec = text
        .parse()
        .unwrap_or_else(|e| panic!("{text:?} (printed from a parsed region) fails: {e}"));
    assert_eq!(back.to_string(), text, "printing is not stable");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = text.parse::<RegionSpec>() {
        round_trips(&spec);
    }
    if let Ok(rows) = parse_manifest(text) {
        for row in &rows {
            round_trips(&row.region);
            let _ = glob_match(&row.pattern, text);
        }
    }
    if let Some((pattern, path)) = text.split_once('\n') {
        let _ = glob_match(pattern, path);
    }
});
