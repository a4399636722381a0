//! How every backend stores times and checks names: shared by SQLite and ArangoDB so
//! both round times and refuse empty names alike (the conformance suite relies on it).

use chrono::{DateTime, Utc};

use crate::{Error, Result};

/// The current time, truncated to whole microseconds (what the store keeps).
pub(crate) fn now() -> DateTime<Utc> {
    from_micros(Utc::now().timestamp_micros())
}

/// A stored microsecond count as a time.
pub(crate) fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(DateTime::UNIX_EPOCH)
}

/// A time as whole microseconds, rounded up (so `at_us >= ceil(t)` ⇔ `at >= t`).
pub(crate) fn micros_ceil(t: DateTime<Utc>) -> i64 {
    let floor = t.timestamp_micros();
    if !t.timestamp_subsec_nanos().is_multiple_of(1000) {
        floor.saturating_add(1)
    } else {
        floor
    }
}

/// Refuses an empty (or all-blank) `what`.
pub(crate) fn non_empty(value: &str, what: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::Invalid(format!("{what} cannot be empty")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_up() {
        let t = DateTime::from_timestamp(10, 1_500).unwrap_or_default();
        assert_eq!(micros_ceil(t), 10_000_002);
        let t = DateTime::from_timestamp(10, 2_000).unwrap_or_default();
        assert_eq!(micros_ceil(t), 10_000_002);
    }
}
