//! Validation of the query windows, pages and the 14-day horizon of the call-quality
//! monitoring actions (spec §2.3.26–2.3.31).

use crate::error::ApiError;
use hearth_types::UnixSecs;

/// How far back the monitoring actions may look.
pub const HORIZON_SECS: i64 = 14 * 86_400;

fn invalid(detail: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidParameterOf {
        detail,
        message: message.into(),
    }
}

/// Checks `[start, end]`: both non-negative, end not before start, start within the last 14
/// days, and at most `max_span_secs` long (`None` = no limit).
pub fn check(
    start: i64,
    end: i64,
    max_span_secs: Option<i64>,
    now: UnixSecs,
) -> Result<(), ApiError> {
    if start < 0 || start > now.0 {
        return Err(invalid(
            "StartTs",
            "StartTime must be a Unix time in seconds, not in the future.",
        ));
    }
    if end < start {
        return Err(invalid(
            "EndTs",
            "EndTime must not be earlier than StartTime.",
        ));
    }
    if start < now.0 - HORIZON_SECS {
        return Err(invalid(
            "StartTsOversize",
            "StartTime must be within the last 14 days.",
        ));
    }
    if let Some(max) = max_span_secs {
        if end - start > max {
            return Err(invalid(
                "QueryScaleOversize",
                format!("EndTime - StartTime must not exceed {} hours.", max / 3600),
            ));
        }
    }
    Ok(())
}

/// A page of results: `(offset, limit)`. Both parameters or neither: when either is missing the
/// first `default_size` records are returned (spec).
pub fn page(
    number: Option<i64>,
    size: Option<i64>,
    default_size: i64,
    max_size: i64,
) -> Result<(u64, u64), ApiError> {
    if let Some(n) = number {
        if n < 0 {
            return Err(invalid("PageNumber", "PageNumber must be 0 or more."));
        }
    }
    if let Some(s) = size {
        if s > max_size {
            return Err(invalid(
                "PageSizeOversize",
                format!("PageSize must not exceed {max_size}."),
            ));
        }
        if s < 1 {
            return Err(invalid(
                "PageSize",
                format!("PageSize must be between 1 and {max_size}."),
            ));
        }
    }
    Ok(match (number, size) {
        (Some(n), Some(s)) => ((n as u64).saturating_mul(s as u64), s as u64),
        _ => (0, default_size as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixSecs = UnixSecs(1_800_000_000);

    fn code(e: ApiError) -> String {
        e.body().code.into_owned()
    }

    #[test]
    fn windows() {
        let n = NOW.0;
        assert!(check(n - 3600, n, Some(86_400), NOW).is_ok());
        assert_eq!(
            code(check(n, n - 1, None, NOW).unwrap_err()),
            "InvalidParameter.EndTs"
        );
        assert_eq!(
            code(check(n + 10, n + 20, None, NOW).unwrap_err()),
            "InvalidParameter.StartTs"
        );
        assert_eq!(
            code(check(-1, n, None, NOW).unwrap_err()),
            "InvalidParameter.StartTs"
        );
        assert_eq!(
            code(check(n - HORIZON_SECS - 1, n, None, NOW).unwrap_err()),
            "InvalidParameter.StartTsOversize"
        );
        assert_eq!(
            code(check(n - 7200, n, Some(3600), NOW).unwrap_err()),
            "InvalidParameter.QueryScaleOversize"
        );
    }

    #[test]
    fn pages() {
        assert_eq!(page(None, None, 10, 100).unwrap(), (0, 10));
        assert_eq!(page(Some(2), None, 10, 100).unwrap(), (0, 10));
        assert_eq!(page(Some(2), Some(5), 10, 100).unwrap(), (10, 5));
        assert_eq!(
            code(page(Some(-1), Some(5), 10, 100).unwrap_err()),
            "InvalidParameter.PageNumber"
        );
        assert_eq!(
            code(page(Some(0), Some(0), 10, 100).unwrap_err()),
            "InvalidParameter.PageSize"
        );
        assert_eq!(
            code(page(Some(0), Some(101), 10, 100).unwrap_err()),
            "InvalidParameter.PageSizeOversize"
        );
    }
}
