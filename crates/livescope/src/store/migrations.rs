//! The schema, as numbered migrations applied in order at start, the same for SQLite and
//! PostgreSQL (schema text goes through [`Sql::ddl`]); SQLite's `PRAGMA user_version`, or
//! PostgreSQL's `schema_version` table, records how many have run. A migration is never
//! edited once released: add another.

use super::hash_secret;
use super::sql::{Dialect, Sql, args};

type Migration = fn(&mut Sql) -> anyhow::Result<()>;

const MIGRATIONS: &[Migration] = &[
    v1_broadcasts,
    v2_accounts,
    v3_interaction,
    v4_moderation,
    v5_access_epoch,
    v6_signing_keys,
    v7_signature_policy,
    v8_cluster,
];

pub fn run(conn: &mut Sql) -> anyhow::Result<()> {
    if conn.dialect() == Dialect::Postgres {
        // Nodes sharing the database may start together: one migrates, the others wait
        // for it and then find nothing left to do.
        conn.batch(
            "SELECT pg_advisory_lock(1935);
             CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);",
        )?;
    }
    let migrated = migrate(conn);
    if conn.dialect() == Dialect::Postgres {
        conn.batch("SELECT pg_advisory_unlock(1935)")?;
    }
    migrated
}

fn migrate(conn: &mut Sql) -> anyhow::Result<()> {
    let done = version(conn)?;
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(done as usize) {
        conn.transaction(|tx| {
            migration(tx)?;
            set_version(tx, i as i64 + 1)
        })?;
        tracing::info!("database migrated to version {}", i + 1);
    }
    Ok(())
}

/// How many migrations have run.
fn version(conn: &mut Sql) -> anyhow::Result<i64> {
    Ok(match conn.dialect() {
        Dialect::Sqlite => conn.query_one("PRAGMA user_version", args![])?.get(0)?,
        Dialect::Postgres => match conn.query_opt("SELECT version FROM schema_version", args![])? {
            Some(row) => row.get(0)?,
            None => 0,
        },
    })
}

fn set_version(conn: &mut Sql, version: i64) -> anyhow::Result<()> {
    match conn.dialect() {
        Dialect::Sqlite => conn.batch(&format!("PRAGMA user_version = {version}")),
        Dialect::Postgres => {
            conn.execute("DELETE FROM schema_version", args![])?;
            conn.execute("INSERT INTO schema_version (version) VALUES (?1)", args![version])?;
            Ok(())
        }
    }
}

/// The first schema: broadcasts with plain stream keys.
fn v1_broadcasts(tx: &mut Sql) -> anyhow::Result<()> {
    tx.batch(&tx.ddl(
        "CREATE TABLE IF NOT EXISTS broadcasts (
            id          TEXT PRIMARY KEY,
            stream_key  TEXT NOT NULL UNIQUE,
            title       TEXT NOT NULL,
            state       TEXT NOT NULL,
            created_at  INTEGER NOT NULL,
            started_at  INTEGER,
            ended_at    INTEGER
        );",
    ))
}

/// Accounts, sessions, follows, notifications and views; broadcasts get an owner, a
/// private flag and a hashed stream key (keys stored before are hashed here).
fn v2_accounts(tx: &mut Sql) -> anyhow::Result<()> {
    if tx.dialect() == Dialect::Postgres {
        // Case-insensitive names (SQLite's COLLATE NOCASE).
        tx.batch("CREATE EXTENSION IF NOT EXISTS citext")?;
    }
    tx.batch(&tx.ddl(
        "CREATE TABLE users (
            id             INTEGER PRIMARY KEY,
            username       TEXT NOT NULL UNIQUE COLLATE NOCASE,
            password_hash  TEXT NOT NULL,
            created_at     INTEGER NOT NULL
        );
        CREATE TABLE sessions (
            token_hash  TEXT PRIMARY KEY,
            user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            created_at  INTEGER NOT NULL,
            expires_at  INTEGER NOT NULL
        );
        CREATE TABLE follows (
            follower_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            followee_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            created_at   INTEGER NOT NULL,
            PRIMARY KEY (follower_id, followee_id)
        ) WITHOUT ROWID;
        CREATE INDEX follows_by_followee ON follows (followee_id, follower_id);
        CREATE TABLE broadcasts_v2 (
            id               TEXT PRIMARY KEY,
            owner_id         INTEGER REFERENCES users(id),
            stream_key_hash  TEXT UNIQUE,
            title            TEXT NOT NULL,
            private          INTEGER NOT NULL DEFAULT 0,
            state            TEXT NOT NULL,
            created_at       INTEGER NOT NULL,
            started_at       INTEGER,
            ended_at         INTEGER,
            last_seen_at     INTEGER
        );
        CREATE TABLE allowed_viewers (
            broadcast_id  TEXT NOT NULL REFERENCES broadcasts_v2(id) ON DELETE CASCADE,
            user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            PRIMARY KEY (broadcast_id, user_id)
        ) WITHOUT ROWID;
        CREATE TABLE notifications (
            id            INTEGER PRIMARY KEY,
            user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            kind          TEXT NOT NULL,
            broadcast_id  TEXT NOT NULL,
            created_at    INTEGER NOT NULL
        );
        CREATE INDEX notifications_by_user ON notifications (user_id, id);
        CREATE TABLE views (
            id            INTEGER PRIMARY KEY,
            broadcast_id  TEXT NOT NULL,
            user_id       INTEGER,
            viewer        TEXT NOT NULL,
            path          TEXT NOT NULL,
            joined_at     INTEGER NOT NULL,
            left_at       INTEGER
        );
        CREATE INDEX views_by_broadcast ON views (broadcast_id, joined_at);",
    ))?;
    tx.batch(
        "INSERT INTO broadcasts_v2 (id, title, state, created_at, started_at, ended_at)
         SELECT id, title, state, created_at, started_at, ended_at FROM broadcasts;",
    )?;
    for row in tx.query("SELECT id, stream_key FROM broadcasts", args![])? {
        let (id, key): (String, String) = (row.get(0)?, row.get(1)?);
        tx.execute(
            "UPDATE broadcasts_v2 SET stream_key_hash = ?2 WHERE id = ?1",
            args![id, hash_secret(&key)],
        )?;
    }
    tx.batch(
        "DROP TABLE broadcasts;
        ALTER TABLE broadcasts_v2 RENAME TO broadcasts;
        CREATE INDEX broadcasts_by_state ON broadcasts (state, started_at);
        CREATE INDEX broadcasts_by_owner ON broadcasts (owner_id, created_at);",
    )
}

/// Interaction: comments, heart counts, polls and votes, each with the server time and the
/// media time (the stream position the viewer was watching) it answers.
fn v3_interaction(tx: &mut Sql) -> anyhow::Result<()> {
    tx.batch(&tx.ddl(
        "CREATE TABLE comments (
            id            INTEGER PRIMARY KEY,
            broadcast_id  TEXT NOT NULL,
            user_id       INTEGER NOT NULL REFERENCES users(id),
            text          TEXT NOT NULL,
            media_ts      INTEGER,
            server_ts     INTEGER NOT NULL,
            deleted       INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX comments_by_media ON comments (broadcast_id, media_ts);
        CREATE TABLE hearts (
            broadcast_id  TEXT NOT NULL,
            second        INTEGER NOT NULL,
            media_second  INTEGER,
            count         INTEGER NOT NULL,
            PRIMARY KEY (broadcast_id, second, media_second)
        );
        CREATE INDEX hearts_by_media ON hearts (broadcast_id, media_second);
        CREATE TABLE polls (
            id              INTEGER PRIMARY KEY,
            broadcast_id    TEXT NOT NULL,
            question        TEXT NOT NULL,
            options         TEXT NOT NULL,
            opened_at       INTEGER NOT NULL,
            closes_at       INTEGER NOT NULL,
            media_open_ts   INTEGER,
            media_close_ts  INTEGER,
            result          TEXT
        );
        CREATE INDEX polls_by_broadcast ON polls (broadcast_id, opened_at);
        CREATE TABLE votes (
            poll_id    INTEGER NOT NULL REFERENCES polls(id),
            user_id    INTEGER NOT NULL REFERENCES users(id),
            option     INTEGER NOT NULL,
            media_ts   INTEGER,
            server_ts  INTEGER NOT NULL,
            late       INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (poll_id, user_id)
        ) WITHOUT ROWID;",
    ))
}

/// Mutes and blocks, per broadcast, so that they outlive the room and a restart.
fn v4_moderation(tx: &mut Sql) -> anyhow::Result<()> {
    tx.batch(&tx.ddl(
        "CREATE TABLE moderation (
            broadcast_id  TEXT NOT NULL,
            user_id       INTEGER NOT NULL REFERENCES users(id),
            blocked       INTEGER NOT NULL,
            PRIMARY KEY (broadcast_id, user_id)
        ) WITHOUT ROWID;",
    ))
}

/// Broadcasts count how often someone lost access: playback tokens name the count they
/// were issued at, so removing a viewer revokes the tokens handed out before.
fn v5_access_epoch(tx: &mut Sql) -> anyhow::Result<()> {
    tx.batch(&tx.ddl("ALTER TABLE broadcasts ADD COLUMN access_epoch INTEGER NOT NULL DEFAULT 0;"))
}

/// Broadcasters' account keys (Ed25519 public keys; the secret halves never reach the
/// server). A revoked key keeps its row, so that it is known as revoked, not unknown.
fn v6_signing_keys(tx: &mut Sql) -> anyhow::Result<()> {
    tx.batch(&tx.ddl(
        "CREATE TABLE signing_keys (
            public_key BLOB PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id),
            created_at INTEGER NOT NULL,
            revoked_at INTEGER
        ) WITHOUT ROWID;
        CREATE INDEX signing_keys_by_user ON signing_keys (user_id, created_at);",
    ))
}

/// What the server does with a signed broadcast found tampered with (see
/// [`super::SignaturePolicy`]).
fn v7_signature_policy(tx: &mut Sql) -> anyhow::Result<()> {
    tx.batch(&tx.ddl("ALTER TABLE broadcasts ADD COLUMN signature_policy TEXT NOT NULL DEFAULT 'alert';"))
}

/// Several nodes on one database: the nodes (numbered, with where to reach them and how
/// busy they are), which node each live broadcast and each view is on, and secrets the
/// nodes share.
fn v8_cluster(tx: &mut Sql) -> anyhow::Result<()> {
    tx.batch(&tx.ddl(
        "CREATE TABLE nodes (
            name        TEXT PRIMARY KEY,
            number      INTEGER NOT NULL UNIQUE,
            http_url    TEXT NOT NULL,
            rtmp_url    TEXT NOT NULL,
            region      TEXT,
            seen_at     INTEGER NOT NULL,
            publishers  INTEGER NOT NULL DEFAULT 0,
            viewers     INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE secrets (
            name   TEXT PRIMARY KEY,
            value  BLOB NOT NULL
        );
        ALTER TABLE broadcasts ADD COLUMN node TEXT;
        ALTER TABLE views ADD COLUMN node TEXT;
        CREATE INDEX views_open_by_node ON views (node) WHERE left_at IS NULL;",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_database_keeps_its_broadcasts_with_hashed_keys() {
        let mut conn = Sql::Sqlite(rusqlite::Connection::open_in_memory().unwrap());
        conn.transaction(|tx| {
            v1_broadcasts(tx)?;
            tx.execute(
                "INSERT INTO broadcasts VALUES ('b1', 'live_secret', 'old', 'ended', 1, 2, 3)",
                args![],
            )?;
            set_version(tx, 1)
        })
        .unwrap();
        run(&mut conn).unwrap();
        let row = conn
            .query_one("SELECT stream_key_hash, title FROM broadcasts WHERE id = 'b1'", args![])
            .unwrap();
        let (hash, title): (String, String) = (row.get(0).unwrap(), row.get(1).unwrap());
        assert_eq!((hash, title.as_str()), (hash_secret("live_secret"), "old"));
        assert_eq!(version(&mut conn).unwrap() as usize, MIGRATIONS.len());
    }
}
