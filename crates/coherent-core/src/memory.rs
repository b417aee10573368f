//! How much memory this machine can give a run, and sizes in words.
//!
//! Before anything large is allocated — a network's parameters, a data file's examples — its
//! size is compared with what is available, so that a manifest asking for more is refused with
//! an error that says so, instead of the process being aborted by a failed allocation.
//! Available is the least of the machine's `MemAvailable` (`/proc/meminfo`), the free part of
//! the process's cgroup allowance (`memory.max` less `memory.current`, cgroup v2: a Slurm job's
//! `--mem`, a container's limit) and the environment variable [`MEMORY_ENV`].

use std::path::Path;

/// The environment variable that caps the memory coherent assumes available (bytes, or with a
/// suffix `K`, `M`, `G`, `T` in powers of 1024: `COHERENT_MAX_MEMORY=8G`), e.g. on a shared
/// machine.
pub const MEMORY_ENV: &str = "COHERENT_MAX_MEMORY";

/// Bytes available to this process, if anything says: the least of `MemAvailable`, the
/// cgroup's free allowance and [`MEMORY_ENV`].
pub fn available() -> Option<u64> {
    [meminfo(), cgroup(), from_env().ok().flatten()]
        .into_iter()
        .flatten()
        .min()
}

/// Where [`available`] comes from, in words: `22.7 GB available (MemAvailable)`.
pub fn describe_available() -> String {
    let env = from_env();
    let sources = [
        (meminfo(), "MemAvailable"),
        (cgroup(), "the cgroup's memory.max"),
        (env.clone().ok().flatten(), MEMORY_ENV),
    ];
    let least = sources.iter().filter_map(|(v, s)| v.map(|v| (v, *s))).min();
    let mut text = match least {
        Some((v, source)) => format!("{} available ({source})", bytes_text(v)),
        None => "no figure of the memory available".to_string(),
    };
    if let Err(bad) = env {
        text.push_str(&format!(
            "; {MEMORY_ENV} = {bad:?} is not a size and was ignored"
        ));
    }
    text
}

/// `Err` with what is needed and what is available when `bytes` (what `what` needs) do not
/// fit in the memory available.
pub fn fits(bytes: u64, what: &str) -> Result<(), String> {
    match available() {
        Some(free) if bytes > free => Err(format!(
            "{what} needs about {}, more than this machine has: {}",
            bytes_text(bytes),
            describe_available()
        )),
        _ => Ok(()),
    }
}

/// A byte count in decimal units with three significant digits: `314 GB`, `3.14 MB`, `12 B`.
pub fn bytes_text(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 999.5 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    match (unit, value) {
        (0, _) => format!("{n} B"),
        (_, v) if v >= 99.95 => format!("{v:.0} {}", UNITS[unit]),
        (_, v) if v >= 9.995 => format!("{v:.1} {}", UNITS[unit]),
        (_, v) => format!("{v:.2} {}", UNITS[unit]),
    }
}

/// An integer with thousands separators: `78,400,000,000`.
pub fn count_text(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (k, c) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What a file that is not a regular file is, in words: `a directory`, `a FIFO (named pipe)`,
/// `a character device`, ...
pub fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_file() {
        return "a regular file";
    }
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// `MemAvailable` of `/proc/meminfo`, in bytes.
fn meminfo() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The free part of the cgroup v2 allowance of this process, in bytes.
fn cgroup() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let max: u64 = read("memory.max")?.trim().parse().ok()?; // "max": no limit
    let current: u64 = read("memory.current")?.trim().parse().ok()?;
    Some(max.saturating_sub(current))
}

/// [`MEMORY_ENV`], if set: `Err` with its text if it is not a size.
fn from_env() -> Result<Option<u64>, String> {
    match std::env::var(MEMORY_ENV) {
        Ok(text) => parse_size(&text).map(Some).ok_or(text),
        Err(_) => Ok(None),
    }
}

/// `123`, `8G`, `512M`, `1.5G`, `2GiB`, `2GB` (powers of 1024).
fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (number, scale) = match t.chars().last()? {
        'K' | 'k' => (&t[..t.len() - 1], 1u64 << 10),
        'M' | 'm' => (&t[..t.len() - 1], 1 << 20),
        'G' | 'g' => (&t[..t.len() - 1], 1 << 30),
        'T' | 't' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let value: f64 = number.trim().parse().ok()?;
    let bytes = value * scale as f64;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_and_print() {
        assert_eq!(parse_size("8G"), Some(8 << 30));
        assert_eq!(parse_size("512 MiB"), Some(512 << 20));
        assert_eq!(parse_size("1.5k"), Some(1536));
        assert_eq!(parse_size("100"), Some(100));
        for bad in ["", "G", "-1G", "lots", "1e400"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        assert_eq!(bytes_text(314_000_000_000), "314 GB");
        assert_eq!(bytes_text(3_136_000_000), "3.14 GB");
        assert_eq!(bytes_text(25_088_000), "25.1 MB");
        assert_eq!(bytes_text(999), "999 B");
        assert_eq!(bytes_text(u64::MAX), "18447 PB");
        assert_eq!(count_text(78_400_000_000), "78,400,000,000");
        assert_eq!(count_text(7), "7");
        assert_eq!(count_text(100), "100");
        assert_eq!(count_text(1000), "1,000");
    }

    #[test]
    fn what_does_not_fit_says_what_is_available() {
        if available().is_some() {
            let e = fits(u64::MAX, "the data").unwrap_err();
            assert!(e.starts_with("the data needs about 18447 PB"), "{e}");
            assert!(e.contains("available ("), "{e}");
        }
        assert!(fits(0, "nothing").is_ok());
    }
}
