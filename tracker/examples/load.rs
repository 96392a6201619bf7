//! A light load generator for an MLflow-compatible tracking server (the workload of
//! bench/tracker_bench.py, FastTrackML's load test), so that client overhead does not hide the
//! server's own latency on a small machine.
//!
//! usage: load URL USERS ITERATIONS   → per-endpoint mean and p99 in ms, and failures

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

type Stats = Arc<Mutex<BTreeMap<&'static str, (Vec<f64>, usize)>>>;

fn call(
    agent: &ureq::Agent,
    stats: &Stats,
    name: &'static str,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> Option<Value> {
    let t = Instant::now();
    let req = agent.request(method, url);
    let result = match body {
        Some(b) => req
            .set("Content-Type", "application/json")
            .send_string(&b.to_string()),
        None => req.call(),
    };
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let value = result.ok().and_then(|r| r.into_json::<Value>().ok());
    if let Ok(mut s) = stats.lock() {
        let e = s.entry(name).or_default();
        e.0.push(ms);
        if value.is_none() {
            e.1 += 1;
        }
    }
    value
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (base, users, iterations) = match args.as_slice() {
        [_, u, n, i] => (
            u.trim_end_matches('/').to_owned(),
            n.parse().unwrap_or(20),
            i.parse().unwrap_or(100),
        ),
        _ => {
            eprintln!("usage: load URL USERS ITERATIONS");
            std::process::exit(2);
        }
    };
    let stats: Stats = Arc::default();
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(120))
        .build();
    let name = format!("rust-load-{}", std::process::id());
    let exp = call(
        &agent,
        &stats,
        "setup",
        "POST",
        &format!("{base}/api/2.0/mlflow/experiments/create"),
        Some(&json!({ "name": name })),
    )
    .and_then(|v| v["experiment_id"].as_str().map(str::to_owned))
    .unwrap_or_else(|| "0".into());
    let started = Instant::now();
    let threads: Vec<_> = (0..users)
        .map(|_| {
            let (agent, stats, base, exp) = (agent.clone(), stats.clone(), base.clone(), exp.clone());
            std::thread::spawn(move || {
                let m = format!("{base}/api/2.0/mlflow");
                for _ in 0..iterations {
                    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
                    let Some(run) = call(&agent, &stats, "create-run", "POST", &format!("{m}/runs/create"), Some(&json!({ "experiment_id": exp, "start_time": now }))) else { continue };
                    let rid = run["run"]["info"]["run_id"].as_str().unwrap_or_default().to_owned();
                    let m10: Vec<Value> = (0..10).map(|k| json!({ "key": format!("m{k}"), "value": k as f64 * 0.5, "timestamp": now, "step": 0 })).collect();
                    call(&agent, &stats, "log-batch-10", "POST", &format!("{m}/runs/log-batch"), Some(&json!({ "run_id": rid, "metrics": m10 })));
                    let m500: Vec<Value> = (0..500).map(|k| json!({ "key": format!("m{}", k % 10), "value": k as f64 * 0.1, "timestamp": now, "step": k })).collect();
                    call(&agent, &stats, "log-batch-500", "POST", &format!("{m}/runs/log-batch"), Some(&json!({ "run_id": rid, "metrics": m500 })));
                    let params: Vec<Value> = (0..10).map(|k| json!({ "key": format!("p{k}"), "value": k.to_string() })).collect();
                    call(&agent, &stats, "log-batch-params", "POST", &format!("{m}/runs/log-batch"), Some(&json!({ "run_id": rid, "params": params })));
                    call(&agent, &stats, "search-runs", "POST", &format!("{m}/runs/search"), Some(&json!({ "experiment_ids": [exp], "filter": "metrics.m1 > 0", "max_results": 10, "order_by": ["attributes.start_time DESC"] })));
                    call(&agent, &stats, "search-experiments", "POST", &format!("{m}/experiments/search"), Some(&json!({ "max_results": 10 })));
                    call(&agent, &stats, "get-history", "GET", &format!("{m}/metrics/get-history?run_id={rid}&metric_key=m1"), None);
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let wall = started.elapsed().as_secs_f64();
    println!(
        "{:<20} {:>8} {:>10} {:>10} {:>9}",
        "endpoint", "n", "mean ms", "p99 ms", "failed"
    );
    if let Ok(s) = stats.lock() {
        for (name, (mut v, failed)) in s.clone() {
            if name == "setup" {
                continue;
            }
            v.sort_by(f64::total_cmp);
            let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
            let p99 = v
                .get(((v.len() as f64 * 0.99) as usize).min(v.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0.0);
            println!(
                "{name:<20} {:>8} {mean:>10.2} {p99:>10.2} {failed:>9}",
                v.len()
            );
        }
    }
    println!("{users} users × {iterations} iterations in {wall:.1} s");
}
