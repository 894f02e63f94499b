//! The tree-path parser: a path that parses formats back to a path that parses to the same
//! segments, and its template parses as a template. Never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tesseract_model::path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(segments) = path::parse(text) {
        let formatted = path::format(&segments);
        let again = path::parse(&formatted).expect("a formatted path parses");
        assert_eq!(again, segments, "{text:?} → {formatted:?}");
        let template = path::template(&segments);
        let _ = path::parse_template(&template);
    }
});
