//! Results written once and read much later, such as materialised per-example gradients:
//! copied into place with non-temporal stores, which fill whole cache lines without reading
//! them first (half the memory traffic of ordinary stores to memory that is not in cache) and
//! leave the caches to the products.

/// `dst = src`: the whole cache lines of `dst` with non-temporal stores where the processor
/// has AVX-512, the values before and after them (and everything elsewhere) as usual.
///
/// # Panics
/// If the lengths differ.
pub(crate) fn copy_streaming(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len(), "streaming copy lengths");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the processor supports AVX-512F, checked just above.
        return unsafe { avx512::copy(dst, src) };
    }
    dst.copy_from_slice(src);
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// Values per cache line.
    const LINE: usize = 16;

    /// [`super::copy_streaming`] on AVX-512.
    ///
    /// # Safety
    /// The processor must support AVX-512F; `dst` and `src` must be as long.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn copy(dst: &mut [f32], src: &[f32]) {
        // values until `dst` reaches a cache line (all of them if it never does)
        let head = dst.as_ptr().align_offset(LINE * 4).min(dst.len());
        let lines = (dst.len() - head) / LINE;
        let (dst_head, rest) = dst.split_at_mut(head);
        let (src_head, src_rest) = src.split_at(head);
        dst_head.copy_from_slice(src_head);
        let (dst_lines, dst_tail) = rest.split_at_mut(lines * LINE);
        let (src_lines, src_tail) = src_rest.split_at(lines * LINE);
        for (d, s) in dst_lines
            .chunks_exact_mut(LINE)
            .zip(src_lines.chunks_exact(LINE))
        {
            // SAFETY: `d` is a whole cache line (64-byte aligned, 16 values) and `s` 16 values.
            unsafe { _mm512_stream_ps(d.as_mut_ptr(), _mm512_loadu_ps(s.as_ptr())) };
        }
        dst_tail.copy_from_slice(src_tail);
        // the streamed lines are ordered before whatever this thread stores next (and so
        // before the end of its task, which other threads wait on)
        _mm_sfence();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_copied_whatever_the_alignment_and_length() {
        let src: Vec<f32> = (0..300).map(|v| v as f32 * 0.5 - 7.0).collect();
        for start in 0..17 {
            for len in [0, 1, 15, 16, 17, 31, 64, 65, 200, 283 - start] {
                let mut dst = vec![f32::NAN; 300];
                copy_streaming(&mut dst[start..start + len], &src[..len]);
                assert_eq!(
                    &dst[start..start + len],
                    &src[..len],
                    "start {start}, {len} values"
                );
                assert!(
                    dst[..start].iter().all(|v| v.is_nan()),
                    "before, start {start}"
                );
                assert!(
                    dst[start + len..].iter().all(|v| v.is_nan()),
                    "after, {len} values"
                );
            }
        }
    }
}
