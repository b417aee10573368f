//! The IDX format of the MNIST distribution (LeCun et al.), plain or gzip-compressed.
//!
//! Header: two zero bytes, a type byte (`0x08` = unsigned byte, the only type MNIST and
//! Fashion-MNIST use), the number of dimensions, then one big-endian `u32` per dimension; the
//! data follows, row-major. Every inconsistency is reported with the file's name.

use coherent_core::DataError;
use std::io::{Read, Write};
use std::path::Path;

/// An IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// Size of every dimension.
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

fn malformed(path: &Path, problem: impl Into<String>) -> DataError {
    DataError::Malformed {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// Parses `bytes` as IDX, decompressing them first if they are gzip data. `path` only names
/// the source in errors.
///
/// The header is checked before the data is read: gzip data is decompressed no further than
/// the header announces (and one byte more, to tell trailing bytes), so a small compressed
/// file cannot expand without end, and an announced size that does not fit in memory is
/// refused before anything is allocated.
pub fn parse(bytes: &[u8], path: &Path) -> Result<IdxArray, DataError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut gz = flate2::read::GzDecoder::new(bytes);
        return read_idx(&mut gz, path, None);
    }
    read_idx(&mut &bytes[..], path, Some(bytes.len()))
}

/// Reads an IDX array from `r`; `len` is the length of an uncompressed source, if known.
fn read_idx(r: &mut dyn Read, path: &Path, len: Option<usize>) -> Result<IdxArray, DataError> {
    let gz = len.is_none();
    let mut magic = [0u8; 4];
    let got = fill(r, &mut magic, path)?;
    if got < 4 {
        return Err(malformed(
            path,
            format!("too short for an IDX header ({got} bytes{})", unpacked(gz)),
        ));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(malformed(
            path,
            format!(
                "bad magic number {:02x}{:02x}{:02x}{:02x}: an IDX file starts with two zero bytes",
                magic[0], magic[1], magic[2], magic[3]
            ),
        ));
    }
    if magic[2] != 0x08 {
        return Err(malformed(
            path,
            format!(
                "IDX data type 0x{:02x} is not supported (expected 0x08, unsigned byte)",
                magic[2]
            ),
        ));
    }
    let ndims = magic[3] as usize;
    let mut raw = vec![0u8; 4 * ndims];
    if fill(r, &mut raw, path)? < raw.len() {
        return Err(malformed(
            path,
            format!(
                "truncated header: {ndims} dimensions need {} bytes",
                4 + 4 * ndims
            ),
        ));
    }
    let dims: Vec<usize> = raw
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| malformed(path, format!("dimensions {dims:?} overflow")))?;
    let header = 4 + 4 * ndims;
    if let Some(len) = len {
        return plain_data(r, path, &dims, expected, len - header);
    }
    // as f32 examples the values take four times as much again
    let need = (expected as u64).saturating_mul(5);
    coherent_core::memory::fits(need, &format!("the {dims:?} values its header announces"))
        .map_err(|e| malformed(path, e))?;
    let mut data = Vec::new();
    data.try_reserve_exact(expected).map_err(|_| {
        malformed(
            path,
            format!("cannot hold the {expected} bytes of {dims:?}"),
        )
    })?;
    r.take(expected as u64)
        .read_to_end(&mut data)
        .map_err(|e| corrupt(path, e))?;
    if data.len() < expected {
        return Err(malformed(
            path,
            format!(
                "truncated: the header {dims:?} announces {expected} data bytes, the file has {}{}",
                data.len(),
                unpacked(gz)
            ),
        ));
    }
    if fill(r, &mut [0u8; 1], path)? > 0 {
        return Err(malformed(
            path,
            format!(
                "unexpected bytes after the {expected} data bytes of {dims:?}{}",
                unpacked(gz)
            ),
        ));
    }
    Ok(IdxArray { dims, data })
}

/// The data of an uncompressed file of which `got` bytes follow the header.
fn plain_data(
    r: &mut dyn Read,
    path: &Path,
    dims: &[usize],
    expected: usize,
    got: usize,
) -> Result<IdxArray, DataError> {
    if got < expected {
        return Err(malformed(
            path,
            format!("truncated: the header {dims:?} announces {expected} data bytes, the file has {got}"),
        ));
    }
    if got > expected {
        return Err(malformed(
            path,
            format!(
                "{} unexpected bytes after the {expected} data bytes of {dims:?}",
                got - expected
            ),
        ));
    }
    let need = (expected as u64).saturating_mul(4);
    coherent_core::memory::fits(need, &format!("the {dims:?} values as numbers"))
        .map_err(|e| malformed(path, e))?;
    let mut data = Vec::with_capacity(expected);
    r.read_to_end(&mut data).map_err(|e| corrupt(path, e))?;
    Ok(IdxArray {
        dims: dims.to_vec(),
        data,
    })
}

/// ` (decompressed)` for gzip data.
fn unpacked(gz: bool) -> &'static str {
    if gz {
        " when decompressed"
    } else {
        ""
    }
}

/// Reads into `buf` until it is full or the data ends; the number of bytes read.
fn fill(r: &mut dyn Read, buf: &mut [u8], path: &Path) -> Result<usize, DataError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(corrupt(path, e)),
        }
    }
    Ok(got)
}

fn corrupt(path: &Path, e: std::io::Error) -> DataError {
    let what = match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "corrupt gzip data: the file ends early".to_string(),
        _ => format!("corrupt gzip data: {e}"),
    };
    malformed(
        path,
        format!("{what}; the file is damaged, download it again"),
    )
}

/// Encodes unsigned bytes as IDX (for tests and tools that write fixtures).
pub fn encode(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Compresses `bytes` as a `.gz` file holds them (for tests and tools that write fixtures).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("x-idx3-ubyte")
    }

    #[test]
    fn round_trips_plain_and_gzip() {
        let bytes = encode(&[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let a = parse(&bytes, p()).unwrap();
        assert_eq!(a.dims, vec![2, 2, 3]);
        assert_eq!(a.data[11], 12);
        assert_eq!(parse(&gzip(&bytes), p()).unwrap(), a);
    }

    #[test]
    fn rejects_bad_magic_type_truncation_and_trailing_bytes() {
        let msg = |b: &[u8]| parse(b, p()).unwrap_err().to_string();
        assert!(msg(&[1, 0, 8, 1, 0, 0, 0, 0]).contains("bad magic number"));
        assert!(msg(&[0, 0, 0x0d, 1, 0, 0, 0, 0]).contains("data type 0x0d"));
        let mut b = encode(&[4], &[1, 2, 3, 4]);
        b.pop();
        let m = msg(&b);
        assert!(m.contains("truncated") && m.contains("x-idx3-ubyte"), "{m}");
        b.extend([0, 0]);
        assert!(msg(&b).contains("unexpected bytes"));
        assert!(msg(&[0, 0]).contains("too short"));
        assert!(msg(&[0x1f, 0x8b, 0, 1, 2]).contains("corrupt gzip data"));
    }

    /// A reader that counts the bytes it hands out.
    struct Counted<R>(R, usize);

    impl<R: Read> Read for Counted<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1 += n;
            Ok(n)
        }
    }

    /// A gzip file whose content is far longer than its header announces is refused after the
    /// announced bytes and one more, not decompressed to its end.
    #[test]
    fn gzip_data_is_read_no_further_than_the_header_announces() {
        let mut bytes = encode(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        bytes.extend(std::iter::repeat_n(7u8, 50_000_000));
        let packed = gzip(&bytes);
        assert!(packed.len() < 1_000_000, "{}", packed.len());
        let msg = parse(&packed, p()).unwrap_err().to_string();
        assert_eq!(
            msg,
            "x-idx3-ubyte: unexpected bytes after the 6 data bytes of [2, 3] when decompressed"
        );
        // what the decoder produced: the header, the data and one byte
        let mut counted = Counted(flate2::read::GzDecoder::new(&packed[..]), 0);
        assert!(read_idx(&mut counted, p(), None).is_err());
        assert_eq!(counted.1, 4 + 8 + 6 + 1);
        let short = gzip(&encode(&[2, 3], &[1, 2, 3]));
        let msg = parse(&short, p()).unwrap_err().to_string();
        assert!(
            msg.contains("announces 6 data bytes, the file has 3 when decompressed"),
            "{msg}"
        );
        let mut cut = gzip(&encode(&[200, 300], &vec![9u8; 60_000]));
        cut.truncate(cut.len() / 2);
        let msg = parse(&cut, p()).unwrap_err().to_string();
        assert!(
            msg.contains("the file ends early") && msg.contains("download it again"),
            "{msg}"
        );
    }

    /// A header announcing more values than memory holds is refused before any is read.
    #[test]
    fn a_header_announcing_too_much_is_refused_before_reading() {
        let huge = gzip(&encode(&[u32::MAX as usize, u32::MAX as usize], &[]));
        let msg = parse(&huge, p()).unwrap_err().to_string();
        if coherent_core::memory::available().is_some() {
            assert!(msg.contains("more than this machine has"), "{msg}");
        }
        let msg = parse(&encode(&[u32::MAX as usize, u32::MAX as usize], &[]), p())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("truncated"), "{msg}");
    }
}
