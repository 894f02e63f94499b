//! A component built against a future contract version (`tesseract:component@0.2.0`): the host
//! must refuse it with a message naming both versions, not fail on a missing export.
//!
//! Raw wit-bindgen exports are symbols with `:` and `/` in their names, which a native
//! linker refuses, so the crate is empty off wasm32.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    inline: r#"
package tesseract:component@0.2.0;

interface tesseract {
    metadata: func() -> string;
}

world later {
    export tesseract;
}
"#,
    world: "later",
});

struct Future;

impl exports::tesseract::component::tesseract::Guest for Future {
    fn metadata() -> String {
        "from the future".into()
    }
}

export!(Future);
