//! The precompiled cache: the first load of a `.wasm` compiles and stores it (`Miss`), the
//! next loads find it (`Hit`), also from a new engine; without a cache a load says `Disabled`.

use std::path::Path;

use serde_json::json;
use tesseract_wasm::cache::CacheOutcome;
use tesseract_wasm::component::Tesseract;
use tesseract_wasm_tests::SANDBOX_PROBE;

use crate::support::*;

fn load_with(engine: &tesseract_wasm::engine::Engine) -> std::sync::Arc<Tesseract> {
    Tesseract::load(engine, Path::new(SANDBOX_PROBE)).expect("load the probe")
}

/// The loaded component answers, wherever its code came from.
fn assert_serves(component: &Tesseract) {
    let out = component
        .call_apply(tree(component, json!({ "mode": "ok", "n": 4 })))
        .expect("apply");
    assert_eq!(scalar_of(array(&out, "x")), 4.0);
}

#[test]
fn second_load_hits_the_precompiled_cache() {
    let dir = tempfile::tempdir().expect("a temporary cache directory");
    let cache_dir = dir.path().join("cache");
    let engine = new_engine(test_limits(), Some(cache_dir.clone()));

    let first = load_with(&engine);
    assert_eq!(first.cache_outcome(), CacheOutcome::Miss);
    let entries = std::fs::read_dir(&cache_dir)
        .expect("the miss created the cache directory")
        .count();
    assert_eq!(entries, 1, "one compiled entry is stored");

    let second = load_with(&engine);
    assert_eq!(second.cache_outcome(), CacheOutcome::Hit);
    assert_serves(&first);
    assert_serves(&second);

    // The entry outlives the engine: a new engine with the same configuration uses it.
    drop((first, second, engine));
    let engine = new_engine(test_limits(), Some(cache_dir.clone()));
    let third = load_with(&engine);
    assert_eq!(third.cache_outcome(), CacheOutcome::Hit);
    assert_serves(&third);
    assert_eq!(
        std::fs::read_dir(&cache_dir)
            .expect("cache directory")
            .count(),
        1,
        "hits store nothing new"
    );
}

#[test]
fn load_without_a_cache_reports_disabled() {
    let engine = new_engine(test_limits(), None);
    for _ in 0..2 {
        let component = load_with(&engine);
        assert_eq!(component.cache_outcome(), CacheOutcome::Disabled);
        assert_serves(&component);
    }
}
