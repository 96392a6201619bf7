//! The OpenAPI 3 description of the API, served at `/api/openapi.json`, built from the route
//! table so it cannot miss a route.

use serde_json::{Map, Value, json};

use crate::api::ROUTES;

fn summary(method: &str, path: &str) -> &'static str {
    if path == "/" {
        return "The web dashboard (web/index.html; no token needed for its files)";
    }
    if path.starts_with("/web/") {
        return "The dashboard's static files (scripts, styles, vendored uPlot), with a CSP";
    }
    match (method, path.rsplit('/').next().unwrap_or("")) {
        (_, "health") => "Liveness: returns OK",
        (_, "version") => "fusionprot version",
        (_, "create") if path.contains("experiments") => "Create an experiment (MLflow)",
        (_, "get") if path.contains("experiments") => "Get an experiment by id (MLflow)",
        (_, "get-by-name") => "Get an experiment by name (MLflow)",
        (_, "search") if path.contains("experiments") => {
            "Search experiments: filter, order_by, paging (MLflow)"
        }
        (_, "delete") if path.contains("experiments") => {
            "Mark an experiment and its runs deleted (MLflow)"
        }
        (_, "restore") if path.contains("experiments") => "Restore a deleted experiment (MLflow)",
        (_, "update") if path.contains("experiments") => "Rename an experiment (MLflow)",
        (_, "set-experiment-tag") => "Set an experiment tag (MLflow)",
        (_, "delete-experiment-tag") => "Delete an experiment tag (MLflow)",
        (_, "create") => "Create a run (MLflow)",
        (_, "get") => "Get a run with its latest metrics, params and tags (MLflow)",
        (_, "update") => "Update a run's status, end time or name (MLflow)",
        (_, "delete") if path.contains("/runs/") => "Mark a run deleted (MLflow)",
        (_, "restore") => "Restore a deleted run (MLflow)",
        (_, "search") if path.contains("/runs/") => {
            "Search runs: MLflow filter string, order_by, paging (MLflow)"
        }
        (_, "log-metric") => "Log one metric point (MLflow)",
        (_, "log-parameter") => "Log a parameter; parameters are immutable (MLflow)",
        (_, "set-tag") => "Set a run tag; tags overwrite (MLflow)",
        (_, "delete-tag") => "Delete a run tag (MLflow)",
        (_, "log-batch") => {
            "Log metrics, params and tags atomically; ≤1000 metrics, 100 params, 100 tags, 1 MB (MLflow)"
        }
        (_, "log-inputs") => {
            "Log dataset inputs (name, digest, source, schema, profile, input tags) to a run; returned by runs/get and runs/search (MLflow)"
        }
        (_, "get-history") => "Every point of one metric, paged (MLflow)",
        (_, "search") if path.contains("logged-models") => {
            "Logged models are not stored; always empty"
        }
        ("GET", "artifacts") => "List the artifacts under ?path= (mlflow-artifacts)",
        ("GET", _) if path.contains("mlflow-artifacts") => {
            "Download an artifact (mlflow-artifacts)"
        }
        ("PUT", _) => "Upload an artifact; the body is stored as opaque bytes (mlflow-artifacts)",
        ("DELETE", _) => "Delete an artifact or folder (mlflow-artifacts)",
        (_, "register") => {
            "Register a prepared dataset by manifest, or by path below the server's --data-root (queryable by SQL)"
        }
        (_, "list") if path.contains("datasets") => "List registered datasets",
        (_, "list") if path.contains("mlflow/artifacts") => {
            "List a run's artifacts under ?path= with its root_uri (MLflow ListArtifacts)"
        }
        (_, "link-dataset") => "Link a run to a dataset it used (context: train, valid, test, …)",
        (_, "log") => {
            "Record a checkpoint: step, path or artifact, size, sha256, metrics, best flag"
        }
        (_, "list") => "List a run's checkpoints",
        (_, "sql") => {
            "Read-only SQL (DuckDB; only SELECTs run) over the tracker's tables and registered datasets: {query, max_rows, timeout_s, format: json|arrow|parquet} -> {columns: [{name, type}], rows: [[...]], truncated}, an Arrow IPC stream or a Parquet file"
        }
        (_, "runs") if path.contains("dashboard") => {
            "A page of the runs table in columns: {experiment_ids, filter, view_type, order_by, columns: [metrics.K:last|min|max|best, params.K, tags.K], offset, limit} -> {total, run_id: [...], …, columns: {name: [...]}}; ETag, gzip"
        }
        (_, "groups") => {
            "Every matching run grouped (group_by: params.K,tags.K,dataset or all-but:seed) with mean, sd (n − 1) and n per metric column, in columns; ETag, gzip"
        }
        (_, "keys") => "Metric, param and tag keys of the runs of ?experiment_ids=1,2",
        (_, "series") => {
            "One metric of one run downsampled to ?points= keeping first, last, each bucket's min and max, and the step where ?select= (default: the metric) is best"
        }
        (_, "events") => {
            "Server-sent events for live views: `runs` events with {run_ids, lagged}, the runs written in the last second"
        }
        (_, "ticket") => {
            "A 60 s ticket that opens the event stream (?ticket=) without the bearer token, for pages of a server with --token: {ticket, expires_in}"
        }
        (_, "breakdown") => {
            "Per-class breakdown of a run's predictions/v1 artifact (?run_id, ?artifact, default test-predictions-best.parquet): overall, by EC level-1 class and by protein length, each bucket with proteins, columns, positives, Fmax, AUPR, AUROC; and what cannot be broken down, with why"
        }
        (_, "get-history-bulk") => {
            "Several runs' whole history of one key (?run_id=…&run_id=…&metric_key&max_results ≤ 25000), by run id then timestamp, step, value (MLflow)"
        }
        (_, "get-history-bulk-interval") => {
            "Each run's history of one key sampled as MLflow's SQL store samples it: the first point of each of ?max_results (≤ 2500) NTILE buckets in [?start_step, ?end_step], the last point kept (MLflow)"
        }
        (_, "search-datasets") => {
            "Dataset summaries (experiment, name, digest, context) of the inputs logged in {experiment_ids} (≤ 20) (MLflow)"
        }
        (_, "upload-artifact") => {
            "Store the raw body (≤ 10 MB) as the run's artifact ?path= (?run_uuid=); MLflow UI's upload (MLflow)"
        }
        (_, "get-artifact") => {
            "Download the run's artifact ?path= (?run_uuid= or ?run_id=) (MLflow UI)"
        }
        (_, "openapi.json") => "This document",
        _ => "",
    }
}

pub fn document() -> Value {
    let mut paths = Map::new();
    for (method, path) in ROUTES {
        let p = path.replace("{*path}", "{path}");
        let mut op = json!({
            "summary": summary(method, path),
            "responses": {
                "200": { "description": "success (JSON unless noted)" },
                "default": {
                    "description": "an MLflow-style error",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
                }
            }
        });
        if p.contains("{path}") {
            op["parameters"] = json!([{ "name": "path", "in": "path", "required": true, "schema": { "type": "string" } }]);
        }
        if path.ends_with("/upload-artifact") {
            op["requestBody"] = json!({ "required": true, "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } });
        } else if *method == "POST" {
            op["requestBody"] = json!({ "required": false, "content": { "application/json": { "schema": { "type": "object" } } } });
        }
        if *method == "PUT" {
            op["requestBody"] = json!({ "required": true, "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } });
        }
        let entry = paths.entry(p).or_insert_with(|| json!({}));
        entry[method.to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "fusionprot tracking server",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "MLflow's tracking REST API (the subset its clients use) plus fusionprot's checkpoints, datasets and SQL. Differences from MLflow are listed in ARCHITECTURE.md."
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error_code", "message"],
                    "properties": { "error_code": { "type": "string" }, "message": { "type": "string" } }
                }
            },
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } }
        },
        "security": [{ "bearer": [] }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described() {
        let doc = document();
        for (method, path) in ROUTES {
            let p = path.replace("{*path}", "{path}");
            let op = &doc["paths"][&p][method.to_ascii_lowercase()];
            assert!(op.is_object(), "{method} {path} missing");
            assert!(
                !op["summary"].as_str().unwrap_or_default().is_empty(),
                "{method} {path} has no summary"
            );
        }
    }
}
