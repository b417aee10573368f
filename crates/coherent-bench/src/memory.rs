//! Peak resident memory on Linux (`VmHWM` in `/proc/self/status`, reset through
//! `/proc/self/clear_refs`). Elsewhere every reading is `None`.

fn status_kib(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the peak to the current resident size and returns that size (KiB).
pub fn reset_peak() -> Option<u64> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    status_kib("VmRSS:")
}

/// Growth of the peak resident size since `base` (from [`reset_peak`]), in MiB.
pub fn growth_since(base: Option<u64>) -> Option<f64> {
    let peak = status_kib("VmHWM:")?;
    Some(peak.saturating_sub(base?) as f64 / 1024.0)
}
