//! Errors of the OCI crate: each names the archive, and the entry or the layer concerned.

use std::path::PathBuf;

/// What went wrong reading, checking, writing or applying an archive.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// An entry was refused; nothing of the archive was applied.
    #[error("archive {archive}: entry '{entry}': {reason}")]
    Entry {
        /// The archive.
        archive: String,
        /// The entry's name as written in the archive.
        entry: String,
        /// Why it was refused.
        reason: String,
    },
    /// The archive expands past `--max-size` or has more entries than allowed.
    #[error("archive {archive}: {what} (at entry '{entry}'); refused, nothing applied")]
    Limit {
        /// The archive.
        archive: String,
        /// The entry being read when the limit was crossed.
        entry: String,
        /// Which limit.
        what: String,
    },
    /// The archive is not a readable tar (or compressed tar).
    #[error("archive {archive}: {reason}")]
    Malformed {
        /// The archive.
        archive: String,
        /// What is wrong.
        reason: String,
    },
    /// A layer's uncompressed digest differs from the config's `diff_ids`.
    #[error(
        "archive {archive}: layer {index} ('{layer}'): diff_id mismatch: the config says {expected}, the layer's uncompressed digest is {actual}"
    )]
    DiffIdMismatch {
        /// The image archive.
        archive: String,
        /// The layer's position (0 = bottom).
        index: usize,
        /// The layer's name in the archive.
        layer: String,
        /// From the config.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// An image archive's manifest, index or config is wrong.
    #[error("archive {archive}: {reason}")]
    Image {
        /// The archive.
        archive: String,
        /// What is wrong.
        reason: String,
    },
    /// The driver refused an operation while applying to a layer.
    #[error("archive {archive}: applying to layer {layer}: {source}")]
    Driver {
        /// The archive.
        archive: String,
        /// The layer.
        layer: String,
        /// The driver's error.
        #[source]
        source: Box<layerlab_core::Error>,
    },
    /// A layer-level error outside an archive (diff, images.json).
    #[error(transparent)]
    Core(#[from] layerlab_core::Error),
    /// Reading or writing a host file.
    #[error("{path}: {source}")]
    Io {
        /// The host file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Results of this crate.
pub type Result<T, E = OciError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> OciError {
    let path = path.into();
    move |source| OciError::Io { path, source }
}
