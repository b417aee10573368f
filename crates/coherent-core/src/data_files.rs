//! Data files read once per process.
//!
//! Runs of one experiment often share their data files — a sweep over label noise builds one
//! dataset per noise level from the same files. Dataset plugins read through
//! [`read_data_file`], which keeps each file's bytes for the life of the process, so every file
//! is read from disk once however many datasets are built from it. A file that changed on disk
//! (another length or modification time) is read again.
//!
//! A data file must be a regular file that fits in the memory available: a FIFO or a device
//! named as a data file is refused by what it is (without blocking on it or reading it without
//! end), and a file larger than the memory left is refused before it is read.

use crate::DataError;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// A file as it was read: its path, length and modification time.
type Key = (PathBuf, u64, Option<SystemTime>);

static FILES: Mutex<Option<HashMap<Key, Arc<[u8]>>>> = Mutex::new(None);

/// The bytes of the data file at `path`, read from disk the first time this process asks for
/// it; an error names the file.
pub fn read_data_file(path: &Path) -> Result<Arc<[u8]>, DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bad = |problem: String| DataError::Malformed {
        path: path.to_path_buf(),
        problem,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(bad(format!(
            "is {}, not a data file",
            crate::memory::file_kind(&meta)
        )));
    }
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let key = (canonical, meta.len(), meta.modified().ok());
    if let Some(bytes) = cache().as_ref().and_then(|m| m.get(&key)) {
        return Ok(bytes.clone());
    }
    crate::memory::fits(meta.len(), "reading the file").map_err(bad)?;
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(meta.len() as usize).map_err(|_| {
        bad(format!(
            "cannot hold its {} in memory",
            crate::memory::bytes_text(meta.len())
        ))
    })?;
    // no further than its length when it was looked at, should it grow meanwhile
    std::fs::File::open(path)
        .and_then(|f| f.take(meta.len()).read_to_end(&mut bytes))
        .map_err(io)?;
    let bytes: Arc<[u8]> = bytes.into();
    cache()
        .get_or_insert_with(HashMap::new)
        .insert(key, bytes.clone());
    Ok(bytes)
}

fn cache() -> std::sync::MutexGuard<'static, Option<HashMap<Key, Arc<[u8]>>>> {
    FILES.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_once_and_a_missing_one_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("data.bin");
        std::fs::write(&path, b"first").unwrap();
        let first = read_data_file(&path).unwrap();
        assert_eq!(&*first, b"first");
        // a second read is served from memory
        assert!(Arc::ptr_eq(&first, &read_data_file(&path).unwrap()));
        // a file that changed is read again
        std::fs::write(&path, b"second!").unwrap();
        assert_eq!(&*read_data_file(&path).unwrap(), b"second!");
        let e = read_data_file(&tmp.path().join("missing.bin")).unwrap_err();
        assert!(e.to_string().contains("missing.bin"), "{e}");
    }

    #[test]
    fn directories_and_devices_are_refused_by_what_they_are() {
        let tmp = tempfile::tempdir().unwrap();
        let e = read_data_file(tmp.path()).unwrap_err().to_string();
        assert!(e.ends_with("is a directory, not a data file"), "{e}");
        #[cfg(unix)]
        {
            let e = read_data_file(Path::new("/dev/zero"))
                .unwrap_err()
                .to_string();
            assert_eq!(e, "/dev/zero: is a character device, not a data file");
        }
    }
}
