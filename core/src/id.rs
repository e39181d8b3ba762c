//! Layer identifiers.

use serde::{Deserialize, Serialize};

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

/// The string conversions of a validated string newtype `$t(String)`, as serde's
/// `try_from = "String", into = "String"` needs them: `Display` (the string), `Debug` (the
/// string quoted), `FromStr` and `TryFrom<String>` through the validating `$parse` (whose
/// error is `$err`), and back `into` a `String`.
macro_rules! string_newtype {
    ($t:ident, $err:ty, $parse:path) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }

        impl TryFrom<String> for $t {
            type Error = $err;
            fn try_from(s: String) -> Result<Self, $err> {
                $parse(&s)
            }
        }

        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }

        impl std::str::FromStr for $t {
            type Err = $err;
            fn from_str(s: &str) -> Result<Self, $err> {
                $parse(s)
            }
        }
    };
}
pub(crate) use string_newtype;

string_newtype!(LayerId, String, LayerId::new);

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
