//! What `layerlab fsck` found in a store: each finding names where it is (layer, path, pool
//! offset) and whether it was repaired, and what a repair dropped. The exit code follows
//! fsck(8): 0 clean, 1 everything found was repaired, 4 something is left uncorrected.
//!
//! The checks themselves live with what they check: the layer table in [`crate::store`],
//! the union layout in [`crate::union`], each block or extent engine in its own module
//! (through [`crate::backend::Backend::check`]); the front runs them in one order.

use layerlab_core::LayerId;
use serde::Serialize;

/// Whether a finding was repaired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingState {
    /// Found and left as it is (no `--repair`, or nothing safe to do).
    Uncorrected,
    /// Repaired; `dropped` names what the repair had to give up, if anything.
    Repaired {
        /// What was lost by the repair (a layer, a file, a log record), if anything.
        dropped: Option<String>,
    },
}

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The layer it concerns, if one.
    pub layer: Option<LayerId>,
    /// Where: a path in the layer, a store file, a pool offset.
    pub place: String,
    /// What is wrong, in one line.
    pub what: String,
    /// Repaired or not.
    pub state: FindingState,
}

/// Everything one run of fsck found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// Findings in the order they were found.
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// Records a finding left as it is.
    pub fn uncorrected(
        &mut self,
        layer: Option<&LayerId>,
        place: impl Into<String>,
        what: impl Into<String>,
    ) {
        self.findings.push(Finding {
            layer: layer.cloned(),
            place: place.into(),
            what: what.into(),
            state: FindingState::Uncorrected,
        });
    }

    /// Records a finding that was repaired, and what the repair dropped.
    pub fn repaired(
        &mut self,
        layer: Option<&LayerId>,
        place: impl Into<String>,
        what: impl Into<String>,
        dropped: Option<String>,
    ) {
        self.findings.push(Finding {
            layer: layer.cloned(),
            place: place.into(),
            what: what.into(),
            state: FindingState::Repaired { dropped },
        });
    }

    /// True when nothing was found.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// The exit code fsck(8) gives: 0 clean, 1 all repaired, 4 something uncorrected.
    pub fn exit_code(&self) -> i32 {
        if self.findings.is_empty() {
            0
        } else if self
            .findings
            .iter()
            .any(|f| f.state == FindingState::Uncorrected)
        {
            4
        } else {
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_fsck8() {
        let mut report = CheckReport::default();
        assert_eq!(report.exit_code(), 0);
        report.repaired(None, "layers.json", "stray entry", Some("layer x".into()));
        assert_eq!(report.exit_code(), 1);
        report.uncorrected(None, "pool offset 4096", "checksum mismatch");
        assert_eq!(report.exit_code(), 4);
    }
}
