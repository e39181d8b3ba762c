//! layerlab-oci: real image formats for layerlab.
//!
//! - [`tar_out`]: a layer's changeset as an OCI layer tar (`layerlab diff ID --tar`),
//!   reproducible byte for byte across drivers, and a layer's merged view as one tar
//!   (`layerlab export ID --tar`, as `docker export`);
//! - [`tar_in`]: reading a layer tar (plain, gzip, zstd): parse, check every entry against
//!   a model of the resulting tree, and plan, before anything changes;
//! - [`apply`]: the plan as `LayerDriver` calls, generic over the driver, undone if the
//!   store fails half-way (`layerlab apply`);
//! - [`image`]: `docker save` / `podman save` archives and OCI image layouts as chains of
//!   committed layers named by chain id, and the store's `images.json`;
//! - [`save`]: an image of the store as a `docker-archive` or `oci-archive` that
//!   `podman load` accepts (`layerlab save`);
//! - [`digest`]: sha256 digests and chain ids.
//!
//! The `LayerDriver` trait exposes no extended attributes and no timestamps setter, so
//! neither travels through these archives (see each module).

pub mod apply;
pub mod digest;
mod error;
pub mod image;
pub mod save;
pub mod tar_in;
pub mod tar_out;

pub use apply::{apply_archive, apply_archive_in_store, apply_parsed, ApplySummary};
pub use error::{OciError, Result};
pub use image::{
    import, load_images, save_image, ImageConfig, ImageLayer, ImageRecord, ImportOptions,
};
pub use save::{save_archive, ArchiveFormat, SaveSummary};
pub use tar_in::{Limits, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_SIZE};
pub use tar_out::{write_diff, write_view, DiffOptions, DiffSummary, LayerReader};
