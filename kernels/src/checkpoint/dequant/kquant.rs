//! ggml's 256-element "K" block types: Q4_K, Q5_K, Q6_K (`dequantize_row_q*_K` in
//! `ggml-quants.c`).

use super::f16_at;

/// The 6-bit scale and minimum of sub-block `j` (0..8) packed in 12 bytes
/// (`get_scale_min_k4`): bytes 0–3 hold the low 6 bits of scales 0–3, bytes 4–7 those of
/// minimums 0–3, bytes 8–11 the low nibbles of scales and minimums 4–7, whose top 2 bits sit
/// in the top bits of bytes 0–7.
fn scale_min(j: usize, q: &[u8]) -> (f32, f32) {
    let (sc, m) = if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    };
    (f32::from(sc), f32::from(m))
}

/// `block_q4_K { f16 d; f16 dmin; u8 scales[12]; u8 qs[128]; }`: 8 sub-blocks of 32; each
/// 32 bytes of `qs` give a pair of sub-blocks (low nibbles, then high ones);
/// `x = d·sc · q − dmin·m`.
pub(super) fn q4_k(block: &[u8], out: &mut [f32]) {
    let (d, dmin) = (f16_at(block, 0), f16_at(block, 2));
    let scales = &block[4..16];
    let qs = &block[16..144];
    for (pair, (q, y)) in qs
        .chunks_exact(32)
        .zip(out.chunks_exact_mut(64))
        .enumerate()
    {
        let (sc1, m1) = scale_min(2 * pair, scales);
        let (sc2, m2) = scale_min(2 * pair + 1, scales);
        let (d1, m1, d2, m2) = (d * sc1, dmin * m1, d * sc2, dmin * m2);
        let (y1, y2) = y.split_at_mut(32);
        for ((a, b), &q) in y1.iter_mut().zip(y2).zip(q) {
            *a = d1 * f32::from(q & 0x0F) - m1;
            *b = d2 * f32::from(q >> 4) - m2;
        }
    }
}

/// `block_q5_K { f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]; }`: as Q4_K, with
/// bit `s` of `qh[l]` the fifth bit of element `l` of sub-block `s`.
pub(super) fn q5_k(block: &[u8], out: &mut [f32]) {
    let (d, dmin) = (f16_at(block, 0), f16_at(block, 2));
    let scales = &block[4..16];
    let qh = &block[16..48];
    let qs = &block[48..176];
    for (pair, (q, y)) in qs
        .chunks_exact(32)
        .zip(out.chunks_exact_mut(64))
        .enumerate()
    {
        let (sc1, m1) = scale_min(2 * pair, scales);
        let (sc2, m2) = scale_min(2 * pair + 1, scales);
        let (d1, m1, d2, m2) = (d * sc1, dmin * m1, d * sc2, dmin * m2);
        let (u1, u2) = (1u8 << (2 * pair), 2u8 << (2 * pair));
        let (y1, y2) = y.split_at_mut(32);
        for (((a, b), &q), &h) in y1.iter_mut().zip(y2).zip(q).zip(qh) {
            let high1 = if h & u1 != 0 { 16 } else { 0 };
            let high2 = if h & u2 != 0 { 16 } else { 0 };
            *a = d1 * f32::from((q & 0x0F) + high1) - m1;
            *b = d2 * f32::from((q >> 4) + high2) - m2;
        }
    }
}

/// `block_q6_K { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d; }`: two halves of 128; in a
/// half, element `l + 32·k` (k = 0..4) takes a nibble of `ql[l]` or `ql[l + 32]` and two bits
/// of `qh[l]`, minus 32, times `d · scales[sub-block of 16]`.
pub(super) fn q6_k(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 208);
    for half in 0..2 {
        let ql = &block[64 * half..64 * half + 64];
        let qh = &block[128 + 32 * half..128 + 32 * half + 32];
        let sc = &block[192 + 8 * half..192 + 8 * half + 8];
        let y = &mut out[128 * half..128 * half + 128];
        for l in 0..32 {
            let is = l / 16;
            let h = qh[l];
            let q = [
                (ql[l] & 0x0F) | ((h & 3) << 4),
                (ql[l + 32] & 0x0F) | (((h >> 2) & 3) << 4),
                (ql[l] >> 4) | (((h >> 4) & 3) << 4),
                (ql[l + 32] >> 4) | (((h >> 6) & 3) << 4),
            ];
            for (k, &q) in q.iter().enumerate() {
                let scale = d * f32::from(sc[is + 2 * k] as i8);
                y[l + 32 * k] = scale * f32::from(q as i8 - 32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_min_unpacks_the_six_bit_fields() {
        // Scales 0..8 = 1..=8 + 56 (so the top bits matter), minimums = 63 − scale.
        let sc: Vec<u8> = (1..=8).map(|v| v + 40).collect();
        let m: Vec<u8> = sc.iter().map(|v| 63 - v).collect();
        let mut q = [0u8; 12];
        for j in 0..4 {
            q[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
            q[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
            q[j + 8] = (sc[j + 4] & 0x0F) | ((m[j + 4] & 0x0F) << 4);
        }
        for j in 0..8 {
            assert_eq!(
                scale_min(j, &q),
                (f32::from(sc[j]), f32::from(m[j])),
                "j={j}"
            );
        }
    }

    #[test]
    fn q6_k_zero_point_is_32() {
        let mut block = vec![0u8; 210];
        block[192..208].fill(1);
        block[208..210].copy_from_slice(&half::f16::from_f32(0.25).to_le_bytes());
        let mut out = [0.0; 256];
        q6_k(&block, &mut out);
        assert!(out.iter().all(|&v| v == -8.0));
    }
}
