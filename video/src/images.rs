//! GetImages' pictures: an H.264 keyframe decoded by OpenH264 (it decodes
//! alone, given the track's SPS and PPS), scaled, written as JPEG or PNG;
//! and the mean luma of a keyframe, for the `kinesis-video` frames table.

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("the track's codec private data is not an H.264 avcC record")]
    BadCodecPrivate,
    #[error("the frame does not decode: {0}")]
    Decode(String),
    #[error("the frame decodes to no picture")]
    NoPicture,
    #[error("the picture cannot be encoded: {0}")]
    Encode(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
}

/// The size asked for: either side alone keeps the picture's aspect.
#[derive(Debug, Clone, Copy, Default)]
pub struct Size {
    pub width: Option<u32>,
    pub height: Option<u32>,
}

const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// The SPS and PPS of an avcC record, and how long its NAL length
/// prefixes are.
fn parameter_sets(avcc: &[u8]) -> Result<(Vec<&[u8]>, usize), ImageError> {
    let length_size = usize::from(avcc.get(4).ok_or(ImageError::BadCodecPrivate)? & 3) + 1;
    let mut sets = Vec::new();
    let mut at = 5;
    for mask in [0x1f, 0xff] {
        let count = usize::from(avcc.get(at).ok_or(ImageError::BadCodecPrivate)? & mask);
        at += 1;
        for _ in 0..count {
            let len = avcc
                .get(at..at + 2)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                .ok_or(ImageError::BadCodecPrivate)?;
            sets.push(
                avcc.get(at + 2..at + 2 + len)
                    .ok_or(ImageError::BadCodecPrivate)?,
            );
            at += 2 + len;
        }
    }
    Ok((sets, length_size))
}

/// The keyframe as an Annex B stream OpenH264 reads: the parameter sets,
/// then the frame's NAL units, each behind a start code instead of its
/// length.
fn annex_b(avcc: &[u8], frame: &[u8]) -> Result<Vec<u8>, ImageError> {
    let (sets, length_size) = parameter_sets(avcc)?;
    let mut out = Vec::with_capacity(frame.len() + 64);
    for set in sets {
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(set);
    }
    let mut at = 0;
    while at < frame.len() {
        let len = frame
            .get(at..at + length_size)
            .ok_or_else(|| ImageError::Decode("a NAL length past the frame's end".into()))?
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let nal = frame
            .get(at + length_size..at + length_size + len)
            .ok_or_else(|| ImageError::Decode("a NAL unit past the frame's end".into()))?;
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(nal);
        at += length_size + len;
    }
    Ok(out)
}

/// Decodes a keyframe and hands its picture to `take`.
fn decode_with<T>(
    avcc: &[u8],
    frame: &[u8],
    take: impl Fn(&openh264::decoder::DecodedYUV<'_>) -> T,
) -> Result<T, ImageError> {
    let stream = annex_b(avcc, frame)?;
    let mut decoder = Decoder::new().map_err(|e| ImageError::Decode(e.to_string()))?;
    let decoded = decoder
        .decode(&stream)
        .map_err(|e| ImageError::Decode(e.to_string()))?;
    if let Some(yuv) = decoded {
        return Ok(take(&yuv));
    }
    let remaining = decoder
        .flush_remaining()
        .map_err(|e| ImageError::Decode(e.to_string()))?;
    remaining.first().map(take).ok_or(ImageError::NoPicture)
}

/// Decodes a keyframe to RGB: `(width, height, pixels)`.
pub fn decode_keyframe(avcc: &[u8], frame: &[u8]) -> Result<(usize, usize, Vec<u8>), ImageError> {
    decode_with(avcc, frame, |yuv| {
        let (width, height) = yuv.dimensions();
        let mut rgb = vec![0u8; width * height * 3];
        yuv.write_rgb8(&mut rgb);
        (width, height, rgb)
    })
}

/// The mean of a keyframe's decoded Y plane (0 to 255; video range puts
/// black near 16 and white near 235), read from the plane itself: no RGB
/// conversion to pay for, nor its clamping to bias the mean.
pub fn keyframe_mean_luma(avcc: &[u8], frame: &[u8]) -> Result<f64, ImageError> {
    decode_with(avcc, frame, |yuv| {
        let (width, height) = yuv.dimensions();
        let stride = yuv.strides().0;
        let sum: u64 = yuv
            .y()
            .chunks(stride.max(1))
            .take(height)
            .map(|row| row.iter().take(width).map(|&y| u64::from(y)).sum::<u64>())
            .sum();
        (width * height > 0).then(|| sum as f64 / (width * height) as f64)
    })?
    .ok_or(ImageError::NoPicture)
}

/// The mean luma (BT.601, 0 to 255) of RGB pixels: a covered or dark
/// camera is near 16.
pub fn mean_luma(rgb: &[u8]) -> f64 {
    let pixels = rgb.len() / 3;
    if pixels == 0 {
        return 0.0;
    }
    let sum: f64 = rgb
        .chunks_exact(3)
        .map(|p| {
            16.0 + (65.738 * f64::from(p[0]) + 129.057 * f64::from(p[1]) + 25.064 * f64::from(p[2]))
                / 256.0
        })
        .sum();
    sum / pixels as f64
}

/// The size a picture of `width` x `height` is written at.
pub fn target_size(width: usize, height: usize, size: Size) -> (usize, usize) {
    let aspect = |known: u32, from: usize, to: usize| ((known as usize * to) / from.max(1)).max(1);
    match (size.width, size.height) {
        (Some(w), Some(h)) => (w as usize, h as usize),
        (Some(w), None) => (w as usize, aspect(w, width, height)),
        (None, Some(h)) => (aspect(h, height, width), h as usize),
        (None, None) => (width, height),
    }
}

/// Bilinear scaling of RGB pixels.
pub fn scale(
    rgb: &[u8],
    width: usize,
    height: usize,
    to_width: usize,
    to_height: usize,
) -> Vec<u8> {
    if (width, height) == (to_width, to_height) {
        return rgb.to_vec();
    }
    let mut out = vec![0u8; to_width * to_height * 3];
    let x_ratio = (width.max(1) - 1) as f64 / (to_width.max(2) - 1) as f64;
    let y_ratio = (height.max(1) - 1) as f64 / (to_height.max(2) - 1) as f64;
    for y in 0..to_height {
        let fy = y as f64 * y_ratio;
        let (y0, wy) = (fy as usize, fy.fract());
        let y1 = (y0 + 1).min(height - 1);
        for x in 0..to_width {
            let fx = x as f64 * x_ratio;
            let (x0, wx) = (fx as usize, fx.fract());
            let x1 = (x0 + 1).min(width - 1);
            for c in 0..3 {
                let p = |xx: usize, yy: usize| f64::from(rgb[(yy * width + xx) * 3 + c]);
                let top = p(x0, y0) * (1.0 - wx) + p(x1, y0) * wx;
                let bottom = p(x0, y1) * (1.0 - wx) + p(x1, y1) * wx;
                out[(y * to_width + x) * 3 + c] = (top * (1.0 - wy) + bottom * wy).round() as u8;
            }
        }
    }
    out
}

/// The picture as a JPEG (at `quality`, 1 to 100) or a PNG.
pub fn encode(
    rgb: &[u8],
    width: usize,
    height: usize,
    format: Format,
    quality: u8,
) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    match format {
        Format::Jpeg => {
            let (w, h) = (
                u16::try_from(width).map_err(|e| ImageError::Encode(e.to_string()))?,
                u16::try_from(height).map_err(|e| ImageError::Encode(e.to_string()))?,
            );
            jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100))
                .encode(rgb, w, h, jpeg_encoder::ColorType::Rgb)
                .map_err(|e| ImageError::Encode(e.to_string()))?;
        }
        Format::Png => {
            let mut encoder = png::Encoder::new(&mut out, width as u32, height as u32);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder
                .write_header()
                .map_err(|e| ImageError::Encode(e.to_string()))?;
            writer
                .write_image_data(rgb)
                .map_err(|e| ImageError::Encode(e.to_string()))?;
            writer
                .finish()
                .map_err(|e| ImageError::Encode(e.to_string()))?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avcc_parameter_sets_and_frames_become_annex_b() {
        // version, profile, compat, level, 4-byte lengths, 1 SPS, 1 PPS.
        let avcc = [1, 77, 0, 30, 0xff, 0xe1, 0, 2, 0x67, 0xaa, 1, 0, 1, 0x68];
        let frame = [0, 0, 0, 2, 0x65, 0xbb];
        let stream = annex_b(&avcc, &frame).expect("annex b");
        assert_eq!(
            stream,
            [
                0, 0, 0, 1, 0x67, 0xaa, 0, 0, 0, 1, 0x68, 0, 0, 0, 1, 0x65, 0xbb
            ]
        );
        assert!(annex_b(&avcc, &[0, 0, 0, 9, 1]).is_err());
        assert!(annex_b(&[1, 2], &frame).is_err());
    }

    /// A flat picture of luma `y` encoded by OpenH264, as a Matroska track
    /// carries it: an avcC record and a frame of length-prefixed NAL units.
    fn flat_keyframe(y: u8) -> (Vec<u8>, Vec<u8>) {
        use openh264::encoder::Encoder;
        use openh264::formats::YUVBuffer;
        let (width, height) = (64, 48);
        let mut planes = vec![y; width * height];
        planes.resize(width * height * 3 / 2, 128);
        let picture = YUVBuffer::from_vec(planes, width, height);
        let mut encoder = Encoder::new().expect("encoder");
        let stream = encoder.encode(&picture).expect("encode");
        let (mut sps, mut pps, mut frame) = (None, None, Vec::new());
        for layer in (0..stream.num_layers()).filter_map(|l| stream.layer(l)) {
            for nal in (0..layer.nal_count()).filter_map(|n| layer.nal_unit(n)) {
                let start = nal.iter().position(|&b| b == 1).expect("start code") + 1;
                let nal = &nal[start..];
                match nal[0] & 0x1f {
                    7 => sps = Some(nal.to_vec()),
                    8 => pps = Some(nal.to_vec()),
                    _ => {
                        frame.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                        frame.extend_from_slice(nal);
                    }
                }
            }
        }
        let (sps, pps) = (sps.expect("an SPS"), pps.expect("a PPS"));
        let mut avcc = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
        avcc.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        avcc.extend_from_slice(&sps);
        avcc.push(1);
        avcc.extend_from_slice(&(pps.len() as u16).to_be_bytes());
        avcc.extend_from_slice(&pps);
        (avcc, frame)
    }

    #[test]
    fn mean_luma_of_a_keyframe_is_its_decoded_y_plane() {
        for y in [16u8, 128, 235] {
            let (avcc, frame) = flat_keyframe(y);
            let luma = keyframe_mean_luma(&avcc, &frame).expect("decodes");
            // Lossy coding of a flat picture stays within a level or two.
            assert!((luma - f64::from(y)).abs() < 2.0, "{y}: {luma}");
        }
        let (avcc, frame) = flat_keyframe(128);
        assert!(keyframe_mean_luma(&avcc, &frame[..frame.len() / 2]).is_err());
        assert!(keyframe_mean_luma(&[1, 2], &frame).is_err());
    }

    #[test]
    fn scaling_keeps_aspect_and_flat_colours() {
        assert_eq!(
            target_size(
                640,
                360,
                Size {
                    width: Some(320),
                    height: None
                }
            ),
            (320, 180)
        );
        assert_eq!(
            target_size(
                640,
                360,
                Size {
                    width: None,
                    height: Some(90)
                }
            ),
            (160, 90)
        );
        let grey = vec![128u8; 8 * 4 * 3];
        let scaled = scale(&grey, 8, 4, 4, 2);
        assert_eq!(scaled, vec![128u8; 4 * 2 * 3]);
        assert!((mean_luma(&[0, 0, 0]) - 16.0).abs() < 0.01);
        let png = encode(&scaled, 4, 2, Format::Png, 80).expect("png");
        assert_eq!(&png[1..4], b"PNG");
        let jpeg = encode(&scaled, 4, 2, Format::Jpeg, 80).expect("jpeg");
        assert_eq!(&jpeg[..2], &[0xff, 0xd8]);
    }
}
