//! One connection type over the two databases the store runs on, SQLite (embedded, the
//! default) and PostgreSQL (shared by several nodes), so that every query is written once.
//!
//! Queries are written in the SQL the two share, with `?1`, `?2`... placeholders (turned
//! into `$1`, `$2`... for PostgreSQL). Values cross as [`Value`]s: integers are 64-bit
//! everywhere (the schema says `INTEGER`, which PostgreSQL is given as `BIGINT`), flags
//! are integers, and rows are read into plain values before the statement is left, so a
//! caller never sees either driver. Schema text goes through [`Sql::ddl`], which turns the
//! few SQLite-only words into PostgreSQL's.

use std::collections::HashMap;

use anyhow::Context;
use postgres::types::{IsNull, ToSql, Type};

/// A value passed to or read from a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// What can be bound to a placeholder.
pub trait Param {
    fn value(&self) -> Value;
}

impl Param for i64 {
    fn value(&self) -> Value {
        Value::Int(*self)
    }
}
impl Param for bool {
    fn value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}
impl Param for f64 {
    fn value(&self) -> Value {
        Value::Real(*self)
    }
}
impl Param for str {
    fn value(&self) -> Value {
        Value::Text(self.to_owned())
    }
}
impl Param for String {
    fn value(&self) -> Value {
        Value::Text(self.clone())
    }
}
impl Param for [u8] {
    fn value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}
impl Param for Value {
    fn value(&self) -> Value {
        self.clone()
    }
}
impl<T: Param + ?Sized> Param for &T {
    fn value(&self) -> Value {
        (**self).value()
    }
}
impl<T: Param> Param for Option<T> {
    fn value(&self) -> Value {
        self.as_ref().map_or(Value::Null, Param::value)
    }
}

/// The values of a query's placeholders, in order: `args![id, name]`.
macro_rules! args {
    ($($v:expr),* $(,)?) => {
        &[$(&$v as &dyn $crate::store::sql::Param),*] as &[&dyn $crate::store::sql::Param]
    };
}
pub(crate) use args;

/// What a column can be read as.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<i64> {
        match v {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}
impl FromValue for bool {
    fn from_value(v: &Value) -> Option<bool> {
        i64::from_value(v).map(|i| i != 0)
    }
}
impl FromValue for f64 {
    fn from_value(v: &Value) -> Option<f64> {
        match v {
            Value::Real(r) => Some(*r),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}
impl FromValue for String {
    fn from_value(v: &Value) -> Option<String> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Option<Vec<u8>> {
        match v {
            Value::Blob(b) => Some(b.clone()),
            _ => None,
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Option<T>> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One row of a result, read out of the driver.
#[derive(Debug, Clone)]
pub struct Row(Vec<Value>);

impl Row {
    /// Column `i` as a `T`; an error names the column and what it held.
    pub fn get<T: FromValue>(&self, i: usize) -> anyhow::Result<T> {
        let v = self.0.get(i).with_context(|| format!("no column {i}"))?;
        T::from_value(v).with_context(|| format!("column {i} holds {v:?}, not a {}", std::any::type_name::<T>()))
    }
}

/// Which database a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection to either database.
pub enum Sql {
    Sqlite(rusqlite::Connection),
    Postgres {
        client: Box<postgres::Client>,
        /// Where it connected, to connect again.
        url: String,
        /// Statements prepared on this connection, by their text: preparing is a round trip.
        prepared: HashMap<String, postgres::Statement>,
    },
}

impl Sql {
    /// Connects to PostgreSQL at `url` (`postgres://user:password@host:port/database`).
    /// Call it off the async runtime's threads: the driver blocks.
    pub fn postgres(url: &str) -> anyhow::Result<Sql> {
        Ok(Sql::Postgres {
            client: Box::new(connect_postgres(url)?),
            url: url.to_owned(),
            prepared: HashMap::new(),
        })
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Sql::Sqlite(_) => Dialect::Sqlite,
            Sql::Postgres { .. } => Dialect::Postgres,
        }
    }

    /// Runs a statement; returns how many rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[&dyn Param]) -> anyhow::Result<u64> {
        match self {
            Sql::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                Ok(stmt.execute(rusqlite::params_from_iter(
                    params.iter().map(|p| sqlite_value(p.value())),
                ))? as u64)
            }
            Sql::Postgres { client, prepared, .. } => {
                let stmt = prepare(client, prepared, sql)?;
                let values: Vec<Value> = params.iter().map(|p| p.value()).collect();
                let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                Ok(client.execute(&stmt, &refs)?)
            }
        }
    }

    /// Runs a query and reads all its rows.
    pub fn query(&mut self, sql: &str, params: &[&dyn Param]) -> anyhow::Result<Vec<Row>> {
        match self {
            Sql::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let columns = stmt.column_count();
                let mut rows = stmt.query(rusqlite::params_from_iter(
                    params.iter().map(|p| sqlite_value(p.value())),
                ))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let mut row = Vec::with_capacity(columns);
                    for i in 0..columns {
                        row.push(match r.get_ref(i)? {
                            rusqlite::types::ValueRef::Null => Value::Null,
                            rusqlite::types::ValueRef::Integer(i) => Value::Int(i),
                            rusqlite::types::ValueRef::Real(f) => Value::Real(f),
                            rusqlite::types::ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                            rusqlite::types::ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                        });
                    }
                    out.push(Row(row));
                }
                Ok(out)
            }
            Sql::Postgres { client, prepared, .. } => {
                let stmt = prepare(client, prepared, sql)?;
                let values: Vec<Value> = params.iter().map(|p| p.value()).collect();
                let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                client.query(&stmt, &refs)?.iter().map(postgres_row).collect()
            }
        }
    }

    /// The first row of a query, if any.
    pub fn query_opt(&mut self, sql: &str, params: &[&dyn Param]) -> anyhow::Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row of a query that always returns one (an aggregate).
    pub fn query_one(&mut self, sql: &str, params: &[&dyn Param]) -> anyhow::Result<Row> {
        self.query_opt(sql, params)?
            .with_context(|| format!("no row from {sql}"))
    }

    /// Inserts many rows, [`ROWS_PER_INSERT`] per statement: `head` names the table and
    /// columns (`INSERT INTO t (a, b)`), each row is `columns` of `values`, and `tail`
    /// follows the values (`RETURNING ...`, `ON CONFLICT ...`). Returns the rows returned.
    pub fn insert_rows(
        &mut self,
        head: &str,
        columns: usize,
        values: &[Value],
        tail: &str,
    ) -> anyhow::Result<Vec<Row>> {
        let mut returned = Vec::new();
        for chunk in values.chunks(ROWS_PER_INSERT * columns) {
            let params: Vec<&dyn Param> = chunk.iter().map(|v| v as _).collect();
            let sql = format!("{head} VALUES {} {tail}", values_list(chunk.len() / columns, columns));
            returned.extend(self.query(&sql, &params)?);
        }
        Ok(returned)
    }

    /// Runs statements separated by `;`, without parameters.
    pub fn batch(&mut self, sql: &str) -> anyhow::Result<()> {
        match self {
            Sql::Sqlite(c) => c.execute_batch(sql)?,
            Sql::Postgres { client, .. } => client.batch_execute(sql)?,
        }
        Ok(())
    }

    /// Runs `f` in a transaction: committed if it returns `Ok`, rolled back otherwise,
    /// also when the commit fails or `f` panics, so that the connection never stays in a
    /// transaction.
    pub fn transaction<T>(&mut self, f: impl FnOnce(&mut Sql) -> anyhow::Result<T>) -> anyhow::Result<T> {
        self.batch("BEGIN")?;
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        let result = match done {
            Ok(Ok(v)) => self.batch("COMMIT").map(|()| v),
            Ok(Err(e)) => Err(e),
            Err(panic) => {
                let _ = self.batch("ROLLBACK");
                std::panic::resume_unwind(panic);
            }
        };
        if result.is_err() {
            let _ = self.batch("ROLLBACK");
        }
        result
    }

    /// Connects again if the server closed the connection (a PostgreSQL restart or
    /// failover): the next call then works instead of failing until the process restarts.
    pub fn reconnect_if_closed(&mut self) -> anyhow::Result<()> {
        if let Sql::Postgres { client, url, prepared } = self
            && client.is_closed()
        {
            tracing::warn!("the connection to PostgreSQL closed: connecting again");
            **client = connect_postgres(url)?;
            prepared.clear();
        }
        Ok(())
    }

    /// Schema text in this database's words: SQLite's `INTEGER PRIMARY KEY` (a row id),
    /// `INTEGER`, `BLOB`, `COLLATE NOCASE` names and `WITHOUT ROWID` tables become
    /// PostgreSQL's identity column, `BIGINT`, `BYTEA`, `CITEXT` and plain tables.
    pub fn ddl(&self, sql: &str) -> String {
        match self.dialect() {
            Dialect::Sqlite => sql.to_owned(),
            Dialect::Postgres => sql
                .replace(
                    "INTEGER PRIMARY KEY",
                    "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                )
                .replace("INTEGER", "BIGINT")
                .replace("BLOB", "BYTEA")
                .replace("TEXT NOT NULL UNIQUE COLLATE NOCASE", "CITEXT NOT NULL UNIQUE")
                .replace(") WITHOUT ROWID", ")"),
        }
    }
}

/// The placeholders of a multi-row `VALUES` list: `(?1, ?2), (?3, ?4)` for 2 rows of 2.
pub fn values_list(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (1..=columns).map(|c| format!("?{}", r * columns + c)).collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rows to insert many at a time: few enough placeholders for either database.
pub const ROWS_PER_INSERT: usize = 500;

/// Whether an error is a UNIQUE (or primary key) constraint failing: a name taken, a
/// second vote.
pub fn is_unique_violation(e: &anyhow::Error) -> bool {
    if let Some(rusqlite::Error::SqliteFailure(f, _)) = e.downcast_ref::<rusqlite::Error>() {
        return f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY;
    }
    e.downcast_ref::<postgres::Error>()
        .and_then(|e| e.code())
        .is_some_and(|c| *c == postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// A database URL with its password hidden, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme + 3], &userinfo[..colon], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A client of the PostgreSQL at `url`: it gives up connecting after 10 s, and a statement
/// after 30 s (the store thread must not hang on a dead connection), and TCP keepalives
/// find a connection whose peer vanished.
fn connect_postgres(url: &str) -> anyhow::Result<postgres::Client> {
    let mut config: postgres::Config = url.parse().with_context(|| format!("parsing {}", redact(url)))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    config
        .keepalives(true)
        .keepalives_idle(std::time::Duration::from_secs(30));
    if config.get_options().is_none() {
        config.options("-c statement_timeout=30000");
    }
    config
        .connect(postgres::NoTls)
        .with_context(|| format!("connecting to {}", redact(url)))
}

fn sqlite_value(v: Value) -> rusqlite::types::Value {
    match v {
        Value::Null => rusqlite::types::Value::Null,
        Value::Int(i) => rusqlite::types::Value::Integer(i),
        Value::Real(f) => rusqlite::types::Value::Real(f),
        Value::Text(s) => rusqlite::types::Value::Text(s),
        Value::Blob(b) => rusqlite::types::Value::Blob(b),
    }
}

/// `sql` prepared on `client`, from the connection's cache.
fn prepare(
    client: &mut postgres::Client,
    prepared: &mut HashMap<String, postgres::Statement>,
    sql: &str,
) -> anyhow::Result<postgres::Statement> {
    if let Some(stmt) = prepared.get(sql) {
        return Ok(stmt.clone());
    }
    let stmt = client
        .prepare(&numbered_placeholders(sql))
        .with_context(|| format!("preparing {sql}"))?;
    // Multi-row inserts come in many lengths: kept, they would fill the server's memory.
    if sql.matches('?').count() <= 32 {
        prepared.insert(sql.to_owned(), stmt.clone());
    }
    Ok(stmt)
}

/// `?1` placeholders as PostgreSQL's `$1`, outside quoted text.
fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c == '?' && !quoted && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// A PostgreSQL row as plain values: every integer width as `Int`, booleans as 0 or 1.
fn postgres_row(r: &postgres::Row) -> anyhow::Result<Row> {
    let mut row = Vec::with_capacity(r.len());
    for (i, column) in r.columns().iter().enumerate() {
        let ty = column.type_();
        let v = match *ty {
            Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map(Value::Int),
            Type::INT4 => r.try_get::<_, Option<i32>>(i)?.map(|v| Value::Int(v.into())),
            Type::INT2 => r.try_get::<_, Option<i16>>(i)?.map(|v| Value::Int(v.into())),
            Type::BOOL => r.try_get::<_, Option<bool>>(i)?.map(|v| Value::Int(v.into())),
            Type::FLOAT8 => r.try_get::<_, Option<f64>>(i)?.map(Value::Real),
            Type::FLOAT4 => r.try_get::<_, Option<f32>>(i)?.map(|v| Value::Real(v.into())),
            Type::BYTEA => r.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob),
            _ => r
                .try_get::<_, Option<String>>(i)
                .with_context(|| {
                    format!(
                        "column {} is of type {ty}, which the store does not read",
                        column.name()
                    )
                })?
                .map(Value::Text),
        };
        row.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(row))
}

/// Values bind to whatever type PostgreSQL inferred for the placeholder, so that a query
/// needs no casts: an integer binds to any integer width or a boolean, text to any text.
impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                _ => i.to_string().as_str().to_sql(ty, out),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                Type::FLOAT8 => f.to_sql(ty, out),
                _ => Err(format!("{self:?} cannot be bound to a {ty} parameter").into()),
            },
            Value::Text(_) | Value::Blob(_)
                if matches!(
                    *ty,
                    Type::INT2 | Type::INT4 | Type::INT8 | Type::BOOL | Type::FLOAT4 | Type::FLOAT8
                ) =>
            {
                Err(format!("{self:?} cannot be bound to a {ty} parameter").into())
            }
            Value::Text(s) => s.as_str().to_sql(ty, out),
            Value::Blob(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes_only() {
        assert_eq!(
            numbered_placeholders("SELECT '?1', x FROM t WHERE a = ?1 AND b = ?12"),
            "SELECT '?1', x FROM t WHERE a = $1 AND b = $12"
        );
    }

    #[test]
    fn a_values_list_numbers_its_placeholders_row_by_row() {
        assert_eq!(values_list(2, 2), "(?1, ?2), (?3, ?4)");
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(redact("postgres://me:secret@db:5432/x"), "postgres://me:***@db:5432/x");
        assert_eq!(redact("postgres://me@db/x"), "postgres://me@db/x");
    }

    #[test]
    fn sqlite_rows_read_as_plain_values() {
        let mut sql = Sql::Sqlite(rusqlite::Connection::open_in_memory().unwrap());
        sql.batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, blob BLOB)")
            .unwrap();
        let n = sql
            .execute(
                "INSERT INTO t (name, blob) VALUES (?1, ?2)",
                args![Some("a"), &b"xy"[..]],
            )
            .unwrap();
        assert_eq!(n, 1);
        let row = sql.query_one("SELECT id, name, blob, NULL FROM t", args![]).unwrap();
        assert_eq!(row.get::<i64>(0).unwrap(), 1);
        assert_eq!(row.get::<String>(1).unwrap(), "a");
        assert_eq!(row.get::<Vec<u8>>(2).unwrap(), b"xy");
        assert_eq!(row.get::<Option<i64>>(3).unwrap(), None);
        assert!(row.get::<i64>(1).is_err(), "text is not an integer");
        let err = sql
            .transaction(|tx| {
                tx.execute("INSERT INTO t (id, name) VALUES (1, 'again')", args![])?;
                Ok(())
            })
            .unwrap_err();
        assert!(is_unique_violation(&err));
    }
}
