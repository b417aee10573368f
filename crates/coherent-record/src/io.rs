//! Atomic writes and schema-checked reads of whole record files.

use crate::{RecordError, SCHEMA};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::fs::File;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically: a reader sees the old file or the new one, never a
/// part. The temporary file is named after this process, so concurrent writers never share it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RecordError> {
    let tmp = written_aside(path, bytes)?;
    put_in_place(&tmp, path)
}

/// [`write_atomic`], keeping the file that `path` held as `previous` (replacing it): at every
/// moment `path` holds the old file or the new one, and `previous` the one before or the old
/// one, so a process killed in the middle leaves both files whole. (The old file takes its
/// second name by a hard link; where the file system has none, it is renamed, and `path` is
/// missing until the new file is in place.)
pub fn write_atomic_keeping_previous(
    path: &Path,
    previous: &Path,
    bytes: &[u8],
) -> Result<(), RecordError> {
    let tmp = written_aside(path, bytes)?;
    if let Err(e) = keep_as(path, previous) {
        let _ = std::fs::remove_file(&tmp);
        return Err(RecordError::io(path)(e));
    }
    put_in_place(&tmp, path)
}

/// Gives the file at `path`, if there is one, the second name `previous` (replacing it): by a
/// hard link, or where that fails by renaming it.
fn keep_as(path: &Path, previous: &Path) -> std::io::Result<()> {
    let link = temporary(previous);
    let _ = std::fs::remove_file(&link);
    let linked = std::fs::hard_link(path, &link).and_then(|_| std::fs::rename(&link, previous));
    let Err(e) = linked else { return Ok(()) };
    let _ = std::fs::remove_file(&link);
    if e.kind() == std::io::ErrorKind::NotFound {
        return Ok(());
    }
    match std::fs::rename(path, previous) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// `<path>.<pid>.tmp`: where this process writes a file before it takes its name.
fn temporary(path: &Path) -> std::path::PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    std::path::PathBuf::from(tmp)
}

/// Writes `bytes` to the [`temporary`] file of `path`, synced to disk, and returns its path.
fn written_aside(path: &Path, bytes: &[u8]) -> Result<std::path::PathBuf, RecordError> {
    let tmp = temporary(path);
    let written = File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|_| f.sync_all()))
        .map_err(RecordError::io(&tmp));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(tmp)
}

/// Renames `tmp` to `path` and syncs the directory.
fn put_in_place(tmp: &Path, path: &Path) -> Result<(), RecordError> {
    if let Err(e) = std::fs::rename(tmp, path) {
        let _ = std::fs::remove_file(tmp);
        return Err(RecordError::io(path)(e));
    }
    if let Some(dir) = path.parent() {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Writes `value` as pretty JSON to `path` atomically.
pub fn write_json_atomic(path: &Path, value: &impl Serialize) -> Result<(), RecordError> {
    let mut text = serde_json::to_string_pretty(value).expect("records serialise");
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Reads the JSON record at `path`: a version this crate reads (see [`SCHEMA`]), in the shape
/// of `T`; errors name the file (and the line of a syntax error).
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, RecordError> {
    let text = std::fs::read_to_string(path).map_err(RecordError::io(path))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| RecordError::malformed(path, Some(e.line()), format!("invalid JSON ({e})")))?;
    if !value.is_object() {
        return Err(RecordError::malformed(path, None, "expected a JSON object"));
    }
    let schema = value.get("schema").map_or(Some(1), Value::as_u64);
    match schema {
        Some(s) if s <= SCHEMA as u64 => {}
        Some(s) => {
            return Err(RecordError::malformed(
                path,
                None,
                format!(
                    "written by a newer version of coherent (record schema {s}; this version reads schemas 1 to {SCHEMA}): update coherent to read it"
                ),
            ))
        }
        None => return Err(RecordError::malformed(path, None, "`schema` must be a number")),
    }
    serde_json::from_value(value).map_err(|e| RecordError::malformed(path, None, e.to_string()))
}

/// Removes the files `names` of the directory `dir` that exist.
pub fn remove_stale(dir: &Path, names: &[&str]) -> Result<(), RecordError> {
    for name in names {
        let f = dir.join(name);
        match std::fs::remove_file(&f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(RecordError::io(&f)(e)),
        }
    }
    Ok(())
}

/// Removes the temporary files ([`write_atomic`]'s `<name>.<pid>.tmp`) of `dir` and of its
/// `weights/`: called by the holder of a run directory's lock, the only writer, these are what
/// an earlier writer left when it was killed in the middle of a write.
pub fn remove_temporaries(dir: &Path) -> Result<(), RecordError> {
    for d in [dir.to_path_buf(), dir.join("weights")] {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let temporary = path.extension().is_some_and(|e| e == "tmp");
            if temporary && path.is_file() {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(RecordError::io(&path)(e)),
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn temporaries_of_earlier_writers_are_removed_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::create_dir(dir.join("weights")).unwrap();
        for name in [
            "checkpoint.safetensors.123.tmp",
            "weights/final.safetensors.9.tmp",
        ] {
            std::fs::write(dir.join(name), b"cut short").unwrap();
        }
        for name in ["metrics.jsonl", "weights/initial.safetensors", "notes.tmpx"] {
            std::fs::write(dir.join(name), b"kept").unwrap();
        }
        remove_temporaries(dir).unwrap();
        assert!(!dir.join("checkpoint.safetensors.123.tmp").exists());
        assert!(!dir.join("weights/final.safetensors.9.tmp").exists());
        for name in ["metrics.jsonl", "weights/initial.safetensors", "notes.tmpx"] {
            assert!(dir.join(name).exists(), "{name}");
        }
    }

    #[test]
    fn the_last_file_is_never_missing_while_the_one_before_it_is_kept() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let tmp = tempfile::tempdir().unwrap();
        let (path, previous) = (tmp.path().join("last"), tmp.path().join("before"));
        write_atomic_keeping_previous(&path, &previous, b"0").unwrap();
        assert!(!previous.exists(), "nothing before the first");
        let (done, missing) = (AtomicBool::new(false), AtomicUsize::new(0));
        std::thread::scope(|scope| {
            // a reader that looks for both files while they are replaced
            scope.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    let whole = |p: &Path| std::fs::read(p).is_ok_and(|b| !b.is_empty());
                    if !whole(&path) {
                        missing.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            for k in 1..=50 {
                write_atomic_keeping_previous(&path, &previous, k.to_string().as_bytes()).unwrap();
                assert_eq!(std::fs::read(&path).unwrap(), k.to_string().as_bytes());
                let before = (k - 1).to_string();
                assert_eq!(std::fs::read(&previous).unwrap(), before.as_bytes());
            }
            done.store(true, Ordering::Relaxed);
        });
        assert_eq!(
            missing.load(Ordering::Relaxed),
            0,
            "the last file went missing"
        );
        let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 2, "no temporary left: {names:?}");
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Thing {
        a: u32,
    }

    #[test]
    fn reads_older_schemas_and_refuses_newer_ones_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = dir.join("thing.json");
        write_atomic(&path, b"{\"a\": 1}").unwrap();
        assert_eq!(read_json::<Thing>(&path).unwrap(), Thing { a: 1 });
        write_json_atomic(&path, &serde_json::json!({"schema": 99, "a": 1})).unwrap();
        let e = read_json::<Thing>(&path).unwrap_err().to_string();
        assert!(
            e.contains("thing.json") && e.contains("newer version"),
            "{e}"
        );
        std::fs::write(&path, "{\"a\": ").unwrap();
        let e = read_json::<Thing>(&path).unwrap_err().to_string();
        assert!(e.contains("thing.json:1: invalid JSON"), "{e}");
        std::fs::write(&path, "{\"b\": 2}").unwrap();
        let e = read_json::<Thing>(&path).unwrap_err().to_string();
        assert!(e.contains("missing field `a`"), "{e}");
        let leftovers = std::fs::read_dir(dir).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left");
    }
}
