//! What the criterion benches share: layer ids and paths from literals, and sizes a bench
//! reads from the environment.
#![allow(dead_code)]

use layerlab_core::{LayerId, LayerPath};

/// A layer id from a literal the bench knows is valid.
pub fn id(s: &str) -> LayerId {
    LayerId::new(s).unwrap_or_else(|e| unreachable!("{e}"))
}

/// A path from a literal the bench knows is valid.
pub fn path(s: &str) -> LayerPath {
    LayerPath::parse(s).unwrap_or_else(|e| unreachable!("{e}"))
}

/// The number in the environment variable `name`, or `default` where it is unset or not
/// a number.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
