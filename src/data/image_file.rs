//! Reading one image file (JPEG or PNG) for every loader: decoded only when it is whole. The
//! `image` crate's JPEG decoder fills a truncated file's missing rows with grey and returns
//! success; a file cut short is refused here instead (JPEG: no end-of-image marker after the
//! last scan; PNG: its decoder checks chunk CRCs and the end chunk itself).

use std::path::Path;

use anyhow::{bail, Context, Result};
use image::DynamicImage;

/// Decodes `path`; errors name the file and say what is wrong with it.
pub fn decode(path: &Path) -> Result<DynamicImage> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read '{}'", path.display()))?;
    if bytes.starts_with(&[0xFF, 0xD8]) && !jpeg_is_whole(&bytes) {
        bail!("'{}' is a truncated JPEG ({} bytes, no end-of-image marker after its last scan)", path.display(), bytes.len());
    }
    let img = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .with_context(|| format!("cannot read '{}'", path.display()))?
        .decode()
        .with_context(|| format!("'{}' is not a decodable image", path.display()))?;
    if img.width() == 0 || img.height() == 0 {
        bail!("'{}' has no pixels ({}×{})", path.display(), img.width(), img.height());
    }
    Ok(img)
}

/// Whether a JPEG ends its last scan (start-of-scan FF DA) with an end-of-image marker (FF D9).
/// Entropy-coded data never holds FF D9 (a data FF is followed by 00), and a thumbnail's own
/// markers come before the main image's scans.
fn jpeg_is_whole(b: &[u8]) -> bool {
    let last_scan = b.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_scan {
        Some(s) => b[s..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg() -> Vec<u8> {
        let img = image::RgbImage::from_fn(32, 24, |x, y| image::Rgb([x as u8 * 8, y as u8 * 10, 99]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_whole_jpeg_decodes_and_a_cut_one_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let whole = jpeg();
        let p = dir.path().join("whole.jpg");
        std::fs::write(&p, &whole).unwrap();
        assert_eq!(decode(&p).unwrap().width(), 32);
        let cut = dir.path().join("cut.jpg");
        std::fs::write(&cut, &whole[..whole.len() * 2 / 3]).unwrap();
        let e = decode(&cut).unwrap_err().to_string();
        assert!(e.contains("cut.jpg") && e.contains("truncated"), "{e}");
        // Whether the image crate alone notices depends on where the cut falls: it decoded
        // foolbox's imagenet_17_22.jpg cut to 3,000 bytes as a whole photo with grey rows.
    }
}
