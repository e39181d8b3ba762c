//! `layerlab-build`: images built from Containerfiles on any driver's store, with the layer
//! cache rules real builders use, and what each step cost the storage driver.

pub mod builder;
pub mod cache;
pub mod copy;
pub mod error;
pub mod ignore;
pub mod parse;
mod plan;
pub mod run;
mod state;
pub mod words;

pub use builder::{build, Options, Progress, Report, StepReport};
pub use error::{BuildError, Result};
