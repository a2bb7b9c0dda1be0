//! Bounds every numeric query parameter is checked against, so an out-of-range value gets a
//! 400 that says the range instead of overflowing an OFFSET or wrapping a time sum. The
//! OpenAPI document states the same bounds (`minimum`/`maximum`).

use crate::error::ApiError;

/// Latest accepted Unix time: 9999-12-31T23:59:59Z. Times near `i64::MAX` would wrap when a
/// range is widened to whole hours or days.
pub const MAX_TIME: i64 = 253_402_300_799;

/// Highest page number of offset paging (`p`): with at most 100 rows a page the offset stays
/// far inside what SQLite accepts.
pub const MAX_PAGE_NUMBER: usize = 1_000_000;

/// Largest page of the searched lists and the log search.
pub const MAX_PAGE_SIZE: usize = 100;

/// `Ok(v)` when `lo <= v <= hi`, else a 400 naming the parameter and the range.
pub fn in_range<T>(name: &str, v: T, lo: T, hi: T) -> Result<T, ApiError>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    if v < lo || v > hi {
        return Err(ApiError::BadRequest(format!(
            "{name} is {v}; use a value from {lo} to {hi}"
        )));
    }
    Ok(v)
}

/// A Unix time parameter: 0 to [`MAX_TIME`].
pub fn time(name: &str, v: Option<i64>) -> Result<Option<i64>, ApiError> {
    v.map(|t| in_range(name, t, 0, MAX_TIME)).transpose()
}

/// An id parameter: a positive whole number.
pub fn id(name: &str, v: Option<i64>) -> Result<Option<i64>, ApiError> {
    v.map(|t| in_range(name, t, 1, i64::MAX)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive_and_named() {
        assert_eq!(in_range("p", 1usize, 1, 10).ok(), Some(1));
        assert_eq!(in_range("p", 10usize, 1, 10).ok(), Some(10));
        let e = in_range("p", 11usize, 1, 10).err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("p is 11; use a value from 1 to 10"));
        assert!(time("start", Some(MAX_TIME + 1)).is_err());
        assert!(time("start", Some(-1)).is_err());
        assert!(id("user_id", Some(0)).is_err());
    }
}
