//! numpy dtypes the data model does not hold (float16, int8, int16, uint8 … uint64) arriving in
//! encoded request arrays.
//!
//! tesseract-core accepts any of them whose same-kind cast (or int-to-int cast with a range
//! check) reaches the declared dtype. Each is read into the narrowest held dtype that represents
//! every value exactly (float16 → float32; int8, int16, uint8, uint16 → int32; uint32, uint64 →
//! int64), so the ordinary cast to the declared dtype then behaves as numpy's from the original.

use serde_json::json;
use tesseract_model::{DType, Data};

use super::{ARRAY_VALUE_OUT_OF_RANGE, ArrayError, data_from_le_bytes, py_float};

/// A numpy dtype name a request may use for real data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WireDType {
    Held(DType),
    Float16,
    Int8,
    Int16,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
}

impl WireDType {
    /// `None` for complex dtypes and names numpy does not know: no real dtype is reached
    /// from them, so upstream's encoded-array model refuses them.
    pub(super) fn parse(name: &str) -> Option<WireDType> {
        if let Some(d) = DType::from_name(name) {
            return Some(WireDType::Held(d));
        }
        Some(match name {
            "float16" => WireDType::Float16,
            "int8" => WireDType::Int8,
            "int16" => WireDType::Int16,
            "uint8" => WireDType::UInt8,
            "uint16" => WireDType::UInt16,
            "uint32" => WireDType::UInt32,
            "uint64" => WireDType::UInt64,
            _ => return None,
        })
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            WireDType::Held(d) => d.name(),
            WireDType::Float16 => "float16",
            WireDType::Int8 => "int8",
            WireDType::Int16 => "int16",
            WireDType::UInt8 => "uint8",
            WireDType::UInt16 => "uint16",
            WireDType::UInt32 => "uint32",
            WireDType::UInt64 => "uint64",
        }
    }

    pub(super) fn size_bytes(self) -> usize {
        match self {
            WireDType::Held(d) => d.size_bytes(),
            WireDType::Int8 | WireDType::UInt8 => 1,
            WireDType::Float16 | WireDType::Int16 | WireDType::UInt16 => 2,
            WireDType::UInt32 => 4,
            WireDType::UInt64 => 8,
        }
    }

    /// The held dtype the values are read into.
    pub(super) fn holder(self) -> DType {
        match self {
            WireDType::Held(d) => d,
            WireDType::Float16 => DType::Float32,
            WireDType::Int8 | WireDType::Int16 | WireDType::UInt8 | WireDType::UInt16 => {
                DType::Int32
            }
            WireDType::UInt32 | WireDType::UInt64 => DType::Int64,
        }
    }

    /// Inclusive value range of an integer dtype.
    fn int_range(self) -> Option<(i128, i128)> {
        Some(match self {
            WireDType::Held(DType::Int32) => (i32::MIN.into(), i32::MAX.into()),
            WireDType::Held(DType::Int64) => (i64::MIN.into(), i64::MAX.into()),
            WireDType::Int8 => (i8::MIN.into(), i8::MAX.into()),
            WireDType::Int16 => (i16::MIN.into(), i16::MAX.into()),
            WireDType::UInt8 => (0, u8::MAX.into()),
            WireDType::UInt16 => (0, u16::MAX.into()),
            WireDType::UInt32 => (0, u32::MAX.into()),
            WireDType::UInt64 => (0, u64::MAX.into()),
            _ => return None,
        })
    }

    /// Little-endian C-order bytes (base64 or binref) to held data.
    pub(super) fn read_le_bytes(self, bytes: &[u8], expected: usize) -> Result<Data, String> {
        if bytes.len() != expected {
            return Err(format!(
                "buffer holds {} bytes, but shape and dtype need {expected}",
                bytes.len()
            ));
        }
        let pairs = || bytes.chunks_exact(2).map(|c| [c[0], c[1]]);
        Ok(match self {
            WireDType::Held(d) => return data_from_le_bytes(d, bytes, expected),
            WireDType::Float16 => {
                Data::Float32(pairs().map(|b| f16_to_f32(u16::from_le_bytes(b))).collect())
            }
            WireDType::Int8 => Data::Int32(bytes.iter().map(|&b| i32::from(b as i8)).collect()),
            WireDType::UInt8 => Data::Int32(bytes.iter().map(|&b| i32::from(b)).collect()),
            WireDType::Int16 => {
                Data::Int32(pairs().map(|b| i32::from(i16::from_le_bytes(b))).collect())
            }
            WireDType::UInt16 => {
                Data::Int32(pairs().map(|b| i32::from(u16::from_le_bytes(b))).collect())
            }
            WireDType::UInt32 => Data::Int64(
                bytes
                    .chunks_exact(4)
                    .map(|c| i64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                    .collect(),
            ),
            WireDType::UInt64 => {
                let v: Vec<u64> = bytes
                    .chunks_exact(8)
                    .map(|c| {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(c);
                        u64::from_le_bytes(a)
                    })
                    .collect();
                // Above int64's range only a float target can take them; numpy rounds the
                // same way.
                if v.iter().all(|&x| i64::try_from(x).is_ok()) {
                    Data::Int64(v.into_iter().map(|x| x as i64).collect())
                } else {
                    Data::Float64(v.into_iter().map(|x| x as f64).collect())
                }
            }
        })
    }

    /// A json buffer already cast to [`WireDType::holder`]: checks that the values fit the
    /// stated dtype, as tesseract-core's checked `astype` does, and rounds float16.
    pub(super) fn fit_json(self, data: Data) -> Result<Data, ArrayError> {
        if let (Some((lo, hi)), Data::Int32(_) | Data::Int64(_)) = (self.int_range(), &data) {
            let values: Vec<i128> = match &data {
                Data::Int32(v) => v.iter().map(|&x| x.into()).collect(),
                Data::Int64(v) => v.iter().map(|&x| x.into()).collect(),
                _ => Vec::new(),
            };
            if let Some(x) = values.iter().find(|&&x| x < lo || x > hi) {
                return Err(out_of_range(self.name(), x.to_string()));
            }
            return Ok(data);
        }
        match (self, data) {
            (WireDType::Float16, Data::Float32(v)) => {
                let mut out = Vec::with_capacity(v.len());
                for x in v {
                    let r = round_to_f16(f64::from(x));
                    if x.is_finite() && !r.is_finite() {
                        return Err(out_of_range("float16", py_float(f64::from(x))));
                    }
                    out.push(r as f32);
                }
                Ok(Data::Float32(out))
            }
            (_, data) => Ok(data),
        }
    }
}

fn out_of_range(dtype: &str, value: String) -> ArrayError {
    ArrayError::new(
        ARRAY_VALUE_OUT_OF_RANGE,
        format!("Array values do not fit into dtype '{dtype}' (e.g. {value})"),
        json!({ "expected_dtype": dtype, "value": value }),
    )
}

/// IEEE half precision bits to f32 (exact).
fn f16_to_f32(h: u16) -> f32 {
    let negative = h & 0x8000 != 0;
    let exp = (h >> 10) & 0x1f;
    let frac = u32::from(h & 0x3ff);
    let magnitude = match exp {
        // Zero and subnormals: frac · 2⁻²⁴, exact in f32.
        0 => frac as f32 * f32::from_bits(0x3380_0000),
        0x1f => f32::from_bits(0x7f80_0000 | (frac << 13)),
        _ => f32::from_bits(((u32::from(exp) + 127 - 15) << 23) | (frac << 13)),
    };
    if negative { -magnitude } else { magnitude }
}

/// Rounds to the nearest float16 value (ties to even), as numpy's `astype(float16)`;
/// values past float16's range become ±inf.
fn round_to_f16(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    // float16 has 11 significant bits; subnormals share the exponent −14.
    let exp = x.abs().log2().floor().max(-14.0);
    let quantum = (exp - 10.0).exp2();
    let r = (x / quantum).round_ties_even() * quantum;
    if r.abs() > 65504.0 {
        f64::INFINITY.copysign(x)
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_bits_to_f32() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn rounds_like_numpy_float16() {
        // np.float16(0.1) == 0.0999755859375; 65519 rounds down, 65520 overflows.
        assert_eq!(round_to_f16(0.1), 0.0999755859375);
        assert_eq!(round_to_f16(65519.0), 65504.0);
        assert_eq!(round_to_f16(65520.0), f64::INFINITY);
        assert_eq!(round_to_f16(1e-8), 0.0);
        assert_eq!(round_to_f16(-3.0), -3.0);
    }

    #[test]
    fn widens_narrow_integers() {
        let bytes = [0xff, 0x01];
        assert_eq!(
            WireDType::Int8.read_le_bytes(&bytes, 2),
            Ok(Data::Int32(vec![-1, 1]))
        );
        assert_eq!(
            WireDType::UInt8.read_le_bytes(&bytes, 2),
            Ok(Data::Int32(vec![255, 1]))
        );
        assert_eq!(
            WireDType::UInt16.read_le_bytes(&bytes, 2),
            Ok(Data::Int32(vec![511]))
        );
        let big = u64::MAX.to_le_bytes();
        assert_eq!(
            WireDType::UInt64.read_le_bytes(&big, 8),
            Ok(Data::Float64(vec![u64::MAX as f64]))
        );
    }

    #[test]
    fn json_values_must_fit_the_stated_dtype() {
        assert!(WireDType::UInt8.fit_json(Data::Int32(vec![255])).is_ok());
        let err = WireDType::UInt8
            .fit_json(Data::Int32(vec![256]))
            .expect_err("256 is not a uint8");
        assert_eq!(err.kind, ARRAY_VALUE_OUT_OF_RANGE);
        assert!(WireDType::Int8.fit_json(Data::Int32(vec![-129])).is_err());
        let err = WireDType::Float16
            .fit_json(Data::Float32(vec![1e5]))
            .expect_err("overflows float16");
        assert_eq!(err.kind, ARRAY_VALUE_OUT_OF_RANGE);
    }

    #[test]
    fn complex_and_unknown_names_are_not_real_dtypes() {
        for name in ["complex64", "complex128", "float128", "Float32", ""] {
            assert_eq!(WireDType::parse(name), None, "{name}");
        }
        assert_eq!(
            WireDType::parse("uint32").map(WireDType::holder),
            Some(DType::Int64)
        );
    }
}
