//! Reading a manifest file: a regular file of at most [`MAX_MANIFEST_BYTES`], checked before
//! it is opened, so that a directory, a FIFO or a device (`/dev/zero`) given as the manifest is
//! refused at once instead of blocking or being read without end.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;

/// The largest manifest read (1 MiB): manifests are a few hundred bytes; a larger file is
/// not one.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// The bytes of the manifest at `path`, or what is wrong with it in words (the caller names
/// the file).
pub fn read_manifest(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read the manifest: {e}"))?;
    check_kind(&meta)?;
    let file = File::open(path).map_err(|e| format!("cannot read the manifest: {e}"))?;
    // The file may have been replaced since: what is open is checked again.
    check_kind(
        &file
            .metadata()
            .map_err(|e| format!("cannot read the manifest: {e}"))?,
    )?;
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the manifest: {e}"))?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(too_large(None));
    }
    Ok(bytes)
}

/// A regular file no larger than the limit.
fn check_kind(meta: &Metadata) -> Result<(), String> {
    if !meta.is_file() {
        return Err(format!(
            "the manifest is {}, not a file: give the path of a TOML file",
            coherent_core::memory::file_kind(meta)
        ));
    }
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(too_large(Some(meta.len())));
    }
    Ok(())
}

fn too_large(len: Option<u64>) -> String {
    let size = len.map_or("more than 1 MiB".into(), |n| format!("{n} bytes"));
    format!("the manifest is {size}; a manifest is at most 1 MiB ({MAX_MANIFEST_BYTES} bytes): is this the right file?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_devices_and_large_files_are_refused_by_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_manifest(dir.path()).unwrap_err();
        assert!(e.contains("is a directory, not a file"), "{e}");
        let big = dir.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; MAX_MANIFEST_BYTES as usize + 1]).unwrap();
        let e = read_manifest(&big).unwrap_err();
        assert!(
            e.contains("1048577 bytes") && e.contains("at most 1 MiB"),
            "{e}"
        );
        let small = dir.path().join("small.toml");
        std::fs::write(&small, b"seed = 1\n").unwrap();
        assert_eq!(read_manifest(&small).unwrap(), b"seed = 1\n");
        let e = read_manifest(&dir.path().join("none.toml")).unwrap_err();
        assert!(e.starts_with("cannot read the manifest"), "{e}");
        #[cfg(unix)]
        {
            let e = read_manifest(Path::new("/dev/zero")).unwrap_err();
            assert!(e.contains("a character device"), "{e}");
        }
    }
}
