//! Wide vector instructions for the element-wise passes (normalisation, activations): the
//! project builds for baseline x86-64 (SSE2), so code that the compiler vectorises is compiled
//! a second time for AVX-512 and chosen at run time.

/// Runs `f` compiled for AVX-512 where the processor has it, for baseline x86-64 elsewhere.
/// `f` and what it calls must be inlined into it (`#[inline(always)]`) to be compiled wide.
#[inline(always)]
pub(crate) fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the processor supports AVX-512F, checked just above.
        return unsafe { avx512(f) };
    }
    f()
}

/// `f()`, compiled for AVX-512.
///
/// # Safety
/// The processor must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}
