//! A heap buffer aligned for `O_DIRECT` I/O.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;

/// Memory, file offsets and lengths of `O_DIRECT` writes are kept to
/// multiples of this (the largest logical block size in common use).
pub const ALIGN: usize = 4096;

pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    layout: Layout,
}

impl AlignedBuf {
    pub fn new(capacity: usize) -> AlignedBuf {
        let layout = Layout::from_size_align(capacity.max(ALIGN), ALIGN)
            .expect("aligned buffer size overflows");
        // SAFETY: the layout's size is not zero.
        let ptr =
            NonNull::new(unsafe { alloc(layout) }).unwrap_or_else(|| handle_alloc_error(layout));
        AlignedBuf {
            ptr,
            len: 0,
            layout,
        }
    }

    pub fn capacity(&self) -> usize {
        self.layout.size()
    }

    /// Replaces the contents with `data`, which must fit.
    pub fn set(&mut self, data: &[u8]) {
        assert!(
            data.len() <= self.capacity(),
            "data larger than the aligned buffer"
        );
        // SAFETY: the allocation holds `capacity` bytes and cannot overlap `data`,
        // which is borrowed while `self` is borrowed mutably.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr(), data.len()) };
        self.len = data.len();
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

// SAFETY: the pointer is valid for `len` initialised bytes for as long as the
// buffer lives, and does not move when the buffer does.
unsafe impl monoio::buf::IoBuf for AlignedBuf {
    fn read_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    fn bytes_init(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monoio::buf::IoBuf;

    #[test]
    fn aligned_and_filled() {
        let mut b = AlignedBuf::new(3 * ALIGN);
        assert_eq!(b.read_ptr() as usize % ALIGN, 0);
        b.set(b"hello");
        assert_eq!(b.bytes_init(), 5);
        // SAFETY: 5 bytes were just written.
        assert_eq!(
            unsafe { std::slice::from_raw_parts(b.read_ptr(), 5) },
            b"hello"
        );
        assert_eq!(AlignedBuf::new(1).capacity(), ALIGN);
    }
}
