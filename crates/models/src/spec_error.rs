//! The error of a spec section's `validate`: the full dotted key and what it allows.

/// An invalid spec value, e.g. `key model.decoder.num_layers must be an integer ≥ 1, got 0`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("key {key} {message}")]
pub struct SpecError {
    /// Full dotted key, e.g. `model.decoder.num_layers`.
    pub key: String,
    /// What the key allows (and what it got).
    pub message: String,
}

impl SpecError {
    /// `key` (full dotted) does not hold an allowed value; `message` says which are.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Requires `value ≥ 1` for the integer at `key`.
pub(crate) fn at_least_one(key: &str, value: usize) -> Result<(), SpecError> {
    if value >= 1 {
        Ok(())
    } else {
        Err(SpecError::new(
            key,
            format!("must be an integer ≥ 1, got {value}"),
        ))
    }
}

/// Requires a dropout probability in `[0, 1)` at `key`.
pub(crate) fn dropout(key: &str, value: f64) -> Result<(), SpecError> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(SpecError::new(
            key,
            format!("must be in [0, 1), got {value}"),
        ))
    }
}
