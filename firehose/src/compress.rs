//! `CompressionFormat`: what an object's bytes are written as, and the
//! extension Firehose gives its key.

use std::io::Write;

use crate::error::{FirehoseError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Uncompressed,
    Gzip,
    Zip,
    /// The snappy framing format, as Firehose writes `Snappy`.
    Snappy,
    /// Hadoop's block format: each block its raw length, then its snappy
    /// chunk's length and bytes, as Hadoop's `SnappyCodec` reads it.
    HadoopSnappy,
}

/// Hadoop's `io.compression.codec.snappy.buffersize` default.
const HADOOP_BLOCK: usize = 256 * 1024;

impl Compression {
    pub fn parse(name: &str) -> Result<Compression> {
        Ok(match name {
            "UNCOMPRESSED" => Compression::Uncompressed,
            "GZIP" => Compression::Gzip,
            "ZIP" => Compression::Zip,
            "Snappy" => Compression::Snappy,
            "HADOOP_SNAPPY" => Compression::HadoopSnappy,
            other => {
                return Err(FirehoseError::InvalidArgument(format!(
                    "CompressionFormat '{other}' is not one of UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY."
                )));
            }
        })
    }

    pub fn extension(self) -> &'static str {
        match self {
            Compression::Uncompressed => "",
            Compression::Gzip => ".gz",
            Compression::Zip => ".zip",
            Compression::Snappy => ".snappy",
            Compression::HadoopSnappy => ".hsnappy",
        }
    }

    /// `data` compressed; `entry` names the one file inside a ZIP.
    pub fn apply(self, data: Vec<u8>, entry: &str) -> Result<Vec<u8>> {
        let io = |e: std::io::Error| FirehoseError::Internal(format!("compressing: {e}"));
        Ok(match self {
            Compression::Uncompressed => data,
            Compression::Gzip => {
                // Level 1: the buffer is written once and read rarely;
                // higher levels cost several times the CPU for a few percent.
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(data.len() / 4),
                    flate2::Compression::fast(),
                );
                encoder.write_all(&data).map_err(io)?;
                encoder.finish().map_err(io)?
            }
            Compression::Zip => zip_one(&data, entry).map_err(io)?,
            Compression::Snappy => {
                let mut encoder =
                    snap::write::FrameEncoder::new(Vec::with_capacity(data.len() / 2));
                encoder.write_all(&data).map_err(io)?;
                encoder
                    .into_inner()
                    .map_err(|e| FirehoseError::Internal(format!("compressing: {e}")))?
            }
            Compression::HadoopSnappy => {
                let mut out = Vec::with_capacity(data.len() / 2);
                let mut encoder = snap::raw::Encoder::new();
                for block in data.chunks(HADOOP_BLOCK) {
                    let compressed = encoder
                        .compress_vec(block)
                        .map_err(|e| FirehoseError::Internal(format!("compressing: {e}")))?;
                    out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                    out.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
                    out.extend_from_slice(&compressed);
                }
                out
            }
        })
    }
}

/// An object's bytes compressed as they are read, so a record is copied
/// once, into the compressor, rather than gathered first.
pub struct Compressor {
    kind: Kind,
    /// Records gathered until a chunk is worth a call into the encoder:
    /// deflate called once per 200-byte record runs at a fraction of its
    /// speed.
    pending: Vec<u8>,
}

#[allow(
    clippy::large_enum_variant,
    reason = "one per object being built; the encoder's state is its size"
)]
enum Kind {
    Plain(Vec<u8>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Snappy(Box<snap::write::FrameEncoder<Vec<u8>>>),
    /// Formats made from the whole input at the end (ZIP, Hadoop's blocks).
    Whole(Compression, Vec<u8>),
}

/// How much input the encoder is given at a time.
const CHUNK: usize = 256 * 1024;

impl Compression {
    /// A compressor for about `capacity` bytes of input.
    pub fn compressor(self, capacity: usize) -> Compressor {
        let kind = match self {
            Compression::Uncompressed => Kind::Plain(Vec::with_capacity(capacity)),
            Compression::Gzip => Kind::Gzip(flate2::write::GzEncoder::new(
                Vec::with_capacity(capacity / 4),
                flate2::Compression::fast(),
            )),
            Compression::Snappy => Kind::Snappy(Box::new(snap::write::FrameEncoder::new(
                Vec::with_capacity(capacity / 2),
            ))),
            other => Kind::Whole(other, Vec::with_capacity(capacity)),
        };
        let pending = match kind {
            Kind::Gzip(_) | Kind::Snappy(_) => Vec::with_capacity(CHUNK + 64 * 1024),
            Kind::Plain(_) | Kind::Whole(..) => Vec::new(),
        };
        Compressor { kind, pending }
    }
}

impl Compressor {
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        match &mut self.kind {
            Kind::Plain(out) | Kind::Whole(_, out) => {
                out.extend_from_slice(data);
                Ok(())
            }
            Kind::Gzip(_) | Kind::Snappy(_) => {
                self.pending.extend_from_slice(data);
                if self.pending.len() >= CHUNK {
                    self.flush()?;
                }
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> Result<()> {
        let io = |e: std::io::Error| FirehoseError::Internal(format!("compressing: {e}"));
        match &mut self.kind {
            Kind::Gzip(encoder) => encoder.write_all(&self.pending).map_err(io)?,
            Kind::Snappy(encoder) => encoder.write_all(&self.pending).map_err(io)?,
            Kind::Plain(_) | Kind::Whole(..) => {}
        }
        self.pending.clear();
        Ok(())
    }

    /// The object's bytes; `entry` names the one file inside a ZIP.
    pub fn finish(mut self, entry: &str) -> Result<Vec<u8>> {
        self.flush()?;
        let io = |e: std::io::Error| FirehoseError::Internal(format!("compressing: {e}"));
        match self.kind {
            Kind::Plain(out) => Ok(out),
            Kind::Gzip(encoder) => encoder.finish().map_err(io),
            Kind::Snappy(encoder) => encoder
                .into_inner()
                .map_err(|e| FirehoseError::Internal(format!("compressing: {e}"))),
            Kind::Whole(format, data) => format.apply(data, entry),
        }
    }
}

/// A ZIP archive of one deflated file. Objects are at most 128 MiB, so the
/// 32-bit sizes of the classic format always suffice.
fn zip_one(data: &[u8], name: &str) -> std::io::Result<Vec<u8>> {
    let mut crc = flate2::Crc::new();
    crc.update(data);
    let crc = crc.sum();
    let mut deflater = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::fast(),
    );
    deflater.write_all(data)?;
    let deflated = deflater.finish()?;
    let name = name.as_bytes();
    let fields = |out: &mut Vec<u8>| {
        out.extend_from_slice(&20u16.to_le_bytes()); // version needed: deflate
        out.extend_from_slice(&0u16.to_le_bytes()); // flags
        out.extend_from_slice(&8u16.to_le_bytes()); // method: deflate
        out.extend_from_slice(&0u16.to_le_bytes()); // time 00:00
        out.extend_from_slice(&0x21u16.to_le_bytes()); // date 1980-01-01
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(deflated.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // extra length
    };
    let mut out = Vec::with_capacity(deflated.len() + 2 * name.len() + 100);
    out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    fields(&mut out);
    out.extend_from_slice(name);
    out.extend_from_slice(&deflated);
    let directory = out.len();
    out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    out.extend_from_slice(&20u16.to_le_bytes()); // made by
    fields(&mut out);
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    out.extend_from_slice(&0u16.to_le_bytes()); // disk
    out.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
    out.extend_from_slice(&0u32.to_le_bytes()); // external attributes
    out.extend_from_slice(&0u32.to_le_bytes()); // local header offset
    out.extend_from_slice(name);
    let directory_len = out.len() - directory;
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // this disk
    out.extend_from_slice(&0u16.to_le_bytes()); // directory's disk
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&(directory_len as u32).to_le_bytes());
    out.extend_from_slice(&(directory as u32).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample() -> Vec<u8> {
        (0..300_000u32)
            .flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes())
            .collect()
    }

    #[test]
    fn gzip_and_snappy_read_back() {
        let data = sample();
        let gz = Compression::Gzip.apply(data.clone(), "x").unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        let framed = Compression::Snappy.apply(data.clone(), "x").unwrap();
        let mut back = Vec::new();
        snap::read::FrameDecoder::new(&framed[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn hadoop_snappy_blocks_carry_their_lengths() {
        let data = sample();
        let out = Compression::HadoopSnappy.apply(data.clone(), "x").unwrap();
        let mut back = Vec::new();
        let mut at = 0;
        while at < out.len() {
            let raw = u32::from_be_bytes(out[at..at + 4].try_into().unwrap()) as usize;
            let len = u32::from_be_bytes(out[at + 4..at + 8].try_into().unwrap()) as usize;
            let block = snap::raw::Decoder::new()
                .decompress_vec(&out[at + 8..at + 8 + len])
                .unwrap();
            assert_eq!(block.len(), raw);
            back.extend(block);
            at += 8 + len;
        }
        assert_eq!(back, data);
    }
}
