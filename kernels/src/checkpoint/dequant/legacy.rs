//! ggml's 32-element block types: Q8_0, Q4_0, Q4_1 (`dequantize_row_q*` in `ggml-quants.c`).

use super::f16_at;

/// `block_q8_0 { f16 d; i8 qs[32]; }`: `x[j] = qs[j] · d`.
pub(super) fn q8_0(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    for (o, &q) in out.iter_mut().zip(&block[2..34]) {
        *o = f32::from(q as i8) * d;
    }
}

/// `block_q4_0 { f16 d; u8 qs[16]; }`: element `j` is the low nibble of `qs[j]`, element
/// `j + 16` the high one, each minus 8, times `d`.
pub(super) fn q4_0(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    let (low, high) = out.split_at_mut(16);
    for ((l, h), &q) in low.iter_mut().zip(high).zip(&block[2..18]) {
        *l = f32::from((q & 0x0F) as i8 - 8) * d;
        *h = f32::from((q >> 4) as i8 - 8) * d;
    }
}

/// `block_q4_1 { f16 d; f16 m; u8 qs[16]; }`: nibbles as in Q4_0, unsigned, `x = q · d + m`.
pub(super) fn q4_1(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    let m = f16_at(block, 2);
    let (low, high) = out.split_at_mut(16);
    for ((l, h), &q) in low.iter_mut().zip(high).zip(&block[4..20]) {
        *l = f32::from(q & 0x0F) * d + m;
        *h = f32::from(q >> 4) * d + m;
    }
}

#[cfg(test)]
mod tests {
    use half::f16;

    use super::*;

    fn header(values: &[f32]) -> Vec<u8> {
        values
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect()
    }

    #[test]
    fn q8_0_scales_signed_bytes() {
        let mut block = header(&[0.5]);
        block.extend((0..32).map(|i| (i as i8 - 16) as u8));
        let mut out = [0.0; 32];
        q8_0(&block, &mut out);
        assert_eq!(out[0], -8.0);
        assert_eq!(out[31], 7.5);
    }

    #[test]
    fn q4_nibbles_low_half_first() {
        let mut block = header(&[2.0]);
        block.extend([0x1F_u8; 16]);
        let mut out = [0.0; 32];
        q4_0(&block, &mut out);
        assert_eq!((out[0], out[16]), ((15.0 - 8.0) * 2.0, (1.0 - 8.0) * 2.0));

        let mut block = header(&[2.0, -1.0]);
        block.extend([0x1F_u8; 16]);
        q4_1(&block, &mut out);
        assert_eq!((out[15], out[31]), (29.0, 1.0));
    }
}
