//! Timestamps read back quickly.
//!
//! SQLite keeps a timestamp as text, which diesel parses by trying up to 18 formats with
//! chrono's format-string parser: 7 % of a page of 100 users' server time. Roster writes them
//! in one format (diesel's, `%F %T%.f`), which `parse_sqlite_text` reads directly; any other
//! text still goes through diesel, and Postgres's binary timestamps always do.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use diesel::deserialize::{self, FromSql};
use diesel::sql_types::Timestamp;

use super::MultiBackend;

/// A `Timestamp` column read as a `NaiveDateTime`: a field takes it with
/// `#[diesel(deserialize_as = DbTimestamp)]`.
#[derive(diesel::deserialize::FromSqlRow)]
pub struct DbTimestamp(NaiveDateTime);

impl From<DbTimestamp> for NaiveDateTime {
    fn from(t: DbTimestamp) -> Self {
        t.0
    }
}

impl FromSql<Timestamp, diesel::sqlite::Sqlite> for DbTimestamp {
    fn from_sql(mut value: diesel::sqlite::SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        if let Some(t) = parse_sqlite_text(value.read_text()) {
            return Ok(DbTimestamp(t));
        }
        <NaiveDateTime as FromSql<Timestamp, diesel::sqlite::Sqlite>>::from_sql(value)
            .map(DbTimestamp)
    }
}

impl FromSql<Timestamp, diesel::pg::Pg> for DbTimestamp {
    fn from_sql(value: diesel::pg::PgValue<'_>) -> deserialize::Result<Self> {
        <NaiveDateTime as FromSql<Timestamp, diesel::pg::Pg>>::from_sql(value).map(DbTimestamp)
    }
}

impl FromSql<Timestamp, MultiBackend> for DbTimestamp {
    fn from_sql(
        value: <MultiBackend as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        value.from_sql::<Self, Timestamp>()
    }
}

/// `YYYY-MM-DD HH:MM:SS` with an optional fraction of up to nine digits, or `None` (for
/// diesel's own parser to try).
fn parse_sqlite_text(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let nanos = match &b[19..] {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            let n = number(20..b.len())?;
            n * 10u32.pow(9 - u32::try_from(digits.len()).ok()?)
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(number(0..4)?).ok()?,
        number(5..7)?,
        number(8..10)?,
    )?;
    let time =
        NaiveTime::from_hms_nano_opt(number(11..13)?, number(14..16)?, number(17..19)?, nanos)?;
    Some(date.and_time(time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_diesel_writes_and_leaves_the_rest_to_diesel() {
        // diesel's SQLite encoding of a timestamp.
        for t in [
            NaiveDate::from_ymd_opt(2026, 11, 29)
                .unwrap()
                .and_hms_nano_opt(14, 41, 4, 116_172_000)
                .unwrap(),
            NaiveDate::from_ymd_opt(1999, 1, 2)
                .unwrap()
                .and_hms_opt(3, 4, 5)
                .unwrap(),
            NaiveDate::from_ymd_opt(2026, 2, 28)
                .unwrap()
                .and_hms_nano_opt(23, 59, 59, 7)
                .unwrap(),
        ] {
            let text = t.format("%F %T%.f").to_string();
            assert_eq!(parse_sqlite_text(&text), Some(t), "{text}");
        }
        assert_eq!(
            parse_sqlite_text("2026-11-29 14:41:04.5"),
            NaiveDate::from_ymd_opt(2026, 11, 29)
                .unwrap()
                .and_hms_milli_opt(14, 41, 4, 500)
        );
        for other in [
            "2026-11-29T14:41:04",            // another format: diesel's parser
            "2026-11-29 14:41",               // too short
            "2026-02-30 00:00:00",            // no such day
            "2026-11-29 24:00:00",            // no such hour
            "2026-11-29 14:41:04.",           // an empty fraction
            "2026-11-29 14:41:04.1234567890", // ten digits
            "2026-11-29 14:41:04+01:00",
            "+026-11-29 14:41:04",
            "2026-11-29 14:41:0٤",
            "2461007.5", // a Julian day
        ] {
            assert_eq!(parse_sqlite_text(other), None, "{other}");
        }
    }
}
