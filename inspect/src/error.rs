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
    /// A driver refused an operation.
    #[error(transparent)]
    Core(Box<layerlab_core::Error>),
    /// Reading or writing an image archive or `images.json`.
    #[error(transparent)]
    Oci(Box<layerlab_oci::OciError>),
    /// A scratch file or directory on the host.
    #[error("{path}: {source}")]
    Io {
        /// The host path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl From<layerlab_core::Error> for InspectError {
    fn from(e: layerlab_core::Error) -> Self {
        InspectError::Core(Box::new(e))
    }
}

impl From<layerlab_oci::OciError> for InspectError {
    fn from(e: layerlab_oci::OciError) -> Self {
        InspectError::Oci(Box::new(e))
    }
}

/// Results of this crate.
pub type Result<T, E = InspectError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> InspectError {
    let path = path.into();
    move |source| InspectError::Io { path, source }
}
