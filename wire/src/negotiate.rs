//! `Accept` negotiation for the four computational routes, as tesseract-core 1.15 does it.
//!
//! The header is a comma-separated list of media ranges with `;name=value` parameters. Ranges
//! are tried in order of `q` (highest first, ties in header order) and the first one the server
//! can honour wins: its format (`*/*` and `application/*` mean the server default, otherwise
//! the part after `/`), its `gpu_transport` (default `none`, the only one offered) and its
//! `compression` (default: the server's). No header at all means the server default; a header
//! nothing in which can be honoured is a 406 with upstream's body.

use serde_json::{Value, json};

use crate::codec::Compression;

/// An array encoding of a response, as named in `Content-Type: application/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// Nested JSON lists.
    Json,
    /// Little-endian C-order bytes in base64.
    JsonBase64,
    /// Bytes written to a file under the output directory, referenced by path and offset.
    JsonBinref,
}

impl WireFormat {
    /// Every format, in the order tesseract-core lists them.
    pub const ALL: [WireFormat; 3] = [
        WireFormat::Json,
        WireFormat::JsonBase64,
        WireFormat::JsonBinref,
    ];

    /// tesseract-core's name: `json`, `json+base64` or `json+binref`.
    pub fn name(self) -> &'static str {
        match self {
            WireFormat::Json => "json",
            WireFormat::JsonBase64 => "json+base64",
            WireFormat::JsonBinref => "json+binref",
        }
    }

    /// Parses tesseract-core's name.
    pub fn from_name(name: &str) -> Option<WireFormat> {
        WireFormat::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The response `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            WireFormat::Json => "application/json",
            WireFormat::JsonBase64 => "application/json+base64",
            WireFormat::JsonBinref => "application/json+binref",
        }
    }
}

/// The GPU transports this server offers: none, as DESIGN.md's non-goals say.
pub const GPU_TRANSPORTS: [&str; 1] = ["none"];

/// The compressions this server offers.
pub const COMPRESSIONS: [&str; 2] = ["none", "lz4"];

/// What the server can produce, and its defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// Formats this server can write, in tesseract-core's order.
    pub formats: Vec<WireFormat>,
    /// What `*/*`, `application/*` and a missing header mean.
    pub default_format: WireFormat,
    /// The compression when a range does not name one.
    pub default_compression: Compression,
}

impl Offer {
    /// The format names, for `x-supported-output-formats` and 406 bodies.
    pub fn format_names(&self) -> Vec<&'static str> {
        self.formats.iter().map(|f| f.name()).collect()
    }
}

/// The encoding chosen for one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub format: WireFormat,
    pub compression: Compression,
}

/// No range of the `Accept` header can be honoured (HTTP 406).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot produce any encoding accepted by {accept:?}")]
pub struct NotAcceptable {
    /// The header as sent.
    pub accept: String,
    /// The formats on offer.
    pub formats: Vec<&'static str>,
}

impl NotAcceptable {
    /// Upstream's 406 body.
    pub fn body(&self) -> Value {
        json!({
            "detail": {
                "message": format!("Cannot produce any encoding accepted by '{}'", self.accept),
                "available_formats": self.formats,
                "available_gpu_transports": GPU_TRANSPORTS,
                "available_compressions": COMPRESSIONS,
            }
        })
    }
}

/// One media range: `type/subtype` and its parameters, names lowercased.
struct MediaRange<'a> {
    media_type: String,
    params: Vec<(String, &'a str)>,
    q: f32,
}

impl MediaRange<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

fn parse_ranges(header: &str) -> Vec<MediaRange<'_>> {
    let mut ranges: Vec<MediaRange<'_>> = header
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let media_type = pieces.next()?.trim().to_ascii_lowercase();
            if media_type.is_empty() {
                return None;
            }
            let params: Vec<(String, &str)> = pieces
                .filter_map(|p| {
                    let (name, value) = p.split_once('=')?;
                    let value = value.trim();
                    let value = value
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or(value);
                    Some((name.trim().to_ascii_lowercase(), value))
                })
                .collect();
            // q = 0 means "not acceptable". A malformed q ranks last but stays acceptable:
            // tesseract-core reads it as 0 and still answers in it.
            let q = params.iter().find(|(n, _)| n == "q").map_or(1.0, |(_, v)| {
                v.parse::<f32>()
                    .ok()
                    .filter(|q| q.is_finite())
                    .unwrap_or(f32::MIN_POSITIVE)
            });
            Some(MediaRange {
                media_type,
                params,
                q,
            })
        })
        .filter(|r| r.q > 0.0)
        .collect();
    // `sort_by` is stable: equal q keeps header order, as upstream.
    ranges.sort_by(|a, b| b.q.total_cmp(&a.q));
    ranges
}

fn honour(range: &MediaRange<'_>, offer: &Offer) -> Option<Negotiated> {
    let format = match range.media_type.as_str() {
        "*/*" | "application/*" => offer.default_format,
        other => WireFormat::from_name(other.split_once('/')?.1)?,
    };
    if !offer.formats.contains(&format) {
        return None;
    }
    if !GPU_TRANSPORTS.contains(&range.param("gpu_transport").unwrap_or("none")) {
        return None;
    }
    let compression = match range.param("compression") {
        None => offer.default_compression,
        Some("none") => Compression::None,
        Some("lz4") => Compression::Lz4,
        Some(_) => return None,
    };
    Some(Negotiated {
        format,
        compression,
    })
}

/// Chooses the response encoding from an `Accept` header (`None`: no header).
///
/// # Errors
/// [`NotAcceptable`] when no range can be honoured.
pub fn negotiate(accept: Option<&str>, offer: &Offer) -> Result<Negotiated, NotAcceptable> {
    let default = Negotiated {
        format: offer.default_format,
        compression: offer.default_compression,
    };
    let Some(header) = accept.filter(|h| !h.trim().is_empty()) else {
        return Ok(default);
    };
    parse_ranges(header)
        .iter()
        .find_map(|r| honour(r, offer))
        .ok_or_else(|| NotAcceptable {
            accept: header.to_owned(),
            formats: offer.format_names(),
        })
}
