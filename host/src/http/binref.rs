//! `json+binref` responses: array bytes go to a file under the output directory and the JSON
//! carries `"<run dir>/<file>.bin:<offset>"` (plus `:<compressed size>` when lz4-compressed),
//! relative to `--output-path`, as tesseract-core writes them.
//!
//! The codec writes base64; this module moves those bytes to disk. Decoding base64 we just
//! encoded costs a pass over the data, which is small next to writing it, and keeps binref out
//! of the codec until it has a second user.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::codec::Answer;

/// Why binref output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum BinrefError {
    #[error("cannot write binref output {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the response array at {at} is not valid base64")]
    Base64 { at: String },
}

/// A fresh, hard-to-guess id: 128 bits from the standard library's per-process random hasher
/// keys, mixed with a counter so ids never repeat within a process.
pub fn random_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut halves = [0u64; 2];
    for (i, half) in halves.iter_mut().enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_usize(i);
        *half = h.finish();
    }
    format!("{:016x}{:016x}", halves[0], halves[1])
}

/// Whether `run_id` is safe as one path component: it becomes a directory name.
pub fn valid_run_id(run_id: &str) -> bool {
    !run_id.is_empty()
        && run_id.len() <= 128
        && run_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && run_id != "."
        && run_id != ".."
}

/// Appends array bytes to one file, opened on the first array.
struct Sink {
    root: PathBuf,
    relative: String,
    file: Option<std::fs::File>,
    offset: u64,
}

impl Sink {
    fn append(&mut self, bytes: &[u8]) -> Result<u64, BinrefError> {
        let path = self.root.join(&self.relative);
        let err = |source| BinrefError::Write {
            path: path.clone(),
            source,
        };
        if self.file.is_none() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(err)?;
            }
            self.file = Some(std::fs::File::create(&path).map_err(err)?);
        }
        let offset = self.offset;
        if let Some(f) = self.file.as_mut() {
            f.write_all(bytes).map_err(err)?;
        }
        self.offset += bytes.len() as u64;
        Ok(offset)
    }
}

fn rewrite(value: &mut Value, at: &mut Vec<String>, sink: &mut Sink) -> Result<(), BinrefError> {
    match value {
        Value::Object(obj) if obj.get("object_type") == Some(&json!("array")) => {
            let Some(Value::Object(data)) = obj.get_mut("data") else {
                return Ok(());
            };
            if data.get("encoding") != Some(&json!("base64")) {
                return Ok(());
            }
            let bytes = data
                .get("buffer")
                .and_then(Value::as_str)
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .ok_or_else(|| BinrefError::Base64 { at: at.join(".") })?;
            let offset = sink.append(&bytes)?;
            let compressed = data.get("compression").is_some_and(|c| !c.is_null());
            let buffer = if compressed {
                format!("{}:{offset}:{}", sink.relative, bytes.len())
            } else {
                format!("{}:{offset}", sink.relative)
            };
            let mut out = Map::new();
            out.insert("buffer".into(), Value::String(buffer));
            out.insert("encoding".into(), json!("binref"));
            if let Some(c) = data.get("compression").filter(|c| !c.is_null()) {
                out.insert("compression".into(), c.clone());
            }
            *data = out;
            Ok(())
        }
        Value::Object(obj) => {
            for (k, v) in obj.iter_mut() {
                at.push(k.clone());
                rewrite(v, at, sink)?;
                at.pop();
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                at.push(i.to_string());
                rewrite(v, at, sink)?;
                at.pop();
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Moves every base64 array of `body` into one new file `run_<run_id>/<random>.bin` under
/// `root`, and points the arrays at it.
///
/// # Errors
/// When the file cannot be written, or a buffer is not base64 (a bug upstream of here).
pub fn to_binref(body: &mut Answer, root: &Path, run_id: &str) -> Result<(), BinrefError> {
    let body = body.value_mut();
    let mut sink = Sink {
        root: root.to_path_buf(),
        relative: format!("run_{run_id}/{}.bin", random_id()),
        file: None,
        offset: 0,
    };
    // No fsync: the client reads through the same page cache, after the response.
    rewrite(body, &mut Vec::new(), &mut sink)
}
