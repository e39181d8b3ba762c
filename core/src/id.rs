//! Layer identifiers.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest layer id accepted (a sha256 chain id with its `sha256:` prefix fits).
pub const ID_MAX: usize = 128;

/// The name of a layer: 1 to 128 characters of `[A-Za-z0-9._:-]`, starting with a letter or
/// digit, so that it is safe as a directory name in every driver's store.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LayerId(String);

impl LayerId {
    /// Validates a layer id.
    pub fn new(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("empty layer id".into());
        }
        if raw.len() > ID_MAX {
            return Err(format!("layer id longer than {ID_MAX} characters"));
        }
        let mut chars = raw.chars();
        if !chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "layer id '{raw}' must start with a letter or digit"
            ));
        }
        if let Some(bad) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')))
        {
            return Err(format!(
                "layer id '{raw}' contains '{bad}' (allowed: A-Z a-z 0-9 . _ - :)"
            ));
        }
        Ok(LayerId(raw.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A name safe to use as one host directory name, distinct for distinct ids
    /// (`:` becomes `+`, a character ids cannot contain).
    pub fn dir_name(&self) -> String {
        self.0.replace(':', "+")
    }
}

impl fmt::Display for LayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for LayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl TryFrom<String> for LayerId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        LayerId::new(&s)
    }
}

impl From<LayerId> for String {
    fn from(id: LayerId) -> String {
        id.0
    }
}

impl std::str::FromStr for LayerId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        LayerId::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates() {
        assert!(LayerId::new("base").is_ok());
        assert!(LayerId::new("sha256:abc-1.2_x").is_ok());
        assert!(LayerId::new("").is_err());
        assert!(LayerId::new("../x").is_err());
        assert!(LayerId::new("a/b").is_err());
        assert!(LayerId::new(".hidden").is_err());
        assert!(LayerId::new(&"a".repeat(129)).is_err());
    }
}
