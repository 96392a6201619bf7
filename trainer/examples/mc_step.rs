//! One Multiview Contrast optimizer step, timed, for `bench/pretrain` (the PyTorch peer runs the
//! same steps on the same views: bench/pretrain_bench.py):
//!
//!     mc_step DATASET MODEL_CONFIG MICRO_BATCH STEPS THREADS DEVICE VIEWS_OUT
//!
//! The model (random init, seed 0) and its projection head, the optimizer `fusionprot pretrain`
//! builds (ESM-2 frozen, Adam over the rest), and `Trainer::step` — the loop's own step — on
//! STEPS micro-batches of MICRO_BATCH proteins (epoch 0's shuffled order, then epoch 1's, …), the
//! graphs read beforehand; each step's two views are drawn as a run draws them and written to
//! VIEWS_OUT (safetensors: `S.proteins`, indices into the dataset's proteins sorted by id, and
//! `S.V.{start,len,count,masked}` for view V of step S) for the peer. Then the data path alone:
//! one epoch through the graph store and its background loader (window 64), both views of every
//! protein drawn and cut, no model. Prints one JSON line.

use std::path::PathBuf;
use std::time::Instant;

use fusionprot_trainer::store::Prefetcher;
use fusionprot_trainer::train::contrast::{Given, MultiviewContrast};
use fusionprot_trainer::train::pretrain::optimizer;
use fusionprot_trainer::train::pretrain_config::PretrainOptim;
use fusionprot_trainer::train::pretrain_data::{Order, Proteins};
use fusionprot_trainer::train::task::MultiLabelHead;
use fusionprot_trainer::train::views::{ViewRule, ViewSpec, apply, draw_views};
use fusionprot_trainer::train::{Draw, Example, MicroBatch, Trainer};
use fusionprot_trainer::weights::load::{ModelSpec, build};
use fusionprot_trainer::{Device, ModelKind};
use tch::Tensor;

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let [_, dataset, config, micro, steps, threads, device, views_out] = a.as_slice() else {
        return Err(
            "usage: mc_step DATASET MODEL_CONFIG MICRO_BATCH STEPS THREADS DEVICE VIEWS_OUT".into(),
        );
    };
    let (micro, steps): (usize, usize) = (micro.parse()?, steps.parse()?);
    tch::set_num_threads(threads.parse()?);
    let device = match device.as_str() {
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        other => return Err(format!("device {other}: cpu or cuda").into()),
    };
    let proteins = Proteins::open(&[PathBuf::from(dataset)], Order::Shuffled)?;
    let rule = ViewRule {
        crop: 50,
        edge_mask_rate: 0.15,
        edge_mask: true,
    };

    // The steps' micro-batches, graphs read first.
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut epoch = 0;
    while batches.len() < steps {
        batches.extend(
            proteins
                .epoch_batches(epoch, micro)
                .into_iter()
                .filter(|b| b.len() == micro),
        );
        epoch += 1;
    }
    batches.truncate(steps);
    let graphs: Vec<_> = batches
        .iter()
        .map(|b| proteins.graphs(b))
        .collect::<Result<_, _>>()?;
    let draws: Vec<Draw> = (0..steps)
        .map(|s| Draw {
            seed: 0,
            epoch: 0,
            step: s as i64 + 1,
            micro: 0,
        })
        .collect();
    let views: Vec<[Vec<ViewSpec>; 2]> = graphs
        .iter()
        .zip(&draws)
        .map(|(g, d)| [draw_views(g, *d, 0, &rule), draw_views(g, *d, 1, &rule)])
        .collect();
    let mut named: Vec<(String, Tensor)> = Vec::new();
    for (s, (b, v)) in batches.iter().zip(&views).enumerate() {
        named.push((
            format!("{s}.proteins"),
            Tensor::from_slice(&b.iter().map(|&i| i as i64).collect::<Vec<_>>()),
        ));
        for (k, specs) in v.iter().enumerate() {
            let col = |f: &dyn Fn(&ViewSpec) -> i64| {
                Tensor::from_slice(&specs.iter().map(f).collect::<Vec<i64>>())
            };
            named.push((format!("{s}.{k}.start"), col(&|x| x.start as i64)));
            named.push((format!("{s}.{k}.len"), col(&|x| x.len as i64)));
            named.push((format!("{s}.{k}.count"), col(&|x| x.masked.len() as i64)));
            let mut masked: Vec<i64> = specs
                .iter()
                .flat_map(|x| x.masked.iter().map(|&m| m as i64))
                .collect();
            if masked.is_empty() {
                masked.push(-1);
            }
            named.push((format!("{s}.{k}.masked"), Tensor::from_slice(&masked)));
        }
    }
    Tensor::write_safetensors(&named, views_out)?;
    let crop: f64 = views
        .iter()
        .flat_map(|v| v.iter().flatten())
        .map(|x| x.len as f64)
        .sum::<f64>()
        / (2 * steps * micro) as f64;

    tch::manual_seed(0);
    let model = build(&ModelSpec {
        kind: ModelKind::Fusionprot,
        config: Some(PathBuf::from(config)),
        checkpoint: None,
        esm: None,
        random_init: true,
        device,
        seed: 0,
    })?
    .model;
    let dim = model.output_dim();
    let mut objective = MultiviewContrast {
        head: MultiLabelHead::new(&model.vs.root(), dim, dim, 2),
        proteins: Proteins::none(),
        rule,
        tau: 0.07,
        device,
        given: views.into_iter().map(Given::Windows).collect(),
        probe: Vec::new(),
        seed: 0,
    };
    let optim = PretrainOptim::default();
    let opt = optimizer(&model, &optim, false)?;
    let trainable: i64 = model
        .vs
        .trainable_variables()
        .iter()
        .filter(|t| t.requires_grad())
        .map(Tensor::numel)
        .map(|n| n as i64)
        .sum();
    let mut trainer = Trainer {
        model: &model,
        opt,
        scaler: None,
        lr: optim.lr,
        micro_batch: micro,
        dist: None,
        comm: Default::default(),
    };
    let mut times = Vec::with_capacity(steps);
    for (g, d) in graphs.iter().zip(&draws) {
        let rows: Vec<Example> = g
            .iter()
            .map(|p| Example::Protein { id: p.id.clone() })
            .collect();
        let refs: Vec<&Example> = rows.iter().collect();
        sync(device);
        let t = Instant::now();
        trainer.step(
            &mut objective,
            &[MicroBatch {
                rows: &refs,
                graphs: g,
            }],
            &[*d],
        )?;
        sync(device);
        times.push(t.elapsed().as_secs_f64());
    }

    // The data path alone: one epoch through the store and the loader, views drawn and cut.
    let epoch0 = proteins.epoch_batches(0, micro);
    let ids: Vec<Vec<String>> = epoch0
        .iter()
        .map(|b| {
            b.iter()
                .map(|&i| proteins.examples[i].proteins()[0].to_owned())
                .collect()
        })
        .collect();
    let t = Instant::now();
    let (mut read, mut rounds) = (0usize, 0usize);
    while rounds == 0 || t.elapsed().as_secs_f64() < 2.0 {
        let mut loader = Prefetcher::start(proteins.source.clone(), ids.clone(), 64, 2);
        for (k, _) in ids.iter().enumerate() {
            let g = loader.next_batch()?;
            let d = Draw {
                seed: 0,
                epoch: rounds,
                step: k as i64,
                micro: 0,
            };
            for which in 0..2 {
                for (p, v) in g.iter().zip(draw_views(&g, d, which, &rule)) {
                    std::hint::black_box(apply(p, &v)?);
                }
            }
            read += g.len();
        }
        rounds += 1;
    }
    let data_rate = read as f64 / t.elapsed().as_secs_f64();
    let n = times.len();
    println!(
        "{}",
        serde_json::json!({
            "seconds": times[1..].iter().sum::<f64>() / (n - 1).max(1) as f64,
            "seconds_all": times.iter().sum::<f64>() / n as f64,
            "first": times[0],
            "steps": n,
            "trainable_parameters": trainable,
            "mean_crop": crop,
            "data_proteins_per_second": data_rate,
            "proteins": proteins.examples.len(),
        })
    );
    Ok(())
}
