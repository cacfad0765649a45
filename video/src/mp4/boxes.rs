//! Box framing: a box is its 32-bit size, its four-letter type, then its
//! body; a full box adds a version byte and 24 bits of flags. Sizes are
//! patched in once the body is written, so nested boxes are written in
//! one pass.

use super::Mp4Error;

pub fn write_box(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), Mp4Error>,
) -> Result<(), Mp4Error> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(kind);
    body(out)?;
    let size = u32::try_from(out.len() - start)
        .map_err(|_| Mp4Error::TooLarge(String::from_utf8_lossy(kind).into_owned()))?;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

pub fn write_full_box(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), Mp4Error>,
) -> Result<(), Mp4Error> {
    write_box(out, kind, |out| {
        out.push(version);
        out.extend_from_slice(&flags.to_be_bytes()[1..]);
        body(out)
    })
}

pub fn u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_be_bytes());
}

pub fn u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

pub fn u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_be_bytes());
}

pub fn zeros(out: &mut Vec<u8>, n: usize) {
    out.resize(out.len() + n, 0);
}

/// The identity matrix of `mvhd` and `tkhd` (16.16 and 2.30 fixed point).
pub fn unity_matrix(out: &mut Vec<u8>) {
    for value in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000u32] {
        u32(out, value);
    }
}
