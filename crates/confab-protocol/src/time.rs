//! Time on the wire: Twilio's `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC, whole seconds).

use chrono::{DateTime, SecondsFormat, Utc};
use confab_domain::Timestamp;

/// Formats a timestamp as Twilio does in REST bodies.
pub fn format_twilio(ts: Timestamp) -> String {
    DateTime::<Utc>::from_timestamp_millis(ts.millis())
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Formats a timestamp as RFC 3339 with milliseconds (realtime frames).
pub fn format_rfc3339_millis(ts: Timestamp) -> String {
    DateTime::<Utc>::from_timestamp_millis(ts.millis())
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 / ISO 8601 date-time (as the Twilio helper libraries send it).
pub fn parse(text: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|d| Timestamp(d.timestamp_millis()))
        .or_else(|| {
            // The helper libraries may send a date without a zone: read it as UTC.
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|d| Timestamp(d.and_utc().timestamp_millis()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_twilio() {
        assert_eq!(
            format_twilio(Timestamp(1_448_000_000_123)),
            "2015-11-20T06:13:20Z"
        );
    }

    #[test]
    fn parses_what_it_formats() {
        let ts = Timestamp(1_448_000_000_000);
        assert_eq!(parse(&format_twilio(ts)), Some(ts));
        assert_eq!(parse("2015-11-20T06:13:20"), Some(ts));
        assert_eq!(parse("yesterday"), None);
    }
}
