//! Errors of a build: each names the Containerfile and line, the context path, the layer or
//! the step concerned.

use std::path::PathBuf;

/// What stopped a build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Containerfile does not parse, or asks for something this builder does not do.
    #[error("{file}:{line}: {instruction}: {reason}")]
    Parse {
        /// The Containerfile.
        file: String,
        /// Its line (1-based) where the instruction starts.
        line: usize,
        /// The instruction's keyword as written (or the directive).
        instruction: String,
        /// What is wrong.
        reason: String,
    },
    /// A file of the build context is missing or unusable.
    #[error("context {context}: {reason}")]
    Context {
        /// The context directory (or a path in it).
        context: String,
        /// What is wrong.
        reason: String,
    },
    /// A step failed while it ran; no layer of it is left.
    #[error("step {step} ({instruction}): {source}")]
    Step {
        /// `k/N`.
        step: String,
        /// The instruction as printed.
        instruction: String,
        /// What failed.
        #[source]
        source: Box<BuildError>,
    },
    /// A RUN command ran and exited with a failure status.
    #[error("RUN {command:?} exited with status {status}")]
    RunFailed {
        /// The command as written.
        command: String,
        /// Its exit status (128 + signal number when killed by a signal).
        status: i32,
    },
    /// RUN could not run (not possible here, the mount, the user, starting the command).
    #[error(transparent)]
    Run(Box<crate::run::RunError>),
    /// The build cache file is unreadable.
    #[error("build cache {path}: {reason}")]
    Cache {
        /// The cache file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The store refused an operation, or a host file could not be read or written
    /// (`layerlab_core::Error::Io`, naming the file).
    #[error(transparent)]
    Store(#[from] layerlab_core::Error),
    /// Reading, writing or applying a layer tar, or the store's images.
    #[error(transparent)]
    Oci(#[from] layerlab_oci::OciError),
}

impl From<crate::run::RunError> for BuildError {
    fn from(e: crate::run::RunError) -> Self {
        BuildError::Run(Box::new(e))
    }
}

/// Results of this crate.
pub type Result<T, E = BuildError> = std::result::Result<T, E>;
