use super::*;
use md5::Digest;

fn hex(d: [u8; 16]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn one(data: &[u8]) -> String {
    let mut m = Md5::new();
    m.update(data);
    hex(m.finalize())
}

/// The test suite of RFC 1321, appendix A.5.
#[test]
fn rfc_1321_vectors() {
    let cases: [(&str, &str); 7] = [
        ("", "d41d8cd98f00b204e9800998ecf8427e"),
        ("a", "0cc175b9c0f1b6a831c399e269772661"),
        ("abc", "900150983cd24fb0d6963f7d28e17f72"),
        ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
        (
            "abcdefghijklmnopqrstuvwxyz",
            "c3fcd3d76192e4007dfb496cca67e13b",
        ),
        (
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            "d174ab98d277d9f5a5611c2c9f419d9f",
        ),
        (
            "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
            "57edf4a22be3c955ac49da2e2107b67a",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(one(text.as_bytes()), want, "md5({text:?})");
    }
}

/// A deterministic value of `len` bytes, different for each `seed`.
fn value(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Up to 40 values of different lengths, fed side by side in pieces of
/// uneven sizes (so lanes start, end and carry partial blocks at different
/// times), each equal to the md5 crate's digest of the whole value.
#[test]
fn side_by_side_equals_one_at_a_time() {
    for count in [1usize, 2, 3, 8, 9, 16, 17, 40] {
        let values: Vec<Vec<u8>> = (0..count)
            .map(|i| value(i as u64, 1 + i * 977 % 70_000 + (i % 3) * 64))
            .collect();
        let mut states = vec![Md5::new(); count];
        let mut at = vec![0usize; count];
        let mut round = 0usize;
        while at.iter().zip(&values).any(|(a, v)| *a < v.len()) {
            round += 1;
            let mut pieces: Vec<(&mut Md5, &[u8])> = Vec::new();
            for (i, st) in states.iter_mut().enumerate() {
                let step = [1, 63, 64, 65, 4096, 12_345][(i + round) % 6];
                let end = (at[i] + step).min(values[i].len());
                pieces.push((st, &values[i][at[i]..end]));
                at[i] = end;
            }
            update_many(&mut pieces);
        }
        for (st, v) in states.into_iter().zip(&values) {
            assert_eq!(hex(st.finalize()), hex(md5::Md5::digest(v).into()));
        }
    }
}

/// Every lane count the machine offers, each lane's result in its place.
#[test]
fn each_lane_count_of_whole_blocks() {
    for n in 1..=width() {
        let values: Vec<Vec<u8>> = (0..n).map(|i| value(100 + i as u64, 64 * 50)).collect();
        let mut states = vec![INIT; n];
        let msgs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
        lanes::compress(&mut states, &msgs, 50);
        for (st, v) in states.iter().zip(&values) {
            let mut one = INIT;
            md5::block_api::compress(&mut one, v.as_chunks::<64>().0);
            assert_eq!(*st, one);
        }
    }
}

/// The four-lane version of plain code, used where AVX2 is missing.
#[test]
fn four_lanes_of_plain_code() {
    for n in 1..=4 {
        let values: Vec<Vec<u8>> = (0..n).map(|i| value(200 + i as u64, 64 * 9)).collect();
        let mut states = vec![INIT; n];
        let msgs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
        lanes::run::<4>(&mut states, &msgs, 9);
        for (st, v) in states.iter().zip(&values) {
            let mut one = INIT;
            md5::block_api::compress(&mut one, v.as_chunks::<64>().0);
            assert_eq!(*st, one);
        }
    }
}
