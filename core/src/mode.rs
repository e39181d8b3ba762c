//! Numeric permission modes as chmod(1) takes them: octal digits, any number of them
//! (`7`, `644`, `0644`, `4755`, `01705`, `0001777`), the value at most `07777`
//! ([`crate::MODE_MASK`]: rwx for user, group and other, setuid, setgid, sticky). A `0o`
//! prefix is accepted too. Symbolic modes (`u+x`) are not numbers and are refused.

use crate::MODE_MASK;

/// Why a mode was refused; Display is one line quoting the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModeError {
    /// Empty, or not octal digits.
    #[error(
        "invalid mode '{raw}': expected octal digits as chmod takes them, at most 07777 \
         (e.g. 644, 0644, 4755, 01705)"
    )]
    NotOctal {
        /// The text as given.
        raw: String,
    },
    /// More than 07777.
    #[error("invalid mode '{raw}': above 07777 (permission, setuid, setgid and sticky bits)")]
    TooLarge {
        /// The text as given.
        raw: String,
    },
}

/// Parses a numeric mode (see the module doc).
pub fn parse(raw: &str) -> Result<u32, ModeError> {
    let digits = raw.strip_prefix("0o").unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(ModeError::NotOctal {
            raw: raw.to_string(),
        });
    }
    let mut mode = 0u32;
    for b in digits.bytes() {
        mode = mode * 8 + u32::from(b - b'0');
        if mode > MODE_MASK {
            return Err(ModeError::TooLarge {
                raw: raw.to_string(),
            });
        }
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_as_chmod_takes_them() {
        assert_eq!(parse("644"), Ok(0o644));
        assert_eq!(parse("0644"), Ok(0o644));
        assert_eq!(parse("4755"), Ok(0o4755));
        assert_eq!(parse("01705"), Ok(0o1705));
        assert_eq!(parse("07777"), Ok(0o7777));
        assert_eq!(parse("0000000000000000755"), Ok(0o755));
        assert_eq!(parse("7"), Ok(0o7));
        assert_eq!(parse("0o1777"), Ok(0o1777));
    }

    #[test]
    fn others_are_refused() {
        for bad in ["", "0o", "9", "0648", "u+x", "-644", " 644", "0x1ff"] {
            assert!(
                matches!(parse(bad), Err(ModeError::NotOctal { .. })),
                "{bad}"
            );
        }
        for big in ["17777", "010000", "77777777777777777777777"] {
            assert!(
                matches!(parse(big), Err(ModeError::TooLarge { .. })),
                "{big}"
            );
        }
    }
}
