//! Calendar dates of UNIX times, in UTC: what MDTM and listings show, and
//! what destinations put in names. Pure arithmetic; no clock is read here.

/// A UTC date and time of day (the proleptic Gregorian calendar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilTime {
    /// The year, e.g. 2026.
    pub year: i64,
    /// The month, 1 to 12.
    pub month: u32,
    /// The day of the month, 1 to 31.
    pub day: u32,
    /// The hour, 0 to 23.
    pub hour: u32,
    /// The minute, 0 to 59.
    pub minute: u32,
    /// The second, 0 to 59 (UNIX time has no leap seconds).
    pub second: u32,
}

impl CivilTime {
    /// The date and time `secs` seconds after 1970-01-01 00:00:00 UTC
    /// (days from civil, after Howard Hinnant).
    pub fn from_unix(secs: u64) -> Self {
        let days = (secs / 86_400) as i64;
        let of_day = (secs % 86_400) as u32;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Self {
            year,
            month,
            day,
            hour: of_day / 3_600,
            minute: of_day % 3_600 / 60,
            second: of_day % 60,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_are_utc() {
        let epoch = CivilTime::from_unix(0);
        assert_eq!((epoch.year, epoch.month, epoch.day), (1970, 1, 1));
        // 2000-02-29 23:59:59, a leap day of a century year.
        let leap = CivilTime::from_unix(951_868_799);
        assert_eq!(
            (
                leap.year,
                leap.month,
                leap.day,
                leap.hour,
                leap.minute,
                leap.second
            ),
            (2000, 2, 29, 23, 59, 59)
        );
        let later = CivilTime::from_unix(1_796_184_306);
        assert_eq!(
            (
                later.year,
                later.month,
                later.day,
                later.hour,
                later.minute,
                later.second
            ),
            (2026, 12, 2, 4, 5, 6)
        );
    }
}
