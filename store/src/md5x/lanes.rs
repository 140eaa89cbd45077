//! MD5's compression function run on several independent messages at once,
//! one per SIMD lane: the same 64 steps, with every operation done on a
//! vector of words. With AVX-512 (16 lanes) and AVX2 (8 lanes) the steps
//! are written with their instructions (`x86`); up to 4 messages go through
//! a version over arrays of 4 words, which the compiler vectorizes for
//! SSE2; one message, through the scalar compression of the `md-5` crate.

#![allow(clippy::needless_range_loop)] // the lane loops are what vectorizes

/// The sine-derived constants of RFC 1321, step by step.
pub(super) const K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

/// The left rotations of each round's four steps.
pub(super) const S: [[u32; 4]; 4] = [
    [7, 12, 17, 22],
    [5, 9, 14, 20],
    [4, 11, 16, 23],
    [6, 10, 15, 21],
];

/// The message word each step adds.
pub(super) const fn word(step: usize) -> usize {
    match step / 16 {
        0 => step,
        1 => (5 * step + 1) % 16,
        2 => (3 * step + 5) % 16,
        _ => (7 * step) % 16,
    }
}

/// How many messages one call hashes at once on this machine: 16 with
/// AVX-512, 8 with AVX2, else 4 (SSE2 on x86-64; elsewhere four interleaved
/// scalar chains, which still beat one, md5 being bound by its latency).
pub fn width() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            return 16;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return 8;
        }
    }
    4
}

/// Compresses `blocks` 64-byte blocks of each of `msgs` into the matching
/// state. Every message must hold at least `blocks * 64` bytes; there may
/// be up to [`width`] of them (fewer lanes are padded, and their results
/// dropped).
pub fn compress(states: &mut [[u32; 4]], msgs: &[&[u8]], blocks: usize) {
    assert_eq!(states.len(), msgs.len());
    assert!(msgs.iter().all(|m| m.len() >= blocks * 64));
    let n = states.len();
    let w = width();
    assert!(n <= w, "{n} messages for {w} lanes");
    match w {
        _ if n <= 1 => scalar(states, msgs, blocks),
        #[cfg(target_arch = "x86_64")]
        16 if n > 8 => {
            // SAFETY: `width` checked that the CPU has AVX-512 F and VL.
            unsafe { super::x86::compress16(states, msgs, blocks) }
        }
        #[cfg(target_arch = "x86_64")]
        8 | 16 => {
            // SAFETY: `width` is 8 or more only where the CPU has AVX2.
            unsafe { super::x86::compress8(states, msgs, blocks) }
        }
        // Four lanes of plain code beat two scalar runs only from 3 on.
        _ if n <= 2 => scalar(states, msgs, blocks),
        _ => run::<4>(states, msgs, blocks),
    }
}

fn scalar(states: &mut [[u32; 4]], msgs: &[&[u8]], blocks: usize) {
    for (state, msg) in states.iter_mut().zip(msgs) {
        let (whole, _) = msg[..blocks * 64].as_chunks::<64>();
        md5::block_api::compress(state, whole);
    }
}

/// Loads the states into lanes (unused lanes hash the first message again),
/// compresses block after block, and stores the used lanes back.
#[inline(always)]
pub(super) fn run<const N: usize>(states: &mut [[u32; 4]], msgs: &[&[u8]], blocks: usize) {
    let mut v = [[0u32; N]; 4];
    let mut src: [&[u8]; N] = [msgs[0]; N];
    for (l, (state, msg)) in states.iter().zip(msgs).enumerate() {
        src[l] = msg;
        for w in 0..4 {
            v[w][l] = state[w];
        }
    }
    let mut m = [[0u32; N]; 16];
    for block in 0..blocks {
        for l in 0..N {
            let bytes = &src[l][block * 64..block * 64 + 64];
            for (j, word) in bytes.chunks_exact(4).enumerate() {
                m[j][l] = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            }
        }
        block_lanes::<N>(&mut v, &m);
    }
    for (l, state) in states.iter_mut().enumerate() {
        for w in 0..4 {
            state[w] = v[w][l];
        }
    }
}

/// One block of every lane: the 64 steps of RFC 1321, lane-wise, written
/// out so that every step's constant, rotation and word is known to the
/// compiler.
#[inline(always)]
fn block_lanes<const N: usize>(v: &mut [[u32; N]; 4], m: &[[u32; N]; 16]) {
    let mut x = *v;
    macro_rules! round {
        ($f:expr, $($i:literal)*) => { $( step::<N>(&mut x, m, $i, $f); )* };
    }
    let f = |b: u32, c: u32, d: u32| d ^ (b & (c ^ d));
    round!(f, 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
    let g = |b: u32, c: u32, d: u32| c ^ (d & (b ^ c));
    round!(g, 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);
    let h = |b: u32, c: u32, d: u32| b ^ c ^ d;
    round!(h, 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47);
    let i = |b: u32, c: u32, d: u32| c ^ (b | !d);
    round!(i, 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63);
    for w in 0..4 {
        for l in 0..N {
            v[w][l] = v[w][l].wrapping_add(x[w][l]);
        }
    }
}

/// Step `i`: the words play a, b, c and d in turn, so step 0 updates
/// `x[0]` from `x[1..4]`, step 1 updates `x[3]` from `x[0..3]`, and so on.
#[inline(always)]
fn step<const N: usize>(
    x: &mut [[u32; N]; 4],
    m: &[[u32; N]; 16],
    i: usize,
    f: impl Fn(u32, u32, u32) -> u32,
) {
    let r = i % 4;
    let (a, b, c, d) = ((4 - r) % 4, (5 - r) % 4, (6 - r) % 4, (7 - r) % 4);
    let (k, s, g) = (K[i], S[i / 16][r], &m[word(i)]);
    for l in 0..N {
        let sum = x[a][l]
            .wrapping_add(f(x[b][l], x[c][l], x[d][l]))
            .wrapping_add(k)
            .wrapping_add(g[l]);
        x[a][l] = x[b][l].wrapping_add(sum.rotate_left(s));
    }
}
