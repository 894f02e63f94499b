//! Loading errors: every way a file can fail to be a Tesseract gets its own clear message.

use tesseract_wasm::component::{LoadError, Tesseract};
use tesseract_wasm_tests::{NOT_A_TESSERACT, WRONG_VERSION};

use crate::support::engine;

fn load_error(path: &std::path::Path) -> LoadError {
    match Tesseract::load(engine(), path) {
        Ok(_) => panic!("{} loaded, but should not", path.display()),
        Err(e) => e,
    }
}

#[test]
fn a_missing_file_is_a_read_error() {
    let e = load_error(std::path::Path::new("/nonexistent/tesseract.wasm"));
    assert!(matches!(e, LoadError::Read { .. }), "{e:?}");
    assert!(e.to_string().contains("/nonexistent/tesseract.wasm"), "{e}");
}

#[test]
fn a_text_file_is_not_wasm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notes.wasm");
    std::fs::write(&path, "not wasm at all").expect("write");
    let e = load_error(&path);
    assert!(matches!(e, LoadError::NotWasm { .. }), "{e:?}");
}

#[test]
fn a_core_module_says_to_build_for_wasip2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("core.wasm");
    // The smallest valid core module: magic and version 1.
    std::fs::write(&path, b"\0asm\x01\0\0\0").expect("write");
    let e = load_error(&path);
    assert!(matches!(e, LoadError::CoreModule { .. }), "{e:?}");
    assert!(e.to_string().contains("wasm32-wasip2"), "{e}");
}

#[test]
fn another_contract_version_is_named() {
    let e = load_error(std::path::Path::new(WRONG_VERSION));
    assert!(matches!(e, LoadError::WrongVersion { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("tesseract:component@0.2.0") && text.contains("0.1.0"),
        "{text}"
    );
}

#[test]
fn a_component_that_is_not_a_tesseract_lists_its_exports() {
    let e = load_error(std::path::Path::new(NOT_A_TESSERACT));
    assert!(matches!(e, LoadError::NotATesseract { .. }), "{e:?}");
    assert!(e.to_string().contains("example:other/greeter@1.0.0"), "{e}");
}
