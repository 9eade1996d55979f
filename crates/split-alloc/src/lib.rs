//! photodeid's global allocator, the one place its `unsafe` lives.
//!
//! Ordinary blocks (a decoded panel, a band's coefficients: up to tens of
//! MB) go to mimalloc, which keeps freed memory for the next photo; glibc's
//! malloc hands each one back to the kernel, so the next photo faults and
//! zeroes every page again, with TLB shootdowns across the workers (a third
//! of a collage's time). Huge blocks stay with the system allocator, whose
//! fresh zeroed mappings cost nothing until touched: a large TIFF's sparse
//! read buffer is as long as the file but only its directories are written,
//! which mimalloc's reused (so explicitly zeroed) memory would touch whole.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks of this size and up go to the system allocator (glibc maps them
/// afresh). Below it: a collage panel decode, a region band, a 16 MiB read.
pub const HUGE: usize = 64 << 20;

/// The split allocator (see the crate docs).
pub struct SplitAlloc;

static MI: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn huge(size: usize) -> bool {
    size >= HUGE
}

// SAFETY: every block is freed, grown or shrunk by the allocator that made
// it, which the layout's size (the same at dealloc as at alloc, by the
// GlobalAlloc contract) tells; a realloc across the line moves the block.
unsafe impl GlobalAlloc for SplitAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if huge(layout.size()) {
            System.alloc(layout)
        } else {
            MI.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if huge(layout.size()) {
            System.alloc_zeroed(layout)
        } else {
            MI.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if huge(layout.size()) {
            System.dealloc(ptr, layout)
        } else {
            MI.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match (huge(layout.size()), huge(new_size)) {
            (true, true) => System.realloc(ptr, layout, new_size),
            (false, false) => MI.realloc(ptr, layout, new_size),
            _ => {
                let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
                    return std::ptr::null_mut();
                };
                let new = self.alloc(new_layout);
                if !new.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cross_the_line_both_ways_with_their_bytes() {
        let small = Layout::from_size_align(1000, 16).expect("a layout");
        // SAFETY: each block is used within its size and freed once with
        // the layout it has then.
        unsafe {
            let p = SplitAlloc.alloc(small);
            assert!(!p.is_null());
            for i in 0..1000 {
                *p.add(i) = (i % 251) as u8;
            }
            let q = SplitAlloc.realloc(p, small, HUGE + 5);
            assert!(!q.is_null());
            for i in 0..1000 {
                assert_eq!(*q.add(i), (i % 251) as u8);
            }
            let big = Layout::from_size_align(HUGE + 5, 16).expect("a layout");
            let r = SplitAlloc.realloc(q, big, 500);
            assert!(!r.is_null());
            for i in 0..500 {
                assert_eq!(*r.add(i), (i % 251) as u8);
            }
            SplitAlloc.dealloc(r, Layout::from_size_align(500, 16).expect("a layout"));
            let z = SplitAlloc.alloc_zeroed(big);
            assert!(!z.is_null());
            assert!((0..HUGE + 5).step_by(4096).all(|i| *z.add(i) == 0));
            SplitAlloc.dealloc(z, big);
        }
    }
}
