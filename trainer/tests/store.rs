//! The graph store reads any protein of a dataset at random, in any order and any grouping,
//! exactly as the sequential reader does, however the tables are cut into parts, row groups and
//! pages (proteins crossing row-group boundaries included); the prefetcher hands back micro-batches
//! in the order asked; ids outside the store and proteins without residues are named.

mod common;

use std::collections::HashSet;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use fusionprot_pipeline::dataset::read::read_table;
use fusionprot_pipeline::dataset::schema::{SCHEMA_KEY, Table};
use fusionprot_trainer::ProteinGraph;
use fusionprot_trainer::data::DatasetGraphs;
use fusionprot_trainer::store::{GraphStore, Prefetcher};
use fusionprot_trainer::train::epoch_order;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

/// Rewrites `table` as two parts with tiny row groups and pages (cut mid-protein), as a much
/// larger dataset would be laid out.
fn recut(dataset: &Path, table: Table, group_rows: usize) {
    let batches: Vec<RecordBatch> = read_table(dataset, table).expect("read");
    let dir = dataset.join(table.name());
    for e in std::fs::read_dir(&dir).expect("dir") {
        std::fs::remove_file(e.expect("e").path()).expect("rm");
    }
    // Two parts, cut at a protein boundary (a protein never spans parts, as the writer does).
    let ids: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            let a = b
                .column(0)
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .expect("ids");
            (0..a.len())
                .map(|i| a.value(i).to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut cut = ids.len() / 2;
    while cut < ids.len() && ids[cut] == ids[cut - 1] {
        cut += 1;
    }
    let writer = |k: usize| {
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(group_rows))
            .set_data_page_row_count_limit(group_rows / 7 + 1)
            .set_write_batch_size(group_rows / 7 + 1)
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_key_value_metadata(Some(vec![KeyValue::new(
                SCHEMA_KEY.to_owned(),
                table.schema_tag(),
            )]))
            .build();
        let f = File::create(dir.join(format!("part-{k:05}.parquet"))).expect("create");
        ArrowWriter::try_new(f, table.arrow_schema(), Some(props)).expect("writer")
    };
    let mut w = [writer(0), writer(1)];
    let mut at = 0;
    for b in &batches {
        let n = b.num_rows();
        let first = cut.saturating_sub(at).min(n);
        if first > 0 {
            w[0].write(&b.slice(0, first)).expect("write");
        }
        if first < n {
            w[1].write(&b.slice(first, n - first)).expect("write");
        }
        at += n;
    }
    for w in w {
        w.close().expect("close");
    }
}

#[test]
fn random_access_equals_the_sequential_reader_on_any_layout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = dir.path().join("ds");
    common::graphs::prepare_sample(&ds);
    let want: Vec<ProteinGraph> = DatasetGraphs::open(&ds)
        .expect("open")
        .collect::<Result<_, _>>()
        .expect("graphs");
    assert!(want.len() >= 10, "{} proteins", want.len());
    recut(&ds, Table::Residues, 997);
    recut(&ds, Table::Edges, 4099);
    let ids: HashSet<String> = want.iter().map(|g| g.id.clone()).collect();
    let store = Arc::new(GraphStore::open(&ds, &ids).expect("store"));
    for g in &want {
        assert_eq!(store.residue_count(&g.id), Some(g.len()), "{}", g.id);
    }
    // Every protein, in the reference's shuffled order, in windows of 1, 3 and all.
    let order = epoch_order(want.len(), 3, 1, 0);
    for window in [1, 3, want.len()] {
        for chunk in order.chunks(window) {
            let asked: Vec<&str> = chunk.iter().map(|&i| want[i].id.as_str()).collect();
            let got = store.load(&asked).expect("load");
            for &i in chunk {
                assert_eq!(got[&want[i].id], want[i], "window {window}");
            }
        }
    }
    // The prefetcher: micro-batches in order, an id repeated (an MSP wild type), small windows.
    let batches: Vec<Vec<String>> = order
        .chunks(2)
        .map(|c| {
            let mut b: Vec<String> = c.iter().map(|&i| want[i].id.clone()).collect();
            b.push(want[0].id.clone());
            b
        })
        .collect();
    let mut p = Prefetcher::start(Arc::clone(&store), batches.clone(), 5, 1);
    for b in &batches {
        let got = p.next_batch().expect("batch");
        let got_ids: Vec<&str> = got.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(got_ids, b.iter().map(String::as_str).collect::<Vec<_>>());
        for g in got {
            assert!(want.contains(&g));
        }
    }
    // Dropped half-way, the loader thread stops (the test would hang otherwise).
    let mut p = Prefetcher::start(Arc::clone(&store), batches.clone(), 1, 1);
    p.next_batch().expect("first");
    drop(p);
}

#[test]
fn unknown_and_missing_proteins_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = dir.path().join("ds");
    common::graphs::prepare_sample(&ds);
    let first = DatasetGraphs::open(&ds)
        .expect("open")
        .next()
        .expect("one")
        .expect("graph");
    let only: HashSet<String> = [first.id.clone()].into();
    let store = GraphStore::open(&ds, &only).expect("store");
    let e = store.load(&["NOT-THERE"]).expect_err("unknown").to_string();
    assert!(e.contains("NOT-THERE"), "{e}");
    let missing: HashSet<String> = [first.id.clone(), "ZZZZ-Q".to_owned()].into();
    let e = GraphStore::open(&ds, &missing)
        .expect_err("missing")
        .to_string();
    assert!(e.contains("ZZZZ-Q") && e.contains("no residues"), "{e}");
    // An error reading a window reaches the consumer, not a hang or a panic.
    let store = Arc::new(GraphStore::open(&ds, &only).expect("store"));
    let mut p = Prefetcher::start(store, vec![vec!["NOT-THERE".to_owned()]], 4, 1);
    let e = p.next_batch().expect_err("error").to_string();
    assert!(e.contains("NOT-THERE"), "{e}");
}
