//! The harness's errors: configuration mistakes (with file, line, column and key), trace
//! lines, driver failures (with the driver label and workload), and I/O.

use std::path::PathBuf;

/// The result type of the harness.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;

/// Everything that can go wrong while loading or running an experiment.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A mistake in an experiment or profile file, found before anything runs.
    #[error("{file}:{line}:{column}: key `{key}`: {message}")]
    Config {
        /// The file (or `<embedded NAME>`).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The key that was wrong (dotted for nested keys where known).
        key: String,
        /// What was wrong.
        message: String,
    },
    /// A bad line in an operation trace.
    #[error("{file}:{line}: {message}")]
    Trace {
        /// The trace file.
        file: String,
        /// 1-based line.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// A driver failed while running a workload.
    #[error("{workload} on {driver}: {source}")]
    Driver {
        /// The driver label.
        driver: String,
        /// The workload (kind and parameter).
        workload: String,
        /// The driver's error.
        #[source]
        source: Box<layerlab_core::Error>,
    },
    /// An image archive could not be imported for a workload.
    #[error("{workload} on {driver}: importing the image: {source}")]
    Image {
        /// The driver label.
        driver: String,
        /// The workload.
        workload: String,
        /// The import error (names the archive and the entry or layer).
        #[source]
        source: Box<layerlab_oci::OciError>,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The host path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Results could not be serialised.
    #[error("{what}: {message}")]
    Output {
        /// What was being written.
        what: String,
        /// The cause.
        message: String,
    },
}

impl HarnessError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        HarnessError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Adds the driver label and workload to a driver error.
pub(crate) trait DriverContext<T> {
    /// Names the driver and workload of a failed driver call.
    fn ctx(self, driver: &str, workload: &str) -> Result<T>;
}

impl<T> DriverContext<T> for layerlab_core::Result<T> {
    fn ctx(self, driver: &str, workload: &str) -> Result<T> {
        self.map_err(|source| HarnessError::Driver {
            driver: driver.to_string(),
            workload: workload.to_string(),
            source: Box::new(source),
        })
    }
}
