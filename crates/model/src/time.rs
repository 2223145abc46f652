//! The one way times are written down.

/// The one format of every time the database stores: RFC 3339, UTC, milliseconds. SQL
/// compares these as text (due times, the acknowledgement windows), so there is only one.
pub fn timestamp_text(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
