//! md5 as the master computes it for every value it stores (the record's
//! hash, S3's ETag): a streaming state like any other, plus
//! [`update_many`], which hashes the pieces of several values at once, one
//! per SIMD lane (see `lanes`). md5 cannot be sped up within one value,
//! each block depends on the last, but the master hashes many uploads at
//! the same time, and lanes hash up to 16 of them for little more than the
//! price of one.

mod lanes;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use lanes::width;

const INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// The md5 of a value, fed piece by piece.
#[derive(Clone)]
pub struct Md5 {
    state: [u32; 4],
    len: u64,
    tail: [u8; 64],
    tail_len: usize,
}

impl Default for Md5 {
    fn default() -> Md5 {
        Md5 {
            state: INIT,
            len: 0,
            tail: [0; 64],
            tail_len: 0,
        }
    }
}

impl Md5 {
    pub fn new() -> Md5 {
        Md5::default()
    }

    pub fn update(&mut self, data: &[u8]) {
        let rest = self.fill_tail(data);
        let (whole, tail) = rest.as_chunks::<64>();
        md5::block_api::compress(&mut self.state, whole);
        self.keep_tail(tail);
    }

    /// The digest of everything fed in.
    pub fn finalize(mut self) -> [u8; 16] {
        let bits = self.len.wrapping_mul(8);
        let mut pad = [0u8; 72];
        pad[0] = 0x80;
        let zeros = (119 - self.tail_len) % 64; // to 56 bytes past a block
        pad[1 + zeros..9 + zeros].copy_from_slice(&bits.to_le_bytes());
        self.update(&pad[..9 + zeros]);
        debug_assert_eq!(self.tail_len, 0);
        let mut out = [0u8; 16];
        for (o, w) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// Completes the partial block with the start of `data` (compressing
    /// it once full) and returns the rest of `data`.
    fn fill_tail<'d>(&mut self, data: &'d [u8]) -> &'d [u8] {
        self.len += data.len() as u64;
        if self.tail_len == 0 {
            return data;
        }
        let take = data.len().min(64 - self.tail_len);
        self.tail[self.tail_len..self.tail_len + take].copy_from_slice(&data[..take]);
        self.tail_len += take;
        if self.tail_len == 64 {
            md5::block_api::compress(&mut self.state, &[self.tail]);
            self.tail_len = 0;
        }
        &data[take..]
    }

    /// Keeps the bytes past the last whole block for the next piece.
    fn keep_tail(&mut self, rest: &[u8]) {
        self.tail[self.tail_len..self.tail_len + rest.len()].copy_from_slice(rest);
        self.tail_len += rest.len();
    }
}

/// Feeds each piece to its md5, the values side by side in SIMD lanes
/// while two or more have whole blocks left.
pub fn update_many(jobs: &mut [(&mut Md5, &[u8])]) {
    let mut live: Vec<(usize, &[u8])> = Vec::with_capacity(jobs.len());
    for (i, (md5, data)) in jobs.iter_mut().enumerate() {
        let rest = md5.fill_tail(data);
        let whole = rest.len() / 64 * 64;
        md5.keep_tail(&rest[whole..]);
        if whole > 0 {
            live.push((i, &rest[..whole]));
        }
    }
    let width = width();
    while !live.is_empty() {
        let n = width.min(live.len());
        let group = &mut live[..n];
        let blocks = group.iter().map(|(_, d)| d.len() / 64).min().unwrap_or(0);
        let mut states: Vec<[u32; 4]> = group.iter().map(|(i, _)| jobs[*i].0.state).collect();
        let msgs: Vec<&[u8]> = group.iter().map(|(_, d)| *d).collect();
        lanes::compress(&mut states, &msgs, blocks);
        for ((i, data), state) in group.iter_mut().zip(states) {
            jobs[*i].0.state = state;
            *data = &data[blocks * 64..];
        }
        live.retain(|(_, d)| !d.is_empty());
    }
}

#[cfg(test)]
mod tests;
