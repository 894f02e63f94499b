//! A valid component that is not a Tesseract at all: the host must say so and list what it
//! exports instead.
//!
//! Raw wit-bindgen exports are symbols with `:` and `/` in their names, which a native
//! linker refuses, so the crate is empty off wasm32.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    inline: r#"
package example:other@1.0.0;

interface greeter {
    greet: func(name: string) -> string;
}

world other {
    export greeter;
}
"#,
    world: "other",
});

struct Other;

impl exports::example::other::greeter::Guest for Other {
    fn greet(name: String) -> String {
        format!("hello, {name}")
    }
}

export!(Other);
