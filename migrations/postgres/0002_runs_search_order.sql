-- PostgreSQL twin of ../0002_runs_search_order.sql (identical statements).
-- 0002: search-runs walks an experiment's runs in its default order (start_time DESC, then
-- run_uuid) through one index and stops after a page, instead of sorting every run of the
-- experiment. Replaces runs_by_experiment (same leading columns).
CREATE INDEX runs_by_experiment_order ON runs (experiment_id, lifecycle_stage, start_time DESC, run_uuid);
DROP INDEX runs_by_experiment;
