//! Every test guest in `tests/guests` is exercised by at least one test module.

use tesseract_wasm_tests::{EXAMPLES, TEST_GUESTS};

/// The sources of the topic modules (everything in `it/` but this file and the helpers).
fn test_sources() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("it");
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("it/ is readable") {
        let path = entry.expect("it/ entry").path();
        let name = path
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".rs") && !["main.rs", "support.rs", "guests.rs"].contains(&name.as_str())
        {
            sources.push((
                name,
                std::fs::read_to_string(&path).expect("a readable test module"),
            ));
        }
    }
    sources
}

#[test]
fn every_guest_is_used_by_a_test() {
    let sources = test_sources();
    for (package, path) in TEST_GUESTS.iter().chain(EXAMPLES) {
        assert!(
            std::path::Path::new(path).is_file(),
            "{package} was not built: {path}"
        );
        let constant = package.replace('-', "_").to_uppercase();
        let users: Vec<&str> = sources
            .iter()
            .filter(|(_, src)| src.contains(&constant))
            .map(|(name, _)| name.as_str())
            .collect();
        assert!(
            !users.is_empty(),
            "no test module uses {constant} ({package})"
        );
    }
}
