//! The IDX format of the MNIST distribution (LeCun et al.), plain or gzip-compressed.
//!
//! Header: two zero bytes, a type byte (`0x08` = unsigned byte, the only type MNIST and
//! Fashion-MNIST use), the number of dimensions, then one big-endian `u32` per dimension; the
//! data follows, row-major. Every inconsistency is reported with the file's name.

use coherent_core::DataError;
use std::io::Read;
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

/// Decompresses `bytes` if they are gzip data, then parses them as IDX. `path` only names the
/// source in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<IdxArray, DataError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut raw)
            .map_err(|e| malformed(path, format!("corrupt gzip data: {e}")))?;
        return parse_raw(&raw, path);
    }
    parse_raw(bytes, path)
}

fn parse_raw(bytes: &[u8], path: &Path) -> Result<IdxArray, DataError> {
    if bytes.len() < 4 {
        return Err(malformed(
            path,
            format!("file too short for an IDX header ({} bytes)", bytes.len()),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(malformed(
            path,
            format!(
                "bad magic number {:02x}{:02x}{:02x}{:02x}: an IDX file starts with two zero bytes",
                bytes[0], bytes[1], bytes[2], bytes[3]
            ),
        ));
    }
    if bytes[2] != 0x08 {
        return Err(malformed(
            path,
            format!(
                "IDX data type 0x{:02x} is not supported (expected 0x08, unsigned byte)",
                bytes[2]
            ),
        ));
    }
    let ndims = bytes[3] as usize;
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(malformed(
            path,
            format!("truncated header: {ndims} dimensions need {header} bytes"),
        ));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let expected =
        expected.ok_or_else(|| malformed(path, format!("dimensions {dims:?} overflow")))?;
    let got = bytes.len() - header;
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
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn p() -> &'static Path {
        Path::new("x-idx3-ubyte")
    }

    #[test]
    fn round_trips_plain_and_gzip() {
        let bytes = encode(&[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let a = parse(&bytes, p()).unwrap();
        assert_eq!(a.dims, vec![2, 2, 3]);
        assert_eq!(a.data[11], 12);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        assert_eq!(parse(&gz.finish().unwrap(), p()).unwrap(), a);
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
        assert!(msg(&[0x1f, 0x8b, 0, 1, 2]).contains("corrupt gzip"));
    }
}
