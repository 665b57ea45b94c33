//! Rows as JSON records: encoding, one record or a page of them, cached statements; what the
//! SQLite store's queries share.

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, ErrorCode, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::StoreError;
use crate::traits::*;

pub(super) fn encode<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(format!("cannot encode: {e}")))
}

pub(super) fn decode<T: DeserializeOwned>(data: &str) -> Result<T, StoreError> {
    Ok(serde_json::from_str(data)?)
}

/// Whether `e` is a uniqueness violation naming `columns` (as SQLite spells them: `t.a, t.b`).
pub(super) fn is_unique_violation(e: &rusqlite::Error, columns: &str) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, Some(msg))
        if f.code == ErrorCode::ConstraintViolation && msg.contains(columns))
}

/// A channel by SID, if it is in the service (`?1` the channel, `?2` the service).
pub(super) const CHANNEL_IN_SERVICE: &str =
    "SELECT data FROM channels WHERE sid = ?1 AND service_sid = ?2";

/// Fetches one JSON record.
pub(super) fn get_one<T: DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Option<T>, StoreError> {
    let data: Option<String> = conn
        .prepare_cached(sql)?
        .query_row(args, |r| r.get(0))
        .optional()?;
    data.as_deref().map(decode).transpose()
}

/// One page of `table` filtered by `filter` (with `args`), keyed and ordered by `key`.
pub(super) fn page_of<T: DeserializeOwned>(
    conn: &Connection,
    table: &str,
    key: &str,
    filter: &str,
    mut args: Vec<Value>,
    page: &PageRequest,
) -> Result<Page<T>, StoreError> {
    let (cmp, dir) = if page.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    let size = page.size.max(1);
    let mut sql = format!("SELECT {key}, data FROM {table} WHERE {filter}");
    let mut offset = 0;
    match &page.start {
        PageStart::First => {}
        PageStart::Offset(n) => offset = *n,
        PageStart::After(cursor) => {
            let after: i64 = cursor.parse().map_err(|_| StoreError::InvalidCursor)?;
            sql.push_str(&format!(" AND {key} {cmp} ?"));
            args.push(Value::Integer(after));
        }
    }
    sql.push_str(&format!(" ORDER BY {key} {dir} LIMIT ? OFFSET ?"));
    args.push(Value::Integer(size as i64 + 1));
    args.push(Value::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    // Grown as rows come: a page asked for as large as allowed is usually short (a user's
    // invitations at `init` ask for a thousand and find none).
    let mut items = Vec::with_capacity(size.min(64));
    let mut last_key = None;
    let mut more = false;
    for row in rows {
        let (k, data) = row?;
        if items.len() == size {
            more = true;
            break;
        }
        items.push(decode(&data)?);
        last_key = Some(k);
    }
    Ok(Page {
        items,
        next: if more {
            last_key.map(|k| k.to_string())
        } else {
            None
        },
    })
}

/// `identity IN (?, ?, ...)` for a non-empty list, else `1`.
pub(super) fn identity_filter(identities: &[String], args: &mut Vec<Value>) -> String {
    if identities.is_empty() {
        return "1".into();
    }
    args.extend(identities.iter().map(|i| Value::Text(i.clone())));
    format!("identity IN ({})", vec!["?"; identities.len()].join(", "))
}

/// `Connection::execute` through the connection's statement cache: these writes run again and
/// again, and parsing their SQL each time showed in profiles (a new user's insert at `init`).
pub(super) fn execute_cached(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

pub(super) fn text(v: impl ToString) -> Value {
    Value::Text(v.to_string())
}
