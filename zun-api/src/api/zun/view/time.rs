//! Zun's datetime format: Python's `str(datetime)` of naive UTC.

use chrono::{DateTime, Timelike, Utc};

/// `YYYY-MM-DD HH:MM:SS`, with `.ffffff` only when the microseconds are not zero.
pub fn zun_time(t: &DateTime<Utc>) -> String {
    if t.nanosecond() / 1000 == 0 {
        t.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn micros_only_when_present() {
        let t = Utc.with_ymd_and_hms(2019, 5, 18, 21, 2, 12).unwrap();
        assert_eq!(zun_time(&t), "2019-05-18 21:02:12");
        let t = t.with_nanosecond(304_734_000).unwrap();
        assert_eq!(zun_time(&t), "2019-05-18 21:02:12.304734");
    }
}
