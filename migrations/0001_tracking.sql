-- 0001: the tracker's first schema: MLflow's tracking entities (experiments, runs, params, tags,
-- metric history, latest metrics) plus fusionprot's checkpoints and datasets.
-- Times are milliseconds since the Unix epoch, as MLflow reports them.

CREATE TABLE experiments (
    experiment_id     INTEGER PRIMARY KEY,        -- exposed as a decimal string, as MLflow does
    name              TEXT    NOT NULL UNIQUE,
    artifact_location TEXT    NOT NULL,
    lifecycle_stage   TEXT    NOT NULL DEFAULT 'active' CHECK (lifecycle_stage IN ('active', 'deleted')),
    creation_time     INTEGER NOT NULL,
    last_update_time  INTEGER NOT NULL
);

CREATE TABLE experiment_tags (
    experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
    key           TEXT    NOT NULL,
    value         TEXT    NOT NULL,
    PRIMARY KEY (experiment_id, key)
) WITHOUT ROWID;

CREATE TABLE runs (
    run_uuid        TEXT    PRIMARY KEY,          -- 32 lowercase hex digits
    experiment_id   INTEGER NOT NULL REFERENCES experiments (experiment_id),
    run_name        TEXT    NOT NULL DEFAULT '',
    user_id         TEXT    NOT NULL DEFAULT '',
    status          TEXT    NOT NULL DEFAULT 'RUNNING'
                    CHECK (status IN ('RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED')),
    start_time      INTEGER,
    end_time        INTEGER,
    lifecycle_stage TEXT    NOT NULL DEFAULT 'active' CHECK (lifecycle_stage IN ('active', 'deleted')),
    artifact_uri    TEXT    NOT NULL,
    deleted_time    INTEGER
);
CREATE INDEX runs_by_experiment ON runs (experiment_id, lifecycle_stage, start_time);

-- Immutable once logged (MLflow semantics): a second value for a key is an error.
CREATE TABLE params (
    run_uuid TEXT NOT NULL REFERENCES runs (run_uuid),
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (run_uuid, key)
) WITHOUT ROWID;

-- Overwritten by a later value.
CREATE TABLE tags (
    run_uuid TEXT NOT NULL REFERENCES runs (run_uuid),
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (run_uuid, key)
) WITHOUT ROWID;

-- Every logged point is kept. NaN is stored as value 0 with is_nan = 1 and ±inf as ±1.7976931348623157e308,
-- as MLflow does. An identical point (same key, step, timestamp and value) is stored once, so a retried
-- request never duplicates history.
CREATE TABLE metrics (
    run_uuid  TEXT    NOT NULL REFERENCES runs (run_uuid),
    key       TEXT    NOT NULL,
    step      INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    value     REAL    NOT NULL,
    is_nan    INTEGER NOT NULL DEFAULT 0 CHECK (is_nan IN (0, 1)),
    PRIMARY KEY (run_uuid, key, step, timestamp, value, is_nan)
) WITHOUT ROWID;

-- The point search-runs filters and orders on: highest step, then latest timestamp, then largest value.
CREATE TABLE latest_metrics (
    run_uuid  TEXT    NOT NULL REFERENCES runs (run_uuid),
    key       TEXT    NOT NULL,
    step      INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    value     REAL    NOT NULL,
    is_nan    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_uuid, key)
) WITHOUT ROWID;
CREATE INDEX latest_metrics_by_key ON latest_metrics (key, value);

-- fusionprot: checkpoints a run saved (a path on disk or an artifact of the run).
CREATE TABLE checkpoints (
    checkpoint_id INTEGER PRIMARY KEY,
    run_uuid      TEXT    NOT NULL REFERENCES runs (run_uuid),
    step          INTEGER NOT NULL,
    path          TEXT,
    artifact_path TEXT,
    size_bytes    INTEGER,
    sha256        TEXT    CHECK (sha256 IS NULL OR length(sha256) = 64),
    metrics_json  TEXT    NOT NULL DEFAULT '{}',       -- metric values at save time
    is_best       INTEGER NOT NULL DEFAULT 0 CHECK (is_best IN (0, 1)),
    created_time  INTEGER NOT NULL,
    CHECK (path IS NOT NULL OR artifact_path IS NOT NULL)
);
CREATE INDEX checkpoints_by_run ON checkpoints (run_uuid, step);

-- fusionprot: prepared datasets (the pipeline's manifest), identified by content hash.
CREATE TABLE datasets (
    dataset_id     INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL,
    content_hash   TEXT    NOT NULL UNIQUE,
    schema_version INTEGER NOT NULL,
    path           TEXT,
    manifest_json  TEXT    NOT NULL,
    split_json     TEXT,                              -- the manifest's split report, when split
    created_time   INTEGER NOT NULL
);

CREATE TABLE run_datasets (
    run_uuid   TEXT    NOT NULL REFERENCES runs (run_uuid),
    dataset_id INTEGER NOT NULL REFERENCES datasets (dataset_id),
    context    TEXT    NOT NULL DEFAULT '',            -- e.g. train, valid, test
    PRIMARY KEY (run_uuid, dataset_id, context)
) WITHOUT ROWID;
