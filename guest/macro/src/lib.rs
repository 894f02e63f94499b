//! The `export!` macro of `tesseract-guest`.
//!
//! `wit_bindgen::generate!` needs one world, and there is no world per combination of the six
//! optional capabilities. So this macro writes the world inline, listing `tesseract` plus the
//! interfaces the author named, hands it to `generate!` (through the SDK's re-export, so author
//! crates depend on neither WIT files nor wit-bindgen), and implements each generated `Guest`
//! trait by forwarding to the SDK's glue. The shared `types` interface is mapped onto the SDK's
//! own bindings, so one set of conversions serves every combination.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, Token, Type};

/// The contract, compiled into the macro so expansions never read files at the author's site.
/// The file is this package's copy of the workspace's `wit/tesseract.wit`, so the package
/// builds on its own (vendored, packaged, offline); a test keeps the two identical.
const WIT: &str = include_str!("../wit/tesseract.wit");

/// An optional capability: its name in `export!`, its WIT interface, the SDK trait and the
/// exported function.
struct Capability {
    name: &'static str,
    interface: &'static str,
    module: &'static str,
    trait_name: &'static str,
    function: &'static str,
}

const CAPABILITIES: [Capability; 6] = [
    Capability {
        name: "jacobian",
        interface: "jacobian",
        module: "jacobian",
        trait_name: "Jacobian",
        function: "jacobian",
    },
    Capability {
        name: "jvp",
        interface: "jvp",
        module: "jvp",
        trait_name: "Jvp",
        function: "jacobian_vector_product",
    },
    Capability {
        name: "vjp",
        interface: "vjp",
        module: "vjp",
        trait_name: "Vjp",
        function: "vector_jacobian_product",
    },
    Capability {
        name: "abstract_eval",
        interface: "abstract-eval",
        module: "abstract_eval",
        trait_name: "AbstractEval",
        function: "abstract_eval",
    },
    Capability {
        name: "batched_jvp",
        interface: "batched-jvp",
        module: "batched_jvp",
        trait_name: "BatchedJvp",
        function: "batched_jacobian_vector_product",
    },
    Capability {
        name: "batched_vjp",
        interface: "batched-vjp",
        module: "batched_vjp",
        trait_name: "BatchedVjp",
        function: "batched_vector_jacobian_product",
    },
];

struct ExportInput {
    ty: Type,
    capabilities: Vec<Ident>,
}

impl Parse for ExportInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let ty: Type = input.parse()?;
        let mut capabilities = Vec::new();
        if input.parse::<Option<Token![:]>>()?.is_some() {
            let list = Punctuated::<Ident, Token![,]>::parse_terminated(input)?;
            capabilities.extend(list);
        } else if !input.is_empty() {
            return Err(input.error("expected `Type` or `Type: capability, ...`"));
        }
        Ok(ExportInput { ty, capabilities })
    }
}

/// Exports a type as a Tesseract component with exactly the capabilities listed.
///
/// ```text
/// tesseract_guest::export!(Rosenbrock: jacobian, jvp, vjp, abstract_eval);
/// ```
///
/// Capabilities: `jacobian`, `jvp`, `vjp`, `abstract_eval`, `batched_jvp`, `batched_vjp`.
/// Each requires the trait of the same name. Off wasm32 only the trait bounds are checked.
/// The SDK's own bindings of the shared `types` interface, from the same WIT as [`export!`]'s
/// (so `tesseract-guest` carries no copy of the file). For `tesseract-guest` only.
#[doc(hidden)]
#[proc_macro]
pub fn __types_bindings(input: TokenStream) -> TokenStream {
    if !input.is_empty() {
        return syn::Error::new(Span::call_site(), "`__types_bindings!` takes no arguments")
            .to_compile_error()
            .into();
    }
    let wit = syn::LitStr::new(WIT, Span::call_site());
    quote! {
        ::wit_bindgen::generate!({
            inline: #wit,
            world: "types-only",
            generate_unused_types: true,
        });
    }
    .into()
}

#[proc_macro]
pub fn export(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as ExportInput);
    match expand(input) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(input: ExportInput) -> syn::Result<proc_macro2::TokenStream> {
    let mut chosen: Vec<&Capability> = Vec::new();
    for ident in &input.capabilities {
        let name = ident.to_string();
        let Some(cap) = CAPABILITIES.iter().find(|c| c.name == name) else {
            let known: Vec<&str> = CAPABILITIES.iter().map(|c| c.name).collect();
            return Err(syn::Error::new(
                ident.span(),
                format!(
                    "unknown capability `{name}`; expected one of: {}",
                    known.join(", ")
                ),
            ));
        };
        if chosen.iter().any(|c| c.name == cap.name) {
            return Err(syn::Error::new(
                ident.span(),
                format!("capability `{name}` is listed twice"),
            ));
        }
        chosen.push(cap);
    }

    let ty = &input.ty;
    let traits = chosen.iter().map(|c| format_ident!("{}", c.trait_name));
    let bound_check = quote! {
        const _: () = {
            fn __tesseract_assert_capabilities<T: ::tesseract_guest::Tesseract #(+ ::tesseract_guest::#traits)*>() {}
            let _ = __tesseract_assert_capabilities::<#ty>;
        };
    };

    let mut world = String::from(WIT);
    world.push_str("\nworld tesseract-export {\n  export tesseract;\n");
    for c in &chosen {
        world.push_str(&format!("  export {};\n", c.interface));
    }
    world.push_str("}\n");
    let world = syn::LitStr::new(&world, Span::call_site());

    let impls = chosen.iter().map(|c| {
        let module = format_ident!("{}", c.module);
        let function = format_ident!("{}", c.function);
        let glue = format_ident!("{}", c.name);
        let (params, args) = match c.name {
            "jacobian" => (
                quote!(a: Tree, b: Vec<String>, c: Vec<String>),
                quote!(a, b, c),
            ),
            "abstract_eval" => (quote!(a: AbstractTree), quote!(a)),
            "jvp" | "vjp" => (
                quote!(a: Tree, b: Vec<String>, c: Vec<String>, d: Vectors),
                quote!(a, b, c, d),
            ),
            _ => (
                quote!(a: Tree, b: Vec<String>, c: Vec<String>, d: Vectors, k: u32),
                quote!(a, b, c, d, k),
            ),
        };
        let ret = match c.name {
            "jacobian" => quote!(Result<JacobianBlocks, Error>),
            "abstract_eval" => quote!(Result<AbstractTree, Error>),
            _ => quote!(Result<Vectors, Error>),
        };
        quote! {
            impl exports::tesseract::component::#module::Guest for Export {
                fn #function(#params) -> #ret {
                    ::tesseract_guest::component::#glue::<super::__TesseractExported>(#args)
                }
            }
        }
    });

    Ok(quote! {
        #bound_check

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        type __TesseractExported = #ty;

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        mod __tesseract_export {
            ::tesseract_guest::component::wit_bindgen::generate!({
                inline: #world,
                world: "tesseract-export",
                with: { "tesseract:component/types@0.1.0": ::tesseract_guest::component::types },
                runtime_path: "::tesseract_guest::component::wit_bindgen::rt",
            });

            use ::tesseract_guest::component::types::{AbstractLeaf, Error, Info, Leaf, Tensor};
            #[allow(dead_code)]
            type Tree = Vec<(String, Leaf)>;
            #[allow(dead_code)]
            type Vectors = Vec<(String, Tensor)>;
            #[allow(dead_code)]
            type AbstractTree = Vec<(String, AbstractLeaf)>;
            #[allow(dead_code)]
            type JacobianBlocks = Vec<(String, String, Tensor)>;

            #[doc(hidden)]
            pub struct Export;

            impl exports::tesseract::component::tesseract::Guest for Export {
                fn metadata() -> Info {
                    ::tesseract_guest::component::metadata::<super::__TesseractExported>()
                }
                fn apply(a: Tree) -> Result<Tree, Error> {
                    ::tesseract_guest::component::apply::<super::__TesseractExported>(a)
                }
            }

            #(#impls)*

            export!(Export);
        }
    })
}

#[cfg(test)]
mod tests {
    /// The packaged copy must not drift from the workspace's canonical contract, which the
    /// host is built from.
    #[test]
    fn the_packaged_wit_is_the_workspace_one() {
        let canonical = concat!(env!("CARGO_MANIFEST_DIR"), "/../../wit/tesseract.wit");
        let canonical = std::fs::read_to_string(canonical)
            .unwrap_or_else(|e| panic!("reading {canonical}: {e}"));
        assert!(
            super::WIT == canonical,
            "guest/macro/wit/tesseract.wit differs from wit/tesseract.wit; \
             run `cp wit/tesseract.wit guest/macro/wit/tesseract.wit`"
        );
    }
}
