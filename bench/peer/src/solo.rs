//! `Solo<N>`: a dirty bitmap that does nothing, exactly like `()`, but a distinct type per case.
//!
//! vm-memory's access path (`read_slice` -> `get_slices` -> `stop_on_error` -> the volatile copy)
//! is generic over the memory type, and it is fast only where the compiler inlines it into the
//! call site, which is what lets it see, for instance, that a `read_obj::<u64>` copies 8 bytes.
//! With one memory type shared by all the cases below, that path has many callers, is not inlined
//! anywhere, and a hot `read_obj::<u64>` costs several times what it costs in a benchmark program
//! of its own. Giving each case its own `Solo<N>` gives it its own copy of the path, so every case
//! measures vm-memory as a dedicated program would: the figure most favourable to the crate.

use vm_memory::bitmap::{Bitmap, BitmapSlice, NewBitmap, WithBitmapSlice};

#[derive(Clone, Copy, Debug, Default)]
pub struct Solo<const N: usize>;

impl<const N: usize> WithBitmapSlice<'_> for Solo<N> {
    type S = Self;
}

impl<const N: usize> BitmapSlice for Solo<N> {}

impl<const N: usize> Bitmap for Solo<N> {
    fn mark_dirty(&self, _offset: usize, _len: usize) {}

    fn dirty_at(&self, _offset: usize) -> bool {
        false
    }

    fn slice_at(&self, _offset: usize) -> Self {
        *self
    }
}

impl<const N: usize> NewBitmap for Solo<N> {
    fn with_len(_len: usize) -> Self {
        Solo
    }
}
