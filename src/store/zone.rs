//! The time zone usage day buckets are cut in: parsing `tz`, where each hour's local day
//! starts, and when a range's offset is constant so days can be cut in SQL (see
//! [`super::usage`]).

use super::log_query::{DAY, HOUR, floor_to};
use chrono::{Offset, TimeZone};
use std::collections::HashMap;

/// The zone day buckets are in.
#[derive(Debug, Clone, PartialEq)]
pub enum Zone {
    Utc,
    /// A fixed offset east of UTC, in seconds.
    Fixed(i32),
    Named(chrono_tz::Tz),
}

/// Largest fixed offset accepted, in minutes (UTC−12:00 to UTC+14:00 is what zones use).
const MIN_OFFSET_MINUTES: i32 = -720;
const MAX_OFFSET_MINUTES: i32 = 840;

impl Zone {
    /// An IANA name (`Asia/Shanghai`, `UTC`) or an offset in minutes (`480`, `-300`).
    pub fn parse(s: &str) -> Result<Zone, String> {
        let s = s.trim();
        if let Ok(m) = s.parse::<i32>() {
            if !(MIN_OFFSET_MINUTES..=MAX_OFFSET_MINUTES).contains(&m) {
                return Err(format!(
                    "tz offset {m} is out of range: use minutes from {MIN_OFFSET_MINUTES} to {MAX_OFFSET_MINUTES}, or an IANA name like Asia/Shanghai"
                ));
            }
            return Ok(if m == 0 {
                Zone::Utc
            } else {
                Zone::Fixed(m * 60)
            });
        }
        if s.eq_ignore_ascii_case("utc") {
            return Ok(Zone::Utc);
        }
        s.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
            format!("tz {s:?} is not a time zone: use an IANA name like Europe/Berlin, or an offset in minutes like 480")
        })
    }

    /// The JSON Schema of what [`Zone::parse`] accepts: a zone name this binary knows, or
    /// an offset in minutes.
    pub fn schema() -> serde_json::Value {
        let mut names: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect();
        names.push("UTC");
        names.sort_unstable();
        names.dedup();
        serde_json::json!({
            "anyOf": [
                {"type": "string", "enum": names},
                {"type": "integer", "minimum": MIN_OFFSET_MINUTES, "maximum": MAX_OFFSET_MINUTES},
            ]
        })
    }

    /// As the answer names it: `UTC`, `+05:30`, or the IANA name.
    pub fn label(&self) -> String {
        match self {
            Zone::Utc => "UTC".into(),
            Zone::Fixed(secs) => {
                let sign = if *secs < 0 { '-' } else { '+' };
                let m = secs.unsigned_abs() / 60;
                format!("{sign}{:02}:{:02}", m / 60, m % 60)
            }
            Zone::Named(tz) => tz.name().to_string(),
        }
    }

    /// Offset east of UTC at instant `t`, in seconds.
    fn offset_at(&self, t: i64) -> i64 {
        match self {
            Zone::Utc => 0,
            Zone::Fixed(s) => i64::from(*s),
            Zone::Named(tz) => match chrono::DateTime::from_timestamp(t, 0) {
                Some(d) => i64::from(
                    tz.offset_from_utc_datetime(&d.naive_utc())
                        .fix()
                        .local_minus_utc(),
                ),
                None => 0,
            },
        }
    }

    /// Whether day buckets start exactly at local midnight: every offset in the zone's rules
    /// is a whole number of hours. (A named zone is checked over the range actually read.)
    pub fn exact_over(&self, start: i64, end: i64) -> bool {
        match self {
            Zone::Utc => true,
            Zone::Fixed(s) => s % 3600 == 0,
            Zone::Named(_) => {
                let mut t = floor_to(start, HOUR);
                // One probe a day finds every offset in force (changes are days apart); over a
                // range of years, at most 1,000 probes, so a wide range costs no more.
                let step = DAY.max((end - start) / 1000);
                while t < end {
                    if self.offset_at(t) % HOUR != 0 {
                        return false;
                    }
                    t += step;
                }
                self.offset_at(end) % HOUR == 0
            }
        }
    }
}

/// Maps hour starts to the start of their day in a zone, caching each day.
pub(super) struct Days<'a> {
    zone: &'a Zone,
    labels: HashMap<i64, i64>,
}

impl<'a> Days<'a> {
    pub(super) fn new(zone: &'a Zone) -> Days<'a> {
        Days {
            zone,
            labels: HashMap::new(),
        }
    }

    /// The UTC start of the local day the hour starting at `t` belongs to: the day in which
    /// the hour's last second falls (exact for whole-hour offsets).
    pub(super) fn of(&mut self, t: i64) -> i64 {
        if *self.zone == Zone::Utc {
            return floor_to(t, DAY);
        }
        let last = t + HOUR - 1;
        let local_day = floor_to(last + self.zone.offset_at(last), DAY);
        let zone = self.zone;
        *self.labels.entry(local_day).or_insert_with(|| {
            // Local midnight as a UTC instant, with the offset in force at midnight (not at
            // `t`: on a daylight-saving day they differ), to the hour.
            let guess = local_day - zone.offset_at(last);
            floor_to(local_day - zone.offset_at(guess), HOUR)
        })
    }
}

/// The zone's offset when it is the same whole number of hours over all of [start, end]: then
/// days can be cut in SQL. A named zone is probed once a day (a change of offset shows at the
/// next probe), so only over ranges up to [`MAX_PROBED_DAYS`]; longer ones take the general path.
pub(super) fn constant_hour_offset(zone: &Zone, start: i64, end: i64) -> Option<i64> {
    match zone {
        Zone::Utc => Some(0),
        Zone::Fixed(s) => (i64::from(*s) % HOUR == 0).then_some(i64::from(*s)),
        Zone::Named(_) => {
            if end - start > MAX_PROBED_DAYS * DAY {
                return None;
            }
            let off = zone.offset_at(start);
            if off % HOUR != 0 {
                return None;
            }
            let mut t = floor_to(start, HOUR);
            while t < end {
                if zone.offset_at(t) != off {
                    return None;
                }
                t += DAY;
            }
            (zone.offset_at(end) == off).then_some(off)
        }
    }
}

/// Longest range whose named zone is checked day by day for the SQL day cut (a year and more:
/// the console asks for 30 days).
const MAX_PROBED_DAYS: i64 = 400;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_parse_names_and_offsets() {
        assert_eq!(Zone::parse("UTC").unwrap(), Zone::Utc);
        assert_eq!(Zone::parse("0").unwrap(), Zone::Utc);
        assert_eq!(Zone::parse("480").unwrap(), Zone::Fixed(480 * 60));
        assert_eq!(Zone::parse("-330").unwrap().label(), "-05:30");
        assert_eq!(
            Zone::parse("Asia/Shanghai").unwrap().label(),
            "Asia/Shanghai"
        );
        assert!(Zone::parse("841").is_err());
        assert!(Zone::parse("Mars/Olympus").is_err());
    }

    #[test]
    fn days_start_at_local_midnight() {
        // 2026-03-08 is a DST change in New York (UTC−5 → UTC−4 at 02:00 local).
        let ny = Zone::parse("America/New_York").unwrap();
        let mut d = Days::new(&ny);
        let mar8 = 1_772_928_000; // 2026-03-08T00:00:00Z
        // 04:00Z is 23:00 on the 7th (EST), 05:00Z is midnight on the 8th.
        assert_eq!(d.of(mar8 + 4 * HOUR), mar8 + 5 * HOUR - DAY);
        assert_eq!(d.of(mar8 + 5 * HOUR), mar8 + 5 * HOUR);
        // 23:00Z on the 8th is 19:00 EDT: still the 8th, labelled at its midnight (EST).
        assert_eq!(d.of(mar8 + 23 * HOUR), mar8 + 5 * HOUR);
        // The 9th starts at 04:00Z (EDT).
        assert_eq!(d.of(mar8 + DAY + 4 * HOUR), mar8 + DAY + 4 * HOUR);
        assert!(ny.exact_over(mar8, mar8 + 2 * DAY));
        // India (+05:30): the day starts at the UTC hour holding local midnight, 18:00Z.
        let ist = Zone::parse("Asia/Kolkata").unwrap();
        let mut d = Days::new(&ist);
        assert_eq!(d.of(mar8 + 18 * HOUR), mar8 + 18 * HOUR);
        assert_eq!(d.of(mar8 + 17 * HOUR), mar8 + 18 * HOUR - DAY);
        assert!(!ist.exact_over(mar8, mar8 + DAY));
    }

    #[test]
    fn days_are_cut_in_sql_only_while_the_offset_holds() {
        let ny = Zone::parse("America/New_York").unwrap();
        let mar8 = 1_772_928_000; // 2026-03-08T00:00:00Z, a DST change in New York
        // A month of winter: UTC−5 throughout.
        assert_eq!(
            constant_hour_offset(&ny, mar8 - 40 * DAY, mar8 - 10 * DAY),
            Some(-5 * HOUR)
        );
        // Across the change: the general path.
        assert_eq!(
            constant_hour_offset(&ny, mar8 - 10 * DAY, mar8 + 10 * DAY),
            None
        );
        // A wide range is not probed day by day.
        assert_eq!(constant_hour_offset(&ny, 0, 100 * 365 * DAY), None);
        assert_eq!(
            constant_hour_offset(&Zone::parse("480").unwrap(), 0, 100 * 365 * DAY),
            Some(8 * HOUR)
        );
        assert_eq!(
            constant_hour_offset(&Zone::parse("330").unwrap(), 0, DAY),
            None
        );
    }
}
