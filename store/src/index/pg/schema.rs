//! The index's tables and statements in PostgreSQL (docs/postgres.md says
//! why each is as it is). The tables are created when a master or a tool
//! first opens the database, under an advisory lock so that masters
//! starting together create them once.

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
/// Every statement is prepared once per connection and its plan kept (a
/// fresh plan for each call cost a tenth of the database's time).
pub(super) const SESSION_OPTIONS: &str =
    "-c enable_seqscan=off -c plan_cache_mode=force_generic_plan";

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
"#;

pub(super) const GET: &str = "SELECT v FROM mkv_index WHERE k = $1";
pub(super) const GET_MANY: &str = "SELECT k, v FROM mkv_index WHERE k = ANY($1)";
pub(super) const PAGE: &str =
    "SELECT k, v FROM mkv_index WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3";
pub(super) const PAGE_TO_END: &str = "SELECT k, v FROM mkv_index WHERE k >= $1 ORDER BY k LIMIT $2";
/// A group of batches, as one statement (a function's call cost more
/// than its statements; `groups` says why several batches go together):
/// `$1` the fences (the keys whose locks this master must hold in
/// `mkv_locks`, as owner `$2`, for anything to be written; each key once),
/// `$3` for each fence the token of its lock's hold if a batch lets go of
/// it in this commit (NULL: it keeps it), `$4` relaxed (the commit does not
/// wait for the disk), `$5` the keys deleted, `$6`/`$7` the keys and values
/// written. Answers whether it applied (false: some fence's lock is not
/// this master's, and nothing was written).
pub(super) const APPLY: &str = r#"
WITH fence AS (
    SELECT 1 FROM mkv_locks WHERE k = ANY($1) AND owner = $2 FOR UPDATE
), held AS (
    SELECT (SELECT count(*) FROM fence) = cardinality($1::bytea[]) AS ok
), relax AS (
    SELECT set_config('synchronous_commit', 'off', true) FROM held WHERE $4 AND ok
), del AS (
    DELETE FROM mkv_index WHERE k = ANY($5) AND (SELECT ok FROM held)
), ins AS (
    INSERT INTO mkv_index (k, v) SELECT * FROM unnest($6::bytea[], $7::bytea[])
        WHERE (SELECT ok FROM held)
        ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v
), release AS (
    DELETE FROM mkv_locks l USING unnest($1::bytea[], $3::bigint[]) AS r(k, token)
        WHERE l.k = r.k AND l.token = r.token AND (SELECT ok FROM held)
)
SELECT ok, (SELECT count(*) FROM relax) FROM held"#;

/// Takes keys' locks (`$1`, each key once) for owner `$2`, each hold
/// named by its token in `$3`: inserts a key's row, or takes it over
/// from an owner whose session is gone; the keys it took back. With `$4`
/// (relaxed) the commit does not wait for the disk: a lock row need not,
/// as a later synced commit that depends on it (the fenced intent) flushes
/// it too, and a lock lost in a crash was its owner's, whose session the
/// crash ended anyway. A lock taken with a claim ([`CLAIM`], in the same
/// transaction) is synced, as the claim's writes must be.
pub(super) const LOCK: &str = r#"
WITH relax AS (
    SELECT CASE WHEN $4 THEN set_config('synchronous_commit', 'off', true) END
)
INSERT INTO mkv_locks (k, owner, token)
    SELECT u.k, $2, u.token FROM unnest($1::bytea[], $3::bigint[]) AS u(k, token), relax
    ON CONFLICT (k) DO UPDATE SET owner = EXCLUDED.owner, token = EXCLUDED.token
    WHERE mkv_locks.owner = $2 OR pg_try_advisory_xact_lock(mkv_locks.owner)
RETURNING k"#;
/// The second statement of a transaction whose first took locks
/// ([`LOCK`]): its snapshot is taken after the locks' last holders
/// committed, so it sees all they wrote. Reads the keys `$5` (their
/// values before this statement's writes: `written` false), and for each
/// lock of owner `$6` taken with a claim writes the claim's rows if none
/// of the keys they write holds a record (`written` true, the key of each
/// row written). The rows of the claims: `$1` the lock's key, `$2` its
/// hold's token, `$3`/`$4` key and value. Nobody else writes a key whose
/// lock this transaction holds, so the check and the writes see one state.
pub(super) const CLAIM: &str = r#"
WITH w AS (
    SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bytea[], $4::bytea[]) AS w(lk, token, k, v)
), cur AS (
    SELECT k, v FROM mkv_index WHERE k = ANY($5)
), ok AS (
    SELECT DISTINCT w.lk FROM w
        JOIN mkv_locks l ON l.k = w.lk AND l.token = w.token AND l.owner = $6
        WHERE NOT EXISTS (SELECT 1 FROM w AS x JOIN mkv_index i ON i.k = x.k WHERE x.lk = w.lk)
), ins AS (
    INSERT INTO mkv_index (k, v) SELECT w.k, w.v FROM w JOIN ok ON ok.lk = w.lk
    RETURNING k
)
SELECT k, v, false AS written FROM cur
UNION ALL SELECT k, NULL, true FROM ins"#;
/// Lets go of a key's lock (`$1`) if hold `$2` still has it.
pub(super) const UNLOCK: &str = r#"
WITH relax AS (SELECT set_config('synchronous_commit', 'off', true))
DELETE FROM mkv_locks WHERE k = $1 AND token = $2 AND EXISTS (SELECT 1 FROM relax)"#;
