//! The index's tables and functions in PostgreSQL (docs/postgres.md says
//! why each is as it is). Created when a master or a tool first opens the
//! database, under an advisory lock so that masters starting together
//! create them once; `CREATE OR REPLACE` keeps the functions current.

/// Advisory lock keys of the index (the two-key form's first key is a
/// class of our own, so other users of advisory locks are not hit).
pub(super) const CLASS: i32 = 0x6d6b76; // "mkv"
/// Held shared by every master, exclusively by a tool (`mkv rebuild`,
/// `rebalance`, `verify`, `migrate`): a tool runs alone, as over LevelDB.
pub(super) const USERS: i32 = 1;
/// Held while the schema is created.
pub(super) const SCHEMA: i32 = 2;

/// Settings of every session: each statement reads or writes a few keys by
/// the primary key, or a key range in its order, and a table that looks
/// small to the planner (after a vacuum, or full of dead rows) must not be
/// read whole for one key.
pub(super) const SESSION_OPTIONS: &str = "-c enable_seqscan=off";

/// Every statement of the schema, in order.
pub(super) const SCHEMA_SQL: &str = r#"
CREATE TABLE IF NOT EXISTS mkv_index (
    k bytea PRIMARY KEY,
    v bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS mkv_locks (
    k bytea PRIMARY KEY,
    owner bigint NOT NULL,
    token bigint NOT NULL
);
-- Both tables churn (every write of a key inserts and deletes a lock row;
-- a busy cluster writes and deletes keys all day): vacuumed early, so
-- that dead rows do not pile up in the way of lookups.
ALTER TABLE mkv_locks SET (autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 2000, autovacuum_vacuum_cost_delay = 0);
ALTER TABLE mkv_index SET (autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 5000, autovacuum_vacuum_insert_scale_factor = 0.05);
CREATE OR REPLACE FUNCTION mkv_apply(
    fence bytea, me bigint, relaxed boolean,
    dels bytea[], ks bytea[], vs bytea[]
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF relaxed THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    IF fence IS NOT NULL THEN
        PERFORM 1 FROM mkv_locks WHERE k = fence AND owner = me FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'the lock of the key was taken over by another master'
                USING ERRCODE = 'MKV01';
        END IF;
    END IF;
    IF cardinality(dels) > 0 THEN
        DELETE FROM mkv_index WHERE k = ANY(dels);
    END IF;
    IF cardinality(ks) > 0 THEN
        INSERT INTO mkv_index (k, v) SELECT * FROM unnest(ks, vs)
            ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;
    END IF;
END $$;
-- A lock row need not wait for the disk: a later synced commit that
-- depends on it (the fenced intent) flushes it too, and a lock lost in a
-- crash was its owner's, whose session the crash ended anyway.
CREATE OR REPLACE FUNCTION mkv_lock(key bytea, me bigint, tok bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO mkv_locks (k, owner, token) VALUES (key, me, tok)
        ON CONFLICT (k) DO UPDATE SET owner = EXCLUDED.owner, token = EXCLUDED.token
        WHERE mkv_locks.owner = me
           OR pg_try_advisory_xact_lock(mkv_locks.owner);
    RETURN FOUND;
END $$;
CREATE OR REPLACE FUNCTION mkv_unlock(key bytea, tok bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    DELETE FROM mkv_locks WHERE k = key AND token = tok;
END $$;
"#;

pub(super) const GET: &str = "SELECT v FROM mkv_index WHERE k = $1";
pub(super) const GET_MANY: &str = "SELECT k, v FROM mkv_index WHERE k = ANY($1)";
pub(super) const PAGE: &str =
    "SELECT k, v FROM mkv_index WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3";
pub(super) const PAGE_TO_END: &str = "SELECT k, v FROM mkv_index WHERE k >= $1 ORDER BY k LIMIT $2";
pub(super) const APPLY: &str = "SELECT mkv_apply($1, $2, $3, $4, $5, $6)";
pub(super) const LOCK: &str = "SELECT mkv_lock($1, $2, $3)";
pub(super) const UNLOCK: &str = "SELECT mkv_unlock($1, $2)";
