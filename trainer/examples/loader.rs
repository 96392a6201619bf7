//! One training epoch's worth of graph reading, without a model, for `bench/loader`:
//!
//!     loader stream DATASET [PREFETCH]   the trainer's way: the task's train proteins through the
//!                                        graph store and its background loader, in the reference's
//!                                        shuffled order, micro-batches of 2
//!     loader memory DATASET              the old way: every graph of the dataset read into memory
//!     loader none DATASET                nothing read: the process's baseline (libtorch loaded)
//!
//! Prints one JSON line: proteins, residues, edges, seconds.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use fusionprot_trainer::data::DatasetGraphs;
use fusionprot_trainer::store::{GraphStore, Prefetcher};
use fusionprot_trainer::train::{epoch_order, load_task};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (mode, dataset) = match args.as_slice() {
        [_, mode, dataset, ..] => (mode.as_str(), PathBuf::from(dataset)),
        _ => return Err("usage: loader stream|memory|none DATASET [PREFETCH]".into()),
    };
    let t0 = Instant::now();
    let (mut proteins, mut residues, mut edges) = (0usize, 0usize, 0usize);
    match mode {
        "stream" => {
            let prefetch: usize = args.get(3).map_or(Ok(64), |p| p.parse())?;
            let data = load_task(&dataset, "ec", "official")?;
            let train: Vec<String> = data.parts["train"]
                .iter()
                .map(|e| e.id().to_owned())
                .collect();
            let ids: HashSet<String> = train.iter().cloned().collect();
            let store = Arc::new(GraphStore::open(&dataset, &ids)?);
            let order = epoch_order(train.len(), 0, 1, 0);
            let batches: Vec<Vec<String>> = order
                .chunks(2)
                .map(|c| c.iter().map(|&i| train[i].clone()).collect())
                .collect();
            let n = batches.len();
            let mut loader = Prefetcher::start(store, batches, prefetch, 2);
            for _ in 0..n {
                for g in loader.next_batch()? {
                    proteins += 1;
                    residues += g.len();
                    edges += g.edges.len();
                }
            }
        }
        "memory" => {
            let mut all = HashMap::new();
            for g in DatasetGraphs::open(&dataset)? {
                let g = g?;
                proteins += 1;
                residues += g.len();
                edges += g.edges.len();
                all.insert(g.id.clone(), g);
            }
            std::hint::black_box(&all);
        }
        "none" => {}
        other => return Err(format!("unknown mode {other}").into()),
    }
    println!(
        "{{\"proteins\": {proteins}, \"residues\": {residues}, \"edges\": {edges}, \"seconds\": {:.3}}}",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
