//! Real processes on c10d's Gloo: each test re-runs this test binary as 2 (or 3) ranks through
//! the same spawner `fusionprot --world-size` uses, and the ranks check what they received.
//! Tolerances: sums in another order (float32, 1e-5 relative).

use std::ffi::OsString;
use std::time::{Duration, Instant};

use fusionprot_dist::{BUCKET_BYTES, Backend, Group, Launch, spawn::run_local_ranks};
use tch::{Kind, Tensor};

/// In the parent: runs `test` as `n` ranks. In a rank: None (the caller does the rank's work).
fn ranks(test: &str, n: usize) -> Option<Result<(), fusionprot_dist::DistError>> {
    if std::env::var("FUSIONPROT_LAUNCHER").as_deref() == Ok("spawn") {
        return None;
    }
    let exe = std::env::current_exe().expect("test binary");
    let args: Vec<OsString> = ["--exact", test, "--nocapture", "--test-threads", "1"]
        .iter()
        .map(OsString::from)
        .collect();
    let no_signal = std::sync::atomic::AtomicUsize::new(0);
    Some(run_local_ranks(&exe, &args, n, Duration::from_secs(60), &no_signal).map(|_| ()))
}

fn join(timeout: Duration) -> Group {
    let launch = Launch::from_env().expect("launch");
    assert!(launch.is_distributed());
    Group::connect(&launch, Backend::Gloo, timeout).expect("connect")
}

fn close(a: &Tensor, b: &Tensor, what: &str) {
    let scale = b.abs().max().double_value(&[]).max(1.0);
    let diff = (a - b).abs().max().double_value(&[]);
    assert!(
        diff <= 1e-5 * scale,
        "{what}: max difference {diff} (scale {scale})\n{a}\n{b}"
    );
}

#[test]
fn collectives_between_three_ranks() {
    if let Some(r) = ranks("collectives_between_three_ranks", 3) {
        return r.expect("every rank passes");
    }
    let g = join(Duration::from_secs(30));
    let r = g.rank() as f64;
    let w = g.world_size() as f64;
    let t = Tensor::from_slice(&[1.0f32, 2.0]) * (r + 1.0);
    g.all_reduce_sum(&[&t]).expect("collective");
    close(&t, &(Tensor::from_slice(&[1.0f32, 2.0]) * 6.0), "sum");
    let m = Tensor::from_slice(&[r as f32]);
    g.all_reduce_mean(&[&m]).expect("collective");
    close(
        &m,
        &Tensor::from_slice(&[((w - 1.0) / 2.0) as f32]),
        "mean (not the sum)",
    );
    let b = Tensor::from_slice(&[r as f32 + 10.0, -1.0]);
    g.broadcast(&[&b], 2).expect("collective");
    close(
        &b,
        &Tensor::from_slice(&[12.0f32, -1.0]),
        "broadcast from rank 2",
    );
    assert!(g.broadcast(&[&b], 3).is_err());
    let all = g
        .all_gather(&Tensor::from_slice(&[r as i64, 7]))
        .expect("collective");
    let got: Vec<Vec<i64>> = all
        .iter()
        .map(|t| Vec::<i64>::try_from(t).expect("collective"))
        .collect();
    assert_eq!(got, [[0, 7], [1, 7], [2, 7]]);
    // Different row counts per rank (a rank's share of a test set).
    let rows = Tensor::ones([g.rank() as i64 + 1, 2], (Kind::Float, tch::Device::Cpu)) * r;
    let all = g.all_gather_rows(&rows).expect("collective");
    let sizes: Vec<Vec<i64>> = all.iter().map(Tensor::size).collect();
    assert_eq!(sizes, [vec![1, 2], vec![2, 2], vec![3, 2]]);
    close(
        &all[2],
        &(Tensor::ones([3, 2], (Kind::Float, tch::Device::Cpu)) * 2.0),
        "rows",
    );
    g.barrier().expect("collective");
    let n = g.store_add("stop", 1).expect("collective");
    assert!((1..=3).contains(&n));
}

#[test]
fn gradients_are_averaged_in_buckets_and_unused_parameters_follow_ddp() {
    if let Some(r) = ranks(
        "gradients_are_averaged_in_buckets_and_unused_parameters_follow_ddp",
        2,
    ) {
        return r.expect("every rank passes");
    }
    let g = join(Duration::from_secs(30));
    let r = g.rank() as f64;
    let opts = (Kind::Float, tch::Device::Cpu);
    let a = Tensor::zeros([3], opts).set_requires_grad(true);
    let b = Tensor::zeros([2, 2], opts).set_requires_grad(true);
    let c = Tensor::zeros([2], opts).set_requires_grad(true); // only rank 0 uses it
    let d = Tensor::zeros([1], opts).set_requires_grad(true); // no rank uses it
    let mut loss = (&a * Tensor::from_slice(&[1.0f32, 2.0, 3.0]) * (r + 1.0)).sum(Kind::Float)
        + (&b * (10.0 * (r + 1.0))).sum(Kind::Float);
    if g.rank() == 0 {
        loss += (&c * 4.0).sum(Kind::Float);
    }
    loss.backward();
    // A 16-byte bucket: a (12 B) alone, then b, then c: several all-reduces.
    let params = [
        a.shallow_clone(),
        b.shallow_clone(),
        c.shallow_clone(),
        d.shallow_clone(),
    ];
    let bytes = g.average_gradients(&params, 16).expect("collective");
    assert_eq!(bytes, (3 + 4 + 2) * 4);
    close(
        &a.grad(),
        &Tensor::from_slice(&[1.5f32, 3.0, 4.5]),
        "a: mean of 1× and 2×",
    );
    close(&b.grad(), &(Tensor::ones([2, 2], opts) * 15.0), "b");
    close(
        &c.grad(),
        &(Tensor::ones([2], opts) * 2.0),
        "c: used by rank 0 only, averaged over 2",
    );
    assert!(
        !d.grad().defined(),
        "a parameter no rank used keeps no gradient"
    );
    // The default bucket holds everything in one all-reduce and gives the same averages.
    let bytes = g
        .average_gradients(&params[..2], BUCKET_BYTES)
        .expect("collective");
    assert_eq!(bytes, 7 * 4);
    close(
        &a.grad(),
        &Tensor::from_slice(&[1.5f32, 3.0, 4.5]),
        "already equal: stays",
    );
}

#[test]
fn sync_batch_norm_over_two_ranks_equals_batch_norm_over_the_whole_batch() {
    if let Some(r) = ranks(
        "sync_batch_norm_over_two_ranks_equals_batch_norm_over_the_whole_batch",
        2,
    ) {
        return r.expect("every rank passes");
    }
    let g = join(Duration::from_secs(30));
    let opts = (Kind::Float, tch::Device::Cpu);
    tch::manual_seed(7);
    // 8 rows, split 3 | 5: unequal shares, as proteins of different lengths give.
    let x_all = Tensor::randn([8, 4], opts) * 3.0 + 1.0;
    let upstream = Tensor::randn([8, 4], opts);
    let weight0 = Tensor::randn([4], opts);
    let bias0 = Tensor::randn([4], opts);
    let (start, len) = if g.rank() == 0 { (0, 3) } else { (3, 5) };

    // One process, the whole batch.
    let x1 = x_all.copy().set_requires_grad(true);
    let w1 = weight0.copy().set_requires_grad(true);
    let b1 = bias0.copy().set_requires_grad(true);
    let (rm1, rv1) = (Tensor::zeros([4], opts), Tensor::ones([4], opts));
    let y1 = Tensor::batch_norm(
        &x1,
        Some(&w1),
        Some(&b1),
        Some(&rm1),
        Some(&rv1),
        true,
        0.1,
        1e-5,
        false,
    );
    (&y1 * &upstream).sum(Kind::Float).backward();

    // This rank's share.
    let x = x_all.narrow(0, start, len).copy().set_requires_grad(true);
    let w = weight0.copy().set_requires_grad(true);
    let b = bias0.copy().set_requires_grad(true);
    let (rm, rv) = (Tensor::zeros([4], opts), Tensor::ones([4], opts));
    let y = g
        .sync_batch_norm(&x, &w, &b, &rm, &rv, 0.1, 1e-5)
        .expect("collective");
    (&y * upstream.narrow(0, start, len))
        .sum(Kind::Float)
        .backward();

    close(&y, &y1.narrow(0, start, len), "output");
    close(
        &x.grad(),
        &x1.grad().narrow(0, start, len),
        "input gradient (needs the backward all-reduce)",
    );
    close(&rm, &rm1, "running mean");
    close(
        &rv,
        &rv1,
        "running variance (unbiased over the global batch)",
    );
    // Weight and bias gradients stay local; their sum over ranks is the whole batch's.
    let (gw, gb) = (w.grad(), b.grad());
    g.all_reduce_sum(&[&gw, &gb]).expect("collective");
    close(&gw, &w1.grad(), "weight gradient");
    close(&gb, &b1.grad(), "bias gradient");
}

#[test]
fn a_rank_that_dies_ends_the_job_with_its_name_and_no_hang() {
    let started = Instant::now();
    if let Some(r) = ranks("a_rank_that_dies_ends_the_job_with_its_name_and_no_hang", 2) {
        let e = r.expect_err("rank 1 dies").to_string();
        assert!(e.contains("rank 1 of 2 exited with status 3"), "{e}");
        // Rank 0 ends on its own (its all-reduce fails), well before the 60 s kill.
        assert!(
            started.elapsed() < Duration::from_secs(45),
            "took {:?}",
            started.elapsed()
        );
        return;
    }
    let g = join(Duration::from_secs(20));
    if g.rank() == 1 {
        std::process::exit(3);
    }
    let t = Tensor::ones([4], (Kind::Float, tch::Device::Cpu));
    let e = g
        .all_reduce_sum(&[&t])
        .expect_err("the peer is gone")
        .to_string();
    assert!(
        e.contains("rank 0 of 2") && e.contains("all-reduce failed"),
        "{e}"
    );
}
