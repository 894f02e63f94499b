//! A small bounded cache of abstract_eval answers.
//!
//! abstract_eval's answer is a function of its abstract inputs (shapes, dtypes and plain
//! values), yet the vjp route asks for it on every request whose outputs have a free
//! dimension, and each ask is a whole guest call on a fresh instance. Only successful answers
//! are kept, so an error is always recomputed and reported exactly as before.
//!
//! Keys are an exact, injective byte encoding of the input tree (floats by their bits, so
//! `-0.0` and `0.0` differ and a NaN matches only itself): a hit means the guest would have
//! seen identical inputs. Both the number of entries and the size of each key and answer are
//! bounded, so hostile clients sending ever-new shapes cycle a fixed amount of memory.

use std::collections::VecDeque;
use std::sync::Mutex;

use tesseract_model::{AbstractLeaf, AbstractTree, Plain};

/// Entries kept at once. Clients of one component use few distinct shapes.
pub(super) const MAX_ENTRIES: usize = 32;
/// Largest encoded input tree, and largest answer (by the same measure), that is kept.
pub(super) const MAX_ENTRY_BYTES: usize = 4096;

/// Recently used answers, most recent first. A linear scan of 32 short keys costs less than
/// hashing them would save.
#[derive(Debug, Default)]
pub(super) struct AbstractCache {
    entries: Mutex<VecDeque<(Vec<u8>, AbstractTree)>>,
}

impl AbstractCache {
    /// The cached answer for `inputs`, if any. Returns the key to [`AbstractCache::insert`]
    /// the answer under, or `None` when `inputs` is too large to cache.
    pub(super) fn get(&self, inputs: &AbstractTree) -> (Option<AbstractTree>, Option<Vec<u8>>) {
        let Some(key) = encode(inputs) else {
            return (None, None);
        };
        let Ok(mut entries) = self.entries.lock() else {
            return (None, Some(key));
        };
        let found = entries.iter().position(|(k, _)| *k == key);
        let hit = found.and_then(|i| {
            let entry = entries.remove(i)?;
            let answer = entry.1.clone();
            entries.push_front(entry);
            Some(answer)
        });
        (hit, Some(key))
    }

    /// Keeps `answer` under `key`, evicting the least recently used entry past the bound.
    /// An answer larger than [`MAX_ENTRY_BYTES`] is not kept.
    pub(super) fn insert(&self, key: Vec<u8>, answer: &AbstractTree) {
        if encoded_len(answer) > MAX_ENTRY_BYTES {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        // Two requests may have missed together; keep one copy.
        if entries.iter().any(|(k, _)| *k == key) {
            return;
        }
        entries.push_front((key, answer.clone()));
        entries.truncate(MAX_ENTRIES);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }
}

/// Length-prefixed bytes, so that no two different sequences of fields encode alike.
fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn put_leaf(out: &mut Vec<u8>, leaf: &AbstractLeaf) {
    match leaf {
        AbstractLeaf::Array(sd) => {
            out.push(0);
            out.push(sd.dtype as u8);
            out.extend_from_slice(&(sd.shape.len() as u64).to_le_bytes());
            for &d in &sd.shape {
                out.extend_from_slice(&(d as u64).to_le_bytes());
            }
        }
        AbstractLeaf::Plain(p) => match p {
            Plain::Bool(b) => out.extend_from_slice(&[1, u8::from(*b)]),
            Plain::Int(i) => {
                out.push(2);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Plain::Float(f) => {
                out.push(3);
                out.extend_from_slice(&f.to_bits().to_le_bytes());
            }
            Plain::Text(s) => {
                out.push(4);
                put_bytes(out, s.as_bytes());
            }
            Plain::Json(s) => {
                out.push(5);
                put_bytes(out, s.as_bytes());
            }
        },
    }
}

/// The exact encoding of `tree` (paths in the map's order), or `None` once it passes
/// [`MAX_ENTRY_BYTES`].
fn encode(tree: &AbstractTree) -> Option<Vec<u8>> {
    if encoded_len(tree) > MAX_ENTRY_BYTES {
        return None;
    }
    let mut out = Vec::with_capacity(encoded_len(tree));
    for (path, leaf) in tree {
        put_bytes(&mut out, path.as_bytes());
        put_leaf(&mut out, leaf);
    }
    Some(out)
}

/// The length [`encode`] would produce, without allocating: also the size measure of a kept
/// answer.
fn encoded_len(tree: &AbstractTree) -> usize {
    tree.iter()
        .map(|(path, leaf)| {
            let leaf_len = match leaf {
                AbstractLeaf::Array(sd) => 10 + 8 * sd.shape.len(),
                AbstractLeaf::Plain(Plain::Bool(_)) => 2,
                AbstractLeaf::Plain(Plain::Int(_) | Plain::Float(_)) => 9,
                AbstractLeaf::Plain(Plain::Text(s) | Plain::Json(s)) => 9 + s.len(),
            };
            (8 + path.len()).saturating_add(leaf_len)
        })
        .fold(0usize, usize::saturating_add)
}

#[cfg(test)]
mod tests {
    use tesseract_model::{DType, ShapeDType};

    use super::*;

    fn array(path: &str, shape: &[usize]) -> AbstractTree {
        AbstractTree::from([(
            path.to_owned(),
            AbstractLeaf::Array(ShapeDType {
                shape: shape.to_vec(),
                dtype: DType::Float64,
            }),
        )])
    }

    fn lookup(cache: &AbstractCache, inputs: &AbstractTree) -> Option<AbstractTree> {
        cache.get(inputs).0
    }

    fn fill(cache: &AbstractCache, inputs: &AbstractTree, answer: &AbstractTree) {
        let (hit, key) = cache.get(inputs);
        assert_eq!(hit, None);
        cache.insert(key.expect("small inputs are cacheable"), answer);
    }

    #[test]
    fn a_kept_answer_is_returned_for_the_same_inputs() {
        let cache = AbstractCache::default();
        let (inputs, answer) = (array("x", &[64]), array("y", &[64, 3]));
        fill(&cache, &inputs, &answer);
        assert_eq!(lookup(&cache, &inputs), Some(answer));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn other_shapes_dtypes_paths_or_plain_values_miss() {
        let cache = AbstractCache::default();
        fill(&cache, &array("x", &[64]), &array("y", &[64]));
        assert_eq!(lookup(&cache, &array("x", &[65])), None);
        assert_eq!(lookup(&cache, &array("x", &[64, 1])), None);
        assert_eq!(lookup(&cache, &array("z", &[64])), None);
        let mut float32 = array("x", &[64]);
        if let Some(AbstractLeaf::Array(sd)) = float32.get_mut("x") {
            sd.dtype = DType::Float32;
        }
        assert_eq!(lookup(&cache, &float32), None);

        let plain = |p: Plain| AbstractTree::from([("n".to_owned(), AbstractLeaf::Plain(p))]);
        fill(&cache, &plain(Plain::Float(0.0)), &array("y", &[1]));
        assert_eq!(lookup(&cache, &plain(Plain::Float(-0.0))), None);
        assert_eq!(lookup(&cache, &plain(Plain::Int(0))), None);
        assert_eq!(
            lookup(&cache, &plain(Plain::Float(0.0))),
            Some(array("y", &[1]))
        );
        // Text and JSON with the same characters are different inputs.
        fill(&cache, &plain(Plain::Text("1".into())), &array("y", &[2]));
        assert_eq!(lookup(&cache, &plain(Plain::Json("1".into()))), None);
    }

    #[test]
    fn entries_are_bounded_and_the_least_recently_used_goes_first() {
        let cache = AbstractCache::default();
        let answer = array("y", &[1]);
        for n in 0..MAX_ENTRIES {
            fill(&cache, &array("x", &[n]), &answer);
        }
        // Touch the oldest, so the second oldest is the one evicted next.
        assert!(lookup(&cache, &array("x", &[0])).is_some());
        for n in MAX_ENTRIES..3 * MAX_ENTRIES {
            fill(&cache, &array("x", &[n]), &answer);
            assert!(cache.len() <= MAX_ENTRIES);
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        assert_eq!(lookup(&cache, &array("x", &[1])), None);
        assert!(lookup(&cache, &array("x", &[3 * MAX_ENTRIES - 1])).is_some());
    }

    #[test]
    fn large_inputs_and_large_answers_are_not_kept() {
        let cache = AbstractCache::default();
        let long = AbstractTree::from([(
            "s".to_owned(),
            AbstractLeaf::Plain(Plain::Text("a".repeat(MAX_ENTRY_BYTES))),
        )]);
        assert_eq!(cache.get(&long), (None, None));

        let (hit, key) = cache.get(&array("x", &[1]));
        assert_eq!(hit, None);
        cache.insert(key.expect("small inputs are cacheable"), &long);
        assert_eq!(cache.len(), 0);
        assert_eq!(lookup(&cache, &array("x", &[1])), None);
    }

    #[test]
    fn the_encoding_is_as_long_as_measured() {
        let tree = AbstractTree::from([
            ("a".to_owned(), AbstractLeaf::Plain(Plain::Bool(true))),
            ("b".to_owned(), AbstractLeaf::Plain(Plain::Int(-3))),
            (
                "c".to_owned(),
                AbstractLeaf::Plain(Plain::Json("[1]".into())),
            ),
            (
                "d".to_owned(),
                AbstractLeaf::Array(ShapeDType {
                    shape: vec![2, 3],
                    dtype: DType::Int32,
                }),
            ),
        ]);
        let encoded = encode(&tree).expect("small");
        assert_eq!(encoded.len(), encoded_len(&tree));
    }
}
