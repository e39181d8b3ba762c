//! `layerlab-build`: images built from Containerfiles on any driver's store, with the layer
//! cache rules real builders use, and what each step cost the storage driver.

pub mod run;
