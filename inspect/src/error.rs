//! Errors of the inspect crate: each names the image, the layer or the file concerned.

use std::path::PathBuf;

/// What went wrong reading a store or an image for inspection.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// No image of that name (or id) in the store's `images.json`.
    #[error("image {name}: no such image in {root} (see `layerlab images`)")]
    NoImage {
        /// The name asked for.
        name: String,
        /// The store.
        root: PathBuf,
    },
    /// An image record lacks a figure this command needs.
    #[error("image {image}: {reason}")]
    Image {
        /// The image.
        image: String,
        /// What is missing or wrong.
        reason: String,
    },
    /// A driver refused an operation, or a scratch file or directory on the host could not
    /// be read or written (`layerlab_core::Error::Io`, naming the path).
    #[error(transparent)]
    Core(#[from] layerlab_core::Error),
    /// Reading or writing an image archive or `images.json`.
    #[error(transparent)]
    Oci(#[from] layerlab_oci::OciError),
}

/// Results of this crate.
pub type Result<T, E = InspectError> = std::result::Result<T, E>;
