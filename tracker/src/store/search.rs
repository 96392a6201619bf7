//! Searching experiments and runs with MLflow's filter grammar and ordering (`crate::filter`
//! builds the SQL; every key and value is bound).

use sqlx::Row;

use super::runs::info_from_row;
use super::{Store, check_max_results, page_token, parse_experiment_id, parse_page_token};
use crate::error::TrackerError;
use crate::filter::{self, Bind, Target};
use crate::model::{Experiment, Run, RunInfo, RunOutputs};

pub(crate) type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// A query over runs in parts (see [`Store::run_query`]).
pub(crate) struct RunQuery {
    pub joins: Vec<String>,
    pub join_binds: Vec<Bind>,
    pub conds: Vec<String>,
    pub binds: Vec<Bind>,
    pub terms: Vec<String>,
}

pub(crate) fn bind_all(mut q: Query<'_>, binds: Vec<Bind>) -> Query<'_> {
    for b in binds {
        q = match b {
            Bind::Num(n) => q.bind(n),
            Bind::Int(i) => q.bind(i),
            Bind::Str(s) => q.bind(s),
        };
    }
    q
}

impl Store {
    pub async fn search_experiments(
        &self,
        view_type: Option<&str>,
        max_results: Option<i64>,
        filter: Option<&str>,
        order_by: &[String],
        token: Option<&str>,
    ) -> Result<(Vec<Experiment>, Option<String>), TrackerError> {
        let max = check_max_results(max_results, 1000)?;
        let offset = parse_page_token(token)?;
        let mut binds = Vec::new();
        let mut conds = vec![lifecycle_cond("e", view_type)?];
        conds.extend(filter::to_sql(
            self.dialect,
            &filter::parse(filter.unwrap_or(""))?,
            Target::Experiments,
            &mut binds,
            false,
        )?);
        let order = filter::order_sql(self.dialect, order_by, Target::Experiments)?;
        let mut terms = order.terms;
        terms.push("e.creation_time DESC".into());
        terms.push("e.experiment_id ASC".into());
        let sql = format!(
            "SELECT e.experiment_id FROM experiments e WHERE {} ORDER BY {} LIMIT {} OFFSET {}",
            conds.join(" AND "),
            terms.join(", "),
            max + 1,
            offset
        );
        let ids: Vec<i64> = bind_all(self.query(&sql), binds)
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()?;
        let next = (ids.len() as i64 > max).then(|| page_token(offset + max));
        let mut out = Vec::new();
        for id in ids.into_iter().take(max as usize) {
            out.push(self.get_experiment(&id.to_string()).await?);
        }
        Ok((out, next))
    }

    /// The parts of a query over runs: the experiments, lifecycle and filter conditions (with
    /// their binds) and the order (LEFT JOINs with their binds, then terms, ending with the
    /// default start_time DESC, run_uuid).
    ///
    /// # Errors
    /// A malformed experiment id, view type, filter or order.
    pub(crate) fn run_query(
        &self,
        experiment_ids: &[String],
        filter: Option<&str>,
        view_type: Option<&str>,
        order_by: &[String],
        or_allowed: bool,
    ) -> Result<RunQuery, TrackerError> {
        let mut binds = Vec::new();
        let ids = experiment_ids
            .iter()
            .map(|e| parse_experiment_id(e).map(Bind::Int))
            .collect::<Result<Vec<_>, _>>()?;
        let mut conds = vec![format!(
            "r.experiment_id IN ({})",
            vec!["?"; ids.len()].join(",")
        )];
        binds.extend(ids);
        conds.push(lifecycle_cond("r", view_type)?);
        let order = filter::order_sql(self.dialect, order_by, Target::Runs)?;
        if or_allowed {
            // the dashboard's grammar: AND, OR and parentheses
            if let Some(e) = filter::parse_expr(filter.unwrap_or(""))? {
                conds.push(filter::expr_sql(
                    self.dialect,
                    &e,
                    Target::Runs,
                    &mut binds,
                    !order.joins.is_empty(),
                )?);
            }
        } else {
            conds.extend(filter::to_sql(
                self.dialect,
                &filter::parse(filter.unwrap_or(""))?,
                Target::Runs,
                &mut binds,
                !order.joins.is_empty(),
            )?);
        }
        let mut terms = order.terms;
        terms.push("r.start_time DESC".into());
        terms.push("r.run_uuid ASC".into());
        Ok(RunQuery {
            joins: order.joins,
            join_binds: order.join_binds,
            conds,
            binds,
            terms,
        })
    }

    pub async fn search_runs(
        &self,
        experiment_ids: &[String],
        filter: Option<&str>,
        view_type: Option<&str>,
        max_results: Option<i64>,
        order_by: &[String],
        token: Option<&str>,
    ) -> Result<(Vec<Run>, Option<String>), TrackerError> {
        let max = check_max_results(max_results, 1000)?;
        let offset = parse_page_token(token)?;
        if experiment_ids.is_empty() {
            return Ok((Vec::new(), None));
        }
        let q = self.run_query(experiment_ids, filter, view_type, order_by, false)?;
        let sql = format!(
            "SELECT r.* FROM runs r {} WHERE {} ORDER BY {} LIMIT {} OFFSET {}",
            q.joins.join(" "),
            q.conds.join(" AND "),
            q.terms.join(", "),
            max + 1,
            offset
        );
        let mut binds = q.join_binds;
        binds.extend(q.binds);
        let rows = bind_all(self.query(&sql), binds)
            .fetch_all(&self.read)
            .await?;
        let next = (rows.len() as i64 > max).then(|| page_token(offset + max));
        let infos: Vec<RunInfo> = rows
            .iter()
            .take(max as usize)
            .map(info_from_row)
            .collect::<Result<_, _>>()?;
        let ids: Vec<String> = infos.iter().map(|i| i.run_id.clone()).collect();
        let data = self.run_data(&ids).await?;
        let inputs = self.run_inputs(&ids).await?;
        let runs = infos
            .into_iter()
            .zip(data)
            .zip(inputs)
            .map(|((info, (_, data)), inputs)| Run {
                info,
                data,
                inputs,
                outputs: RunOutputs::default(),
            })
            .collect();
        Ok((runs, next))
    }
}

fn lifecycle_cond(alias: &str, view_type: Option<&str>) -> Result<String, TrackerError> {
    Ok(match view_type.unwrap_or("ACTIVE_ONLY") {
        "ACTIVE_ONLY" | "" => format!("{alias}.lifecycle_stage = 'active'"),
        "DELETED_ONLY" => format!("{alias}.lifecycle_stage = 'deleted'"),
        "ALL" => "1 = 1".to_owned(),
        other => {
            return Err(TrackerError::invalid(format!(
                "view type must be ACTIVE_ONLY, DELETED_ONLY or ALL, got {other:?}"
            )));
        }
    })
}
