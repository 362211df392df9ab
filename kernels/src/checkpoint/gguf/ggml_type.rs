//! The ggml tensor types a GGUF file may name, with their block layouts.

use std::fmt;

/// A ggml tensor type, by the id GGUF stores. Every id ggml defines has a name and a block
/// layout here (so the container can be bounds-checked whatever its tensors hold); only
/// [`GgmlType::is_supported`] ones can be dequantised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GgmlType(u32);

/// `(id, name, elements per block, bytes per block)`, from ggml's type traits
/// (`GGML_QUANT_SIZES` in `gguf-py`).
const TYPES: [(u32, &str, u64, u64); 34] = [
    (0, "F32", 1, 4),
    (1, "F16", 1, 2),
    (2, "Q4_0", 32, 18),
    (3, "Q4_1", 32, 20),
    (6, "Q5_0", 32, 22),
    (7, "Q5_1", 32, 24),
    (8, "Q8_0", 32, 34),
    (9, "Q8_1", 32, 40),
    (10, "Q2_K", 256, 84),
    (11, "Q3_K", 256, 110),
    (12, "Q4_K", 256, 144),
    (13, "Q5_K", 256, 176),
    (14, "Q6_K", 256, 210),
    (15, "Q8_K", 256, 292),
    (16, "IQ2_XXS", 256, 66),
    (17, "IQ2_XS", 256, 74),
    (18, "IQ3_XXS", 256, 98),
    (19, "IQ1_S", 256, 50),
    (20, "IQ4_NL", 32, 18),
    (21, "IQ3_S", 256, 110),
    (22, "IQ2_S", 256, 82),
    (23, "IQ4_XS", 256, 136),
    (24, "I8", 1, 1),
    (25, "I16", 1, 2),
    (26, "I32", 1, 4),
    (27, "I64", 1, 8),
    (28, "F64", 1, 8),
    (29, "IQ1_M", 256, 56),
    (30, "BF16", 1, 2),
    (34, "TQ1_0", 256, 54),
    (35, "TQ2_0", 256, 66),
    (39, "MXFP4", 32, 17),
    (40, "NVFP4", 64, 36),
    (41, "Q1_0", 128, 18),
];

impl GgmlType {
    /// IEEE single precision.
    pub const F32: GgmlType = GgmlType(0);
    /// IEEE half precision.
    pub const F16: GgmlType = GgmlType(1);
    /// 32 elements: f16 scale, 16 bytes of 4-bit values offset by 8.
    pub const Q4_0: GgmlType = GgmlType(2);
    /// 32 elements: f16 scale and minimum, 16 bytes of 4-bit values.
    pub const Q4_1: GgmlType = GgmlType(3);
    /// 32 elements: f16 scale, 32 signed bytes.
    pub const Q8_0: GgmlType = GgmlType(8);
    /// 256 elements in 8 sub-blocks with 6-bit scales and minimums, 4-bit values.
    pub const Q4_K: GgmlType = GgmlType(12);
    /// 256 elements like Q4_K, with a fifth bit per value.
    pub const Q5_K: GgmlType = GgmlType(13);
    /// 256 elements in 16 sub-blocks with 8-bit scales, 6-bit values.
    pub const Q6_K: GgmlType = GgmlType(14);
    /// bfloat16.
    pub const BF16: GgmlType = GgmlType(30);

    /// The types [`dequantize`](crate::checkpoint::dequant::dequantize) handles.
    pub const SUPPORTED: [GgmlType; 9] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
    ];

    /// The type with this id, if ggml defines one.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        TYPES.iter().any(|t| t.0 == id).then_some(GgmlType(id))
    }

    /// The id GGUF stores.
    pub fn id(self) -> u32 {
        self.0
    }

    fn entry(self) -> (u32, &'static str, u64, u64) {
        TYPES
            .iter()
            .copied()
            .find(|t| t.0 == self.0)
            .unwrap_or((self.0, "unknown", 1, 0))
    }

    /// ggml's name (`Q4_K`, `BF16`, …).
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// Elements per block (1 for plain types).
    pub fn block_elements(self) -> u64 {
        self.entry().2
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> u64 {
        self.entry().3
    }

    /// Whether this crate can dequantise the type.
    pub fn is_supported(self) -> bool {
        GgmlType::SUPPORTED.contains(&self)
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::GgmlType;

    #[test]
    fn layouts_of_supported_types() {
        let expect = [
            (GgmlType::F32, 1, 4),
            (GgmlType::F16, 1, 2),
            (GgmlType::BF16, 1, 2),
            (GgmlType::Q8_0, 32, 34),
            (GgmlType::Q4_0, 32, 18),
            (GgmlType::Q4_1, 32, 20),
            (GgmlType::Q4_K, 256, 144),
            (GgmlType::Q5_K, 256, 176),
            (GgmlType::Q6_K, 256, 210),
        ];
        for (t, block, bytes) in expect {
            assert_eq!((t.block_elements(), t.block_bytes()), (block, bytes), "{t}");
            assert!(t.is_supported());
        }
    }

    #[test]
    fn unknown_ids_are_refused_and_known_ones_named() {
        assert_eq!(GgmlType::from_id(4), None);
        assert_eq!(GgmlType::from_id(99), None);
        let q5 = GgmlType::from_id(6).expect("Q5_0");
        assert_eq!(q5.name(), "Q5_0");
        assert!(!q5.is_supported());
    }
}
