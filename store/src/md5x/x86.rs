//! The lanes with x86 vector instructions: 8 messages in AVX2 registers,
//! 16 in AVX-512 ones. Each module gives the same few operations; the
//! `compress_with!` macro writes MD5's 64 steps with them, unrolled, inside
//! a function compiled for that instruction set. The message words of the
//! lanes are loaded a block at a time and transposed in registers, so that
//! one vector holds the same word of every lane.

#![allow(clippy::missing_safety_doc)]

use super::lanes::{word, K, S};

/// Steps `$i` of MD5 with the round function `$f`, over vectors of the
/// instruction set `$v`: the words play a, b, c and d in turn (step 0
/// updates `x[0]` from `x[1..4]`, step 1 updates `x[3]` from `x[0..3]`...).
macro_rules! round {
    ($v:ident, $x:ident, $m:ident, $f:ident, $($i:literal)*) => { $( {
        let r = $i % 4;
        let (a, b, c, d) = ((4 - r) % 4, (5 - r) % 4, (6 - r) % 4, (7 - r) % 4);
        let f = $v::$f($x[b], $x[c], $x[d]);
        let k = $v::splat(K[$i]);
        let sum = $v::add($v::add($x[a], f), $v::add(k, $m[word($i)]));
        $x[a] = $v::add($x[b], $v::rotl(sum, S[$i / 16][r]));
    } )* };
}

/// MD5's 64 steps over blocks of every lane, with the operations of
/// `$isa`; `states` and `msgs` hold one entry per used lane (at most
/// `$isa::N`), each message at least `blocks` blocks long.
macro_rules! compress_with {
    ($isa:ident, $states:expr, $msgs:expr, $blocks:expr) => {{
        use $isa as v;
        let (states, msgs, blocks): (&mut [[u32; 4]], &[&[u8]], usize) = ($states, $msgs, $blocks);
        let mut rows = [[0u32; v::N]; 4];
        let mut src = [msgs[0].as_ptr(); v::N];
        for (l, (st, m)) in states.iter().zip(msgs).enumerate() {
            src[l] = m.as_ptr();
            for w in 0..4 {
                rows[w][l] = st[w];
            }
        }
        let mut h = rows.map(|r| v::from_words(&r));
        for block in 0..blocks {
            // SAFETY: every message holds `blocks` blocks (checked by the
            // caller); unused lanes read the first message again.
            let m = unsafe { v::load_words(&src, block * 64) };
            let mut x = h;
            round!(v, x, m, f, 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
            round!(v, x, m, g, 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);
            round!(v, x, m, h, 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47);
            round!(v, x, m, i, 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63);
            for w in 0..4 {
                h[w] = v::add(h[w], x[w]);
            }
        }
        for w in 0..4 {
            rows[w] = v::to_words(h[w]);
        }
        for (l, st) in states.iter_mut().enumerate() {
            for w in 0..4 {
                st[w] = rows[w][l];
            }
        }
    }};
}

#[target_feature(enable = "avx2")]
pub fn compress8(states: &mut [[u32; 4]], msgs: &[&[u8]], blocks: usize) {
    compress_with!(avx2, states, msgs, blocks)
}

#[target_feature(enable = "avx512f,avx512vl")]
pub fn compress16(states: &mut [[u32; 4]], msgs: &[&[u8]], blocks: usize) {
    compress_with!(avx512, states, msgs, blocks)
}

mod avx2 {
    use std::arch::x86_64::*;
    pub type V = __m256i;
    pub const N: usize = 8;

    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn splat(x: u32) -> V {
        _mm256_set1_epi32(x as i32)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn add(a: V, b: V) -> V {
        _mm256_add_epi32(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn rotl(a: V, s: u32) -> V {
        let left = _mm256_sll_epi32(a, _mm_cvtsi32_si128(s as i32));
        _mm256_or_si256(left, _mm256_srl_epi32(a, _mm_cvtsi32_si128(32 - s as i32)))
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn f(b: V, c: V, d: V) -> V {
        _mm256_xor_si256(d, _mm256_and_si256(b, _mm256_xor_si256(c, d)))
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn g(b: V, c: V, d: V) -> V {
        _mm256_xor_si256(c, _mm256_and_si256(d, _mm256_xor_si256(b, c)))
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn h(b: V, c: V, d: V) -> V {
        _mm256_xor_si256(_mm256_xor_si256(b, c), d)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn i(b: V, c: V, d: V) -> V {
        let not_d = _mm256_xor_si256(d, _mm256_set1_epi32(-1));
        _mm256_xor_si256(c, _mm256_or_si256(b, not_d))
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn from_words(w: &[u32; N]) -> V {
        // SAFETY: `w` is 32 readable bytes.
        unsafe { _mm256_loadu_si256(w.as_ptr().cast()) }
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn to_words(v: V) -> [u32; N] {
        let mut w = [0u32; N];
        // SAFETY: `w` is 32 writable bytes.
        unsafe { _mm256_storeu_si256(w.as_mut_ptr().cast(), v) };
        w
    }

    /// Word `j` of the block at `offset` of every lane, in vector `j`.
    /// Safety: each of `src` is readable for `offset + 64` bytes.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub unsafe fn load_words(src: &[*const u8; N], offset: usize) -> [V; 16] {
        let mut lo = [_mm256_setzero_si256(); N];
        let mut hi = [_mm256_setzero_si256(); N];
        for l in 0..N {
            let p = src[l].add(offset);
            lo[l] = _mm256_loadu_si256(p.cast());
            hi[l] = _mm256_loadu_si256(p.add(32).cast());
        }
        let (a, b) = (transpose(lo), transpose(hi));
        std::array::from_fn(|j| if j < 8 { a[j] } else { b[j - 8] })
    }

    /// Rows become columns: out[j] holds word j of each of the 8 rows.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn transpose(r: [V; 8]) -> [V; 8] {
        let t: [V; 8] = std::array::from_fn(|i| {
            let (x, y) = (r[i / 2 * 2], r[i / 2 * 2 + 1]);
            if i % 2 == 0 {
                _mm256_unpacklo_epi32(x, y)
            } else {
                _mm256_unpackhi_epi32(x, y)
            }
        });
        // u[4q + j] holds word j (and j + 4) of rows 4q..4q+4.
        let u: [V; 8] = std::array::from_fn(|n| {
            let (q, j) = (n / 4, n % 4);
            let (x, y) = (t[4 * q + j / 2], t[4 * q + j / 2 + 2]);
            if j % 2 == 0 {
                _mm256_unpacklo_epi64(x, y)
            } else {
                _mm256_unpackhi_epi64(x, y)
            }
        });
        std::array::from_fn(|w| {
            if w < 4 {
                _mm256_permute2x128_si256::<0x20>(u[w], u[4 + w])
            } else {
                _mm256_permute2x128_si256::<0x31>(u[w - 4], u[w])
            }
        })
    }
}

mod avx512 {
    use std::arch::x86_64::*;
    pub type V = __m512i;
    pub const N: usize = 16;

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn splat(x: u32) -> V {
        _mm512_set1_epi32(x as i32)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn add(a: V, b: V) -> V {
        _mm512_add_epi32(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn rotl(a: V, s: u32) -> V {
        _mm512_rolv_epi32(a, _mm512_set1_epi32(s as i32))
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn f(b: V, c: V, d: V) -> V {
        _mm512_ternarylogic_epi32::<0xca>(b, c, d) // b ? c : d
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn g(b: V, c: V, d: V) -> V {
        _mm512_ternarylogic_epi32::<0xe4>(b, c, d) // d ? b : c
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn h(b: V, c: V, d: V) -> V {
        _mm512_ternarylogic_epi32::<0x96>(b, c, d) // b ^ c ^ d
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn i(b: V, c: V, d: V) -> V {
        _mm512_ternarylogic_epi32::<0x39>(b, c, d) // c ^ (b | !d)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn from_words(w: &[u32; N]) -> V {
        // SAFETY: `w` is 64 readable bytes.
        unsafe { _mm512_loadu_si512(w.as_ptr().cast()) }
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn to_words(v: V) -> [u32; N] {
        let mut w = [0u32; N];
        // SAFETY: `w` is 64 writable bytes.
        unsafe { _mm512_storeu_si512(w.as_mut_ptr().cast(), v) };
        w
    }

    /// Word `j` of the block at `offset` of every lane, in vector `j`.
    /// Safety: each of `src` is readable for `offset + 64` bytes.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn load_words(src: &[*const u8; N], offset: usize) -> [V; 16] {
        let r: [V; 16] = std::array::from_fn(|l| _mm512_loadu_si512(src[l].add(offset).cast()));
        let t: [V; 16] = std::array::from_fn(|i| {
            let (x, y) = (r[i / 2 * 2], r[i / 2 * 2 + 1]);
            if i % 2 == 0 {
                _mm512_unpacklo_epi32(x, y)
            } else {
                _mm512_unpackhi_epi32(x, y)
            }
        });
        // u[4q + j]: in 128-bit lane k, word 4k + j of rows 4q..4q+4.
        let u: [V; 16] = std::array::from_fn(|n| {
            let (q, j) = (n / 4, n % 4);
            let (x, y) = (t[4 * q + j / 2], t[4 * q + j / 2 + 2]);
            if j % 2 == 0 {
                _mm512_unpacklo_epi64(x, y)
            } else {
                _mm512_unpackhi_epi64(x, y)
            }
        });
        let mut out = [_mm512_setzero_si512(); 16];
        for j in 0..4 {
            let v0 = _mm512_shuffle_i32x4::<0x44>(u[j], u[4 + j]);
            let v1 = _mm512_shuffle_i32x4::<0xee>(u[j], u[4 + j]);
            let v2 = _mm512_shuffle_i32x4::<0x44>(u[8 + j], u[12 + j]);
            let v3 = _mm512_shuffle_i32x4::<0xee>(u[8 + j], u[12 + j]);
            out[j] = _mm512_shuffle_i32x4::<0x88>(v0, v2);
            out[4 + j] = _mm512_shuffle_i32x4::<0xdd>(v0, v2);
            out[8 + j] = _mm512_shuffle_i32x4::<0x88>(v1, v3);
            out[12 + j] = _mm512_shuffle_i32x4::<0xdd>(v1, v3);
        }
        out
    }
}
