//! The content check of an [`Intent::Cut`](super::Intent::Cut): a `write` that replaces a
//! file with a shorter content on a driver that writes the new bytes at 0, then cuts the
//! file (the default `Backend::replace`: each step whole, the pair not). The intent names
//! the new length and the CRC-32C of the new content; recovery cuts the file only when its
//! first `len` bytes are that content, i.e. when the write happened and the cut did not.
//! Otherwise nothing of the command happened (the write is whole), or all of it did.

use layerlab_core::{FileKind, LayerDriver, LayerId, LayerPath, Result};

/// How much of the file one read asks for.
const CHUNK: u64 = 1 << 20;

/// The CRC-32C of `data`, as the intent records it.
pub fn checksum(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Completes the cut if `path` is a file longer than `len` whose first `len` bytes have
/// the checksum `crc`. Returns whether it cut.
pub fn complete<D: LayerDriver + ?Sized>(
    d: &mut D,
    layer: &LayerId,
    path: &LayerPath,
    len: u64,
    crc: u32,
) -> Result<bool> {
    let meta = match d.stat(layer, path) {
        Ok(m) => m,
        Err(layerlab_core::Error::NotFound { .. }) => return Ok(false),
        Err(e) => return Err(e),
    };
    if meta.kind != FileKind::File || meta.size <= len {
        return Ok(false);
    }
    let mut sum = 0u32;
    let mut at = 0u64;
    while at < len {
        let chunk = d.read(layer, path, at, (len - at).min(CHUNK))?;
        if chunk.is_empty() {
            return Ok(false);
        }
        sum = crc32c::crc32c_append(sum, &chunk);
        at += chunk.len() as u64;
    }
    if sum != crc {
        return Ok(false);
    }
    d.truncate(layer, path, len)?;
    Ok(true)
}
