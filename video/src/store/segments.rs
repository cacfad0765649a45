//! Fragment payloads in append-only segment files, one directory per
//! stream: thousands of cameras make thousands of files a day, not a file
//! per two-second fragment. A segment is never rewritten; retention
//! removes whole segments once the index no longer points into them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use runnel_store::crypto::{self, Domain, KEY_LEN};

/// A segment is closed and a new one begun past this size.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Location {
    pub segment: u64,
    pub offset: u64,
    pub len: u64,
}

/// The segment a stream's one writer appends to. Each process start
/// begins a new segment, so bytes a crash left after the last indexed
/// fragment are never appended to, only left unreferenced.
pub struct SegmentWriter {
    dir: PathBuf,
    current: Option<(u64, File, u64)>,
    stream_id: u64,
    /// Fragments are encrypted under it when the server has one.
    key: Option<[u8; KEY_LEN]>,
}

pub fn stream_dir(root: &Path, stream_id: u64) -> PathBuf {
    root.join(format!("{stream_id:016x}"))
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:016x}.seg"))
}

/// The segments of a stream on disk, lowest first.
pub fn list_segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut segments = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(segments),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(hex) = name.strip_suffix(".seg")
            && let Ok(segment) = u64::from_str_radix(hex, 16)
        {
            segments.push(segment);
        }
    }
    segments.sort_unstable();
    Ok(segments)
}

impl SegmentWriter {
    pub fn new(root: &Path, stream_id: u64, key: Option<[u8; KEY_LEN]>) -> Self {
        SegmentWriter {
            dir: stream_dir(root, stream_id),
            current: None,
            stream_id,
            key,
        }
    }

    pub fn encrypts(&self) -> bool {
        self.key.is_some()
    }

    /// Appends `bytes` (encrypted, with a key) and syncs them to disk before
    /// saying where they are.
    pub fn append(&mut self, bytes: &[u8]) -> std::io::Result<Location> {
        let roll = match &self.current {
            None => true,
            Some((_, _, len)) => *len > 0 && *len + bytes.len() as u64 > SEGMENT_BYTES,
        };
        if roll {
            std::fs::create_dir_all(&self.dir)?;
            let next = match &self.current {
                Some((segment, _, _)) => segment + 1,
                None => list_segments(&self.dir)?.last().map_or(0, |s| s + 1),
            };
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(segment_path(&self.dir, next))?;
            // The new file's directory entry must survive a crash too.
            File::open(&self.dir)?.sync_all()?;
            self.current = Some((next, file, 0));
        }
        let Some((segment, file, len)) = &mut self.current else {
            return Err(std::io::Error::other("no segment open"));
        };
        let sealed;
        let bytes = match &self.key {
            Some(key) => {
                sealed = seal(key, self.stream_id, *segment, *len, bytes)?;
                &sealed[..]
            }
            None => bytes,
        };
        file.write_all(bytes)?;
        file.sync_data()?;
        let location = Location {
            segment: *segment,
            offset: *len,
            len: bytes.len() as u64,
        };
        *len += bytes.len() as u64;
        Ok(location)
    }

    pub fn current_segment(&self) -> Option<u64> {
        self.current.as_ref().map(|(segment, _, _)| *segment)
    }
}

/// The bytes at `at`, decrypted with `key` when they were written with one.
pub fn read(
    root: &Path,
    stream_id: u64,
    at: Location,
    key: Option<&[u8; KEY_LEN]>,
) -> std::io::Result<Vec<u8>> {
    let file = File::open(segment_path(&stream_dir(root, stream_id), at.segment))?;
    let len = usize::try_from(at.len).map_err(std::io::Error::other)?;
    let mut bytes = vec![0u8; len];
    file.read_exact_at(&mut bytes, at.offset)?;
    match key {
        Some(key) => seal(key, stream_id, at.segment, at.offset, &bytes),
        None => Ok(bytes),
    }
}

/// Encrypts or decrypts under the nonce (segment, offset): a segment is
/// only ever appended to, and a restart starts a new one, so no two
/// fragments of a stream share it.
fn seal(
    key: &[u8; KEY_LEN],
    stream_id: u64,
    segment: u64,
    offset: u64,
    bytes: &[u8],
) -> std::io::Result<Vec<u8>> {
    let segment = u32::try_from(segment)
        .map_err(|_| std::io::Error::other("segment number past 2^32: no nonce left"))?;
    Ok(crypto::apply_in(
        key,
        Domain::VideoFragments,
        stream_id,
        segment,
        offset,
        bytes,
    ))
}

/// Removes the stream's segments numbered below `keep_from`.
pub fn remove_below(root: &Path, stream_id: u64, keep_from: u64) -> std::io::Result<usize> {
    let dir = stream_dir(root, stream_id);
    let mut removed = 0;
    for segment in list_segments(&dir)? {
        if segment >= keep_from {
            break;
        }
        std::fs::remove_file(segment_path(&dir, segment))?;
        removed += 1;
    }
    Ok(removed)
}

pub fn remove_stream(root: &Path, stream_id: u64) -> std::io::Result<()> {
    match std::fs::remove_dir_all(stream_dir(root, stream_id)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_bytes_read_back_and_a_new_writer_starts_a_new_segment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut writer = SegmentWriter::new(dir.path(), 7, None);
        let a = writer.append(b"first").expect("append");
        let b = writer.append(b"second").expect("append");
        assert_eq!((a.segment, a.offset, b.offset), (0, 0, 5));
        assert_eq!(read(dir.path(), 7, b, None).expect("read"), b"second");
        let mut restarted = SegmentWriter::new(dir.path(), 7, None);
        let c = restarted.append(b"third").expect("append");
        assert_eq!((c.segment, c.offset), (1, 0));
        assert_eq!(remove_below(dir.path(), 7, 1).expect("remove"), 1);
        assert!(read(dir.path(), 7, a, None).is_err());
        assert_eq!(read(dir.path(), 7, c, None).expect("read"), b"third");
    }

    #[test]
    fn with_a_key_segments_hold_no_plaintext_and_read_back_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = [7u8; KEY_LEN];
        let mut writer = SegmentWriter::new(dir.path(), 3, Some(key));
        let plain = b"a camera's frame, twice: a camera's frame".repeat(10);
        let a = writer.append(&plain).expect("append");
        let b = writer.append(&plain).expect("append");
        let on_disk = std::fs::read(segment_path(&stream_dir(dir.path(), 3), 0)).expect("segment");
        assert!(!on_disk.windows(16).any(|w| w == &plain[..16]));
        // The same bytes at another offset encrypt differently: no reused keystream.
        assert_ne!(&on_disk[..plain.len()], &on_disk[plain.len()..]);
        assert_eq!(read(dir.path(), 3, a, Some(&key)).expect("read"), plain);
        assert_eq!(read(dir.path(), 3, b, Some(&key)).expect("read"), plain);
        assert_ne!(
            read(dir.path(), 3, b, Some(&[8u8; KEY_LEN])).expect("read"),
            plain
        );
    }
}
