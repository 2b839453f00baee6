//! Validity windows of lab certificates, relative to the moment they are issued, and the
//! time format `openssl ca -startdate/-enddate` (which, unlike `openssl x509` in OpenSSL
//! 3.0, can back-date certificates) and `openssl ca -gencrl -crl_lastupdate` accept.

use time::{Duration, OffsetDateTime};

use crate::{LabError, Result};

/// Validity window of a lab certificate, relative to the moment it is issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CertValidity {
    /// From 1 day ago until 2 years (730 days) from now.
    #[default]
    Valid,
    /// From 2 years ago until 1 day ago: `notAfter` is in the past.
    Expired,
    /// From 1 day ago until 10 days from now: expiring within 30 days.
    ExpiringSoon,
    /// Any other window, in whole days relative to now (negative = past).
    DaysFromNow {
        /// Start of validity.
        not_before: i64,
        /// End of validity; must be after `not_before`.
        not_after: i64,
    },
}

impl CertValidity {
    /// The window as `(not_before, not_after)` days relative to now.
    pub const fn days_from_now(self) -> (i64, i64) {
        match self {
            CertValidity::Valid => (-1, 730),
            CertValidity::Expired => (-730, -1),
            CertValidity::ExpiringSoon => (-1, 10),
            CertValidity::DaysFromNow {
                not_before,
                not_after,
            } => (not_before, not_after),
        }
    }

    /// The window as absolute times, anchored at `now` (whole seconds).
    pub(crate) fn window(self, now: OffsetDateTime) -> Result<(OffsetDateTime, OffsetDateTime)> {
        let (not_before, not_after) = self.days_from_now();
        if not_before >= not_after {
            return Err(LabError::InvalidValidity {
                not_before,
                not_after,
            });
        }
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let shift = |days: i64| {
            days.checked_mul(86_400)
                .and_then(|seconds| now.checked_add(Duration::seconds(seconds)))
                .ok_or(LabError::InvalidValidity {
                    not_before,
                    not_after,
                })
        };
        Ok((shift(not_before)?, shift(not_after)?))
    }
}

/// Formats a time the way `openssl ca -startdate/-enddate` accepts it
/// (`YYYYMMDDHHMMSSZ`; OpenSSL encodes it as UTCTime up to 2049).
pub(crate) fn openssl_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn openssl_time_is_generalized_style_utc() {
        assert_eq!(
            openssl_time(datetime!(2026-03-09 07:05:04 UTC)),
            "20260309070504Z"
        );
        assert_eq!(
            openssl_time(datetime!(2026-03-09 12:35:04 +05:30)),
            "20260309070504Z"
        );
    }

    #[test]
    fn presets_have_the_documented_windows() {
        let now = datetime!(2026-01-15 10:00:00.75 UTC);
        let (start, end) = CertValidity::Valid.window(now).unwrap();
        assert_eq!(start, datetime!(2026-01-14 10:00:00 UTC));
        assert_eq!(end, datetime!(2028-01-15 10:00:00 UTC));
        let (_, end) = CertValidity::Expired.window(now).unwrap();
        assert!(end < now);
        let (start, end) = CertValidity::ExpiringSoon.window(now).unwrap();
        assert!(start < now && end > now && end - now < Duration::days(30));
    }

    #[test]
    fn unrepresentable_window_is_rejected() {
        let huge = CertValidity::DaysFromNow {
            not_before: 0,
            not_after: i64::MAX,
        };
        let result = huge.window(OffsetDateTime::now_utc());
        assert!(matches!(result, Err(LabError::InvalidValidity { .. })));
    }

    #[test]
    fn empty_window_is_rejected() {
        let err = CertValidity::DaysFromNow {
            not_before: 3,
            not_after: 3,
        }
        .window(OffsetDateTime::now_utc());
        assert!(matches!(
            err,
            Err(LabError::InvalidValidity {
                not_before: 3,
                not_after: 3
            })
        ));
    }
}
