-- 0003: the datasets MLflow clients log to runs (`runs/log-inputs`, `mlflow.log_input`), kept as
-- MLflow keeps them and returned by runs/get and runs/search. A dataset is recorded once per
-- experiment by (name, digest), with the source, schema and profile of its first logging; each run
-- that logs it gets one input (the first logging's input tags, e.g. mlflow.data.context). These
-- are separate from fusionprot's own `datasets` (prepared datasets by content hash).
CREATE TABLE input_datasets (
    dataset_uuid        TEXT    PRIMARY KEY,
    experiment_id       INTEGER NOT NULL REFERENCES experiments (experiment_id),
    name                TEXT    NOT NULL,
    digest              TEXT    NOT NULL,
    dataset_source_type TEXT    NOT NULL,
    dataset_source      TEXT    NOT NULL,
    dataset_schema      TEXT,
    dataset_profile     TEXT,
    UNIQUE (experiment_id, name, digest)
);

CREATE TABLE run_inputs (
    input_uuid   TEXT    PRIMARY KEY,
    run_uuid     TEXT    NOT NULL REFERENCES runs (run_uuid),
    dataset_uuid TEXT    NOT NULL REFERENCES input_datasets (dataset_uuid),
    position     INTEGER NOT NULL,                     -- order of logging within the run
    UNIQUE (run_uuid, dataset_uuid)
);
CREATE INDEX run_inputs_by_run ON run_inputs (run_uuid, position);

CREATE TABLE run_input_tags (
    input_uuid TEXT NOT NULL REFERENCES run_inputs (input_uuid),
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (input_uuid, name)
);
