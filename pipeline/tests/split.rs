//! `split` on synthetic families with known ground truth and on real proteins: families never
//! straddle splits, chained families stay together, the reported maximum equals an exhaustive
//! exact all-pairs check, the output is deterministic, and failures write nothing.

mod common;

use std::collections::HashMap;
use std::path::Path;

use fusionprot_pipeline::protein::ProteinOptions;
use fusionprot_pipeline::split::synthetic::{FamilySpec, synthetic_families};
use fusionprot_pipeline::split::{self, SearchParams, SplitBy, SplitConfig, SplitError, align};

fn config(dataset: &Path) -> SplitConfig {
    SplitConfig {
        dataset: dataset.to_owned(),
        min_seq_id: 0.3,
        coverage: 0.8,
        cov_mode: 0,
        search: SearchParams {
            sensitivity: 7.5,
            evalue: 1.0,
            max_seqs: 1000,
            threads: 2,
        },
        fractions: [0.8, 0.1, 0.1],
        seed: 7,
        split_by: SplitBy::Sequence,
        audit_pairs: 100_000,
        remove_to_separate: false,
    }
}

fn hidden() -> indicatif::ProgressBar {
    indicatif::ProgressBar::hidden()
}

/// protein id → split name, from the written table.
fn splits(dataset: &Path) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for b in
        fusionprot_pipeline::read::read_table(dataset, fusionprot_pipeline::schema::Table::Splits)
            .expect("splits table")
    {
        let col = |n: &str| {
            b.column_by_name(n)
                .and_then(|c| {
                    c.as_any()
                        .downcast_ref::<arrow_array::StringArray>()
                        .cloned()
                })
                .expect(n)
        };
        let (ids, split) = (col("protein_id"), col("split"));
        for i in 0..b.num_rows() {
            out.insert(ids.value(i).to_owned(), split.value(i).to_owned());
        }
    }
    out
}

fn spec(families: usize) -> FamilySpec {
    FamilySpec {
        families,
        members: 3,
        length: (120, 220),
        member_identity: 0.9,
        chain_every: 5,
        chain_identity: 0.5,
        relative_every: 4,
        relative_identity: 0.3,
    }
}

#[test]
fn synthetic_families_never_straddle_splits_and_the_maximum_is_exhaustive() {
    let set = synthetic_families(&spec(24), 11);
    let dir = tempfile::tempdir().expect("tempdir");
    let records: Vec<(String, String)> = set
        .iter()
        .map(|s| (s.id.clone(), s.sequence.clone()))
        .collect();
    split::sequences_dataset(dir.path(), &records).expect("dataset");
    let mut cfg = config(dir.path());
    // Distant relatives (~28% identical) align over most, not all, of their length.
    cfg.coverage = 0.5;
    let report = split::split(&cfg, &hidden()).expect("split holds");
    assert!(
        report.audit_exhaustive,
        "a set this small is audited exhaustively"
    );
    let got = splits(dir.path());
    assert_eq!(got.len(), set.len());
    let mut group_split: HashMap<usize, &str> = HashMap::new();
    for s in &set {
        let sp = got[&s.id].as_str();
        let first = *group_split.entry(s.group).or_insert(sp);
        assert_eq!(
            first, sp,
            "group {} (family of {}) straddles splits",
            s.group, s.id
        );
    }
    assert!(report.counts.iter().all(|&c| c > 0), "{:?}", report.counts);

    // Exhaustive exact check over every cross-split pair.
    let mut best: Option<(f32, &str, &str)> = None;
    for (i, a) in set.iter().enumerate() {
        for b in &set[i + 1..] {
            if got[&a.id] == got[&b.id] {
                continue;
            }
            let p = align(a.sequence.as_bytes(), b.sequence.as_bytes());
            let covered = p.cov_a >= 0.5 && p.cov_b >= 0.5;
            assert!(!(covered && p.identity >= 0.3), "{} {} {p:?}", a.id, b.id);
            if covered && best.is_none_or(|(m, _, _)| p.identity > m) {
                best = Some((p.identity, &a.id, &b.id));
            }
        }
    }
    let (want, _, _) = best.expect("distant relatives give covered cross-split pairs");
    assert!(want > 0.1 && want < 0.3, "{want}");
    let reported = [&report.max_cross_split, &report.audit_max]
        .iter()
        .filter_map(|m| m.as_ref().map(|m| m.pair.identity))
        .fold(0.0f32, f32::max);
    assert_eq!(reported, want);
}

#[test]
fn same_inputs_and_seed_give_identical_splits_whatever_the_thread_count() {
    let set = synthetic_families(&spec(12), 3);
    let records: Vec<(String, String)> = set
        .iter()
        .map(|s| (s.id.clone(), s.sequence.clone()))
        .collect();
    let parts: Vec<Vec<u8>> = [1, 2, 2]
        .iter()
        .map(|&threads| {
            let dir = tempfile::tempdir().expect("tempdir");
            split::sequences_dataset(dir.path(), &records).expect("dataset");
            let mut cfg = config(dir.path());
            cfg.search.threads = threads;
            split::split(&cfg, &hidden()).expect("split");
            std::fs::read(dir.path().join("splits/part-00000.parquet")).expect("part")
        })
        .collect();
    assert!(
        parts[0] == parts[1],
        "splits differ between 1 and 2 threads"
    );
    assert!(parts[1] == parts[2], "splits differ between identical runs");
}

#[test]
fn one_family_too_large_for_train_fails_and_writes_nothing() {
    let set = synthetic_families(
        &FamilySpec {
            families: 1,
            members: 10,
            ..spec(1)
        },
        5,
    );
    let mut records: Vec<(String, String)> = set
        .iter()
        .map(|s| (s.id.clone(), s.sequence.clone()))
        .collect();
    records.push((
        "lonely".into(),
        "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQ".into(),
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    split::sequences_dataset(dir.path(), &records).expect("dataset");
    let before = std::fs::read(dir.path().join("manifest.json")).expect("manifest");
    let err = split::split(&config(dir.path()), &hidden()).expect_err("10 of 11 cannot fit 80%");
    assert!(
        matches!(
            err,
            SplitError::Oversized {
                size: 10,
                total: 11
            }
        ),
        "{err}"
    );
    assert!(!dir.path().join("splits").exists());
    assert_eq!(
        std::fs::read(dir.path().join("manifest.json")).expect("manifest"),
        before
    );
}

#[test]
fn remove_to_separate_drops_the_hub_of_a_star_shaped_family() {
    // A hub related to four otherwise unrelated families: together 13 of 16 proteins, more than
    // train's 80%. Dropping the hub alone separates them.
    let spec = FamilySpec {
        families: 4,
        members: 3,
        length: (150, 150),
        member_identity: 0.97,
        chain_every: 0,
        chain_identity: 0.0,
        relative_every: 0,
        relative_identity: 0.0,
    };
    let set = synthetic_families(&spec, 21);
    let mut records: Vec<(String, String)> = set
        .iter()
        .map(|s| (s.id.clone(), s.sequence.clone()))
        .collect();
    // The hub: the first 38 residues of four families' first members, concatenated (150 each):
    // its alignment with each covers a quarter of it, so it links through coverage mode 2
    // (query coverage is that of the member, fully covered).
    let hub: String = (0..4).map(|f| &records[f * 3].1[..38]).collect();
    records.push(("hub".into(), hub));
    for k in 0..3 {
        records.push((
            format!("z_free{k}"),
            synthetic_families(
                &FamilySpec {
                    families: 1,
                    members: 1,
                    ..spec.clone()
                },
                100 + k,
            )[0]
            .sequence
            .clone(),
        ));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    split::sequences_dataset(dir.path(), &records).expect("dataset");
    let mut cfg = config(dir.path());
    cfg.cov_mode = 2;
    cfg.coverage = 0.2;
    assert!(matches!(
        split::split(&cfg, &hidden()),
        Err(SplitError::Oversized { .. })
    ));
    cfg.remove_to_separate = true;
    let report = split::split(&cfg, &hidden()).expect("separable");
    assert_eq!(report.removed, ["hub"]);
    assert_eq!(splits(dir.path())["hub"], "removed");
    assert_eq!(report.counts.iter().sum::<usize>(), records.len() - 1);
}

#[test]
fn real_proteins_split_and_verify_keeping_entries_together_on_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::run(
        &[common::real_dir()],
        dir.path(),
        ProteinOptions::default(),
        2,
    );
    let mut cfg = config(dir.path());
    cfg.split_by = SplitBy::Column("entry_id".into());
    let report = split::split(&cfg, &hidden()).expect("real set splits");
    assert_eq!(report.counts.iter().sum::<usize>(), report.proteins);
    let got = splits(dir.path());
    // 3KPR holds two copies of the TCR/HLA complex; with --split-by entry_id its chains stay together.
    let kpr: Vec<&String> = got
        .iter()
        .filter(|(k, _)| k.starts_with("3KPR_"))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(kpr.len(), 10);
    assert!(kpr.iter().all(|s| *s == kpr[0]));
    let m = common::manifest(dir.path());
    assert_eq!(m["split"]["proteins"], report.proteins as u64);
    assert!(
        m["split"]["mmseqs_version"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );
    assert_eq!(
        m["counts"]["proteins"], report.proteins as u64,
        "prepare's sections are kept"
    );
}

#[test]
fn a_published_cluster_file_keeps_its_clusters_together_and_bad_rows_are_named() {
    let set = synthetic_families(&spec(10), 9);
    let records: Vec<(String, String)> = set
        .iter()
        .map(|s| (s.id.clone(), s.sequence.clone()))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    split::sequences_dataset(dir.path(), &records).expect("dataset");
    // Glue the first protein of every family into one published cluster (ids it does not know
    // are skipped, as published clusterings cover more proteins than one dataset).
    let firsts: Vec<&str> = set
        .iter()
        .filter(|s| s.id.ends_with("_m00"))
        .map(|s| s.id.as_str())
        .take(4)
        .collect();
    let mut tsv: String = firsts
        .iter()
        .map(|m| format!("{}\t{m}\n", firsts[0]))
        .collect();
    tsv.push_str("not_in_dataset\talso_not\n");
    let clusters = dir.path().join("clusters.tsv");
    std::fs::write(&clusters, &tsv).expect("write tsv");
    let mut cfg = config(dir.path());
    cfg.split_by = SplitBy::ClusterFile(clusters.clone());
    split::split(&cfg, &hidden()).expect("split");
    let got = splits(dir.path());
    assert!(
        firsts.iter().all(|f| got[*f] == got[firsts[0]]),
        "{firsts:?}"
    );

    std::fs::write(&clusters, format!("{tsv}only-one-column\n")).expect("write tsv");
    let err = split::split(&cfg, &hidden()).expect_err("bad row");
    assert!(
        err.to_string()
            .ends_with("clusters.tsv:6: expected `representative<TAB>member` protein ids"),
        "{err}"
    );
}
