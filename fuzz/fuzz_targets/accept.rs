//! The `Accept` parser: any header value either negotiates an offered format or is a 406 whose
//! body lists the offer. Never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tesseract_wire::codec::Compression;
use tesseract_wire::negotiate::{Offer, WireFormat, negotiate};

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let offer = Offer {
        formats: vec![WireFormat::Json, WireFormat::JsonBase64],
        default_format: WireFormat::Json,
        default_compression: Compression::None,
    };
    match negotiate(Some(header), &offer) {
        Ok(n) => assert!(offer.formats.contains(&n.format), "{header:?} → {n:?}"),
        Err(e) => assert!(e.body().is_object()),
    }
});
