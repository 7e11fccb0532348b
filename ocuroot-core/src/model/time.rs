//! [`Timestamp`]: a point in time as the store records it (RFC 3339 with
//! milliseconds, UTC).

use std::fmt;
use std::time::{Duration, SystemTime};

/// A point in time, written `2026-12-02T16:36:30.123Z` in documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(SystemTime);

impl Timestamp {
    /// The time `t`, to the millisecond.
    pub fn new(t: SystemTime) -> Timestamp {
        let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let millis = Duration::from_millis(since.as_millis() as u64);
        Timestamp(SystemTime::UNIX_EPOCH + millis)
    }

    /// As a [`SystemTime`].
    pub fn system_time(self) -> SystemTime {
        self.0
    }

    /// Milliseconds from `earlier` to this time, if it is not before it.
    pub fn millis_since(self, earlier: Timestamp) -> Option<u64> {
        self.0
            .duration_since(earlier.0)
            .ok()
            .map(|d| d.as_millis() as u64)
    }

    /// Parse an RFC 3339 time: UTC (`Z`) or with an offset (`+01:00`, as
    /// the original Ocuroot writes local times), with or without a
    /// fraction of a second.
    pub fn parse(s: &str) -> crate::Result<Timestamp> {
        let bad = |why: String| {
            crate::Error::invalid_input(format!("{s:?} is not an RFC 3339 time: {why}"))
        };
        let (utc, offset) = split_offset(s).ok_or_else(|| bad("no time zone".into()))?;
        let t = humantime::parse_rfc3339_weak(utc).map_err(|e| bad(e.to_string()))?;
        let t = if offset >= 0 {
            t.checked_sub(Duration::from_secs(offset as u64))
        } else {
            t.checked_add(Duration::from_secs(offset.unsigned_abs()))
        };
        t.map(Timestamp).ok_or_else(|| bad("out of range".into()))
    }
}

/// The local part of an RFC 3339 time and its offset from UTC in seconds.
fn split_offset(s: &str) -> Option<(&str, i64)> {
    if let Some(local) = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
        return Some((local, 0));
    }
    let (local, zone) = s.split_at(s.len().checked_sub(6)?);
    let sign = match zone.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = zone[1..].split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    Some((local, sign * (h * 3600 + m * 60)))
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_millis(self.0))
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// For optional times in documents: absent, `null` and `""` (written by
/// releases that recorded no time) are all none.
pub(crate) mod optional {
    use super::Timestamp;

    /// Read an optional time.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        let s: Option<std::borrow::Cow<'de, str>> = serde::Deserialize::deserialize(d)?;
        match s.as_deref() {
            None | Some("") => Ok(None),
            Some(s) => Timestamp::parse(s)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_to_the_millisecond() {
        let t =
            Timestamp::new(SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456));
        assert_eq!(t.to_string(), "2023-11-14T22:13:20.123Z");
        assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        let later = Timestamp::parse("2023-11-14T22:13:21.000Z").unwrap();
        assert_eq!(later.millis_since(t), Some(877));
        assert_eq!(t.millis_since(later), None);
        assert!(Timestamp::parse("yesterday").is_err());
        assert!(Timestamp::parse("2023-11-14T22:13:20").is_err());
        // An offset, as Go's time.RFC3339 writes local times.
        assert_eq!(
            Timestamp::parse("2023-11-14T23:13:20.123+01:00").unwrap(),
            t
        );
        assert_eq!(
            Timestamp::parse("2023-11-14T21:13:20.123-01:00").unwrap(),
            t
        );
        assert_eq!(
            Timestamp::parse("2023-11-14T22:13:20Z")
                .unwrap()
                .millis_since(Timestamp::parse("2023-11-14T22:13:19.5Z").unwrap()),
            Some(500)
        );
    }
}
