//! `fusionprot embed`: a prepared dataset in, one embedding per protein (and per residue on
//! request) out, as Parquet table `embeddings/v1`:
//!
//! | column | type | |
//! |---|---|---|
//! | `protein_id` | utf8 | sorted, as in the dataset |
//! | `num_residues` | int32 | residues embedded (after truncation to `esm.max_residues`) |
//! | `embedding` | fixed_size_list<float32, D> | `graph_feature` |
//! | `residue_embedding` | list<fixed_size_list<float32, D>> | `node_feature`; only with `--per-residue` |
//!
//! Proteins are read in windows, sorted by length inside a window and batched, so padding is
//! small; rows are written back in protein_id order. The file is written under a temporary name
//! and renamed into place, with `<out>.manifest.json` beside it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder, ListBuilder};
use arrow_array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use tch::{Device, Kind, Tensor};

use crate::data::DatasetGraphs;
use crate::error::ModelError;
use crate::model::{Batch, Model, ProteinGraph};

pub const SCHEMA_TAG: &str = "embeddings/v1";

#[derive(Debug, Clone)]
pub struct EmbedOptions {
    pub dataset: PathBuf,
    pub out: PathBuf,
    pub per_residue: bool,
    /// Proteins per forward pass.
    pub batch_size: usize,
    /// Proteins read, sorted by length and batched together.
    pub window: usize,
}

#[derive(Debug, Clone)]
pub struct EmbedSummary {
    pub proteins: usize,
    pub residues: usize,
    pub truncated: usize,
    pub dim: usize,
    pub seconds: f64,
}

/// One protein's result.
struct Row {
    id: String,
    len: usize,
    graph: Vec<f32>,
    nodes: Option<Vec<f32>>,
}

/// Embeds every protein of `opts.dataset` with `model` (eval mode, no gradients) and writes
/// `opts.out`. `progress` is called with the number of proteins done so far.
///
/// # Errors
/// Unreadable dataset, libtorch failure, or an unwritable output.
pub fn embed(
    model: &Model,
    opts: &EmbedOptions,
    mut progress: impl FnMut(usize),
) -> Result<EmbedSummary, ModelError> {
    let start = Instant::now();
    let dim = model.output_dim();
    let device = model.vs.device();
    let max = model.config.esm.max_residues;
    let mut writer = OutputWriter::create(&opts.out, dim, opts.per_residue)?;
    let mut graphs = DatasetGraphs::open(&opts.dataset)?;
    let mut summary = EmbedSummary {
        proteins: 0,
        residues: 0,
        truncated: 0,
        dim,
        seconds: 0.0,
    };
    loop {
        let mut window: Vec<ProteinGraph> = Vec::with_capacity(opts.window);
        for g in graphs.by_ref().take(opts.window.max(1)) {
            let g = g?;
            if g.len() > max {
                summary.truncated += 1;
            }
            window.push(g.truncated(max));
        }
        if window.is_empty() {
            break;
        }
        let mut order: Vec<usize> = (0..window.len()).collect();
        order.sort_by_key(|&i| (window[i].len(), i));
        let mut rows: Vec<Option<Row>> = (0..window.len()).map(|_| None).collect();
        for chunk in order.chunks(opts.batch_size.max(1)) {
            let proteins: Vec<ProteinGraph> = chunk.iter().map(|&i| window[i].clone()).collect();
            let out = forward(model, &proteins, device, opts.per_residue)?;
            for (row, &i) in out.into_iter().zip(chunk) {
                rows[i] = Some(row);
            }
            summary.proteins += chunk.len();
            progress(summary.proteins);
        }
        let rows: Vec<Row> = rows.into_iter().flatten().collect();
        summary.residues += rows.iter().map(|r| r.len).sum::<usize>();
        writer.write(&rows)?;
    }
    writer.finish()?;
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}

fn forward(
    model: &Model,
    proteins: &[ProteinGraph],
    device: Device,
    per_residue: bool,
) -> Result<Vec<Row>, ModelError> {
    // tch's tensor operations panic on libtorch errors (a CUDA allocation failure, most likely
    // here); turn that into an error that names the batch instead of a crash.
    let run = std::panic::AssertUnwindSafe(|| {
        let batch = Batch::new(proteins, device);
        tch::no_grad(|| model.forward(&batch, false))
    });
    let out = std::panic::catch_unwind(run).map_err(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "unknown libtorch failure".into());
        let first = message.lines().next().unwrap_or_default().to_owned();
        ModelError::Input(format!(
            "forward pass failed on a batch of {} proteins ({} residues; first {}): {first}{}",
            proteins.len(),
            proteins.iter().map(ProteinGraph::len).sum::<usize>(),
            proteins.first().map_or("-", |p| p.id.as_str()),
            if message.contains("out of memory") {
                " (try a smaller --batch-size)"
            } else {
                ""
            }
        ))
    })?;
    let graph = to_vec(&out.graph_feature)?;
    let nodes = if per_residue {
        Some(to_vec(&out.node_feature)?)
    } else {
        None
    };
    let dim = out.graph_feature.size()[1] as usize;
    let mut offset = 0usize;
    let mut rows = Vec::with_capacity(proteins.len());
    for (b, p) in proteins.iter().enumerate() {
        let len = p.len();
        rows.push(Row {
            id: p.id.clone(),
            len,
            graph: graph[b * dim..(b + 1) * dim].to_vec(),
            nodes: nodes
                .as_ref()
                .map(|n| n[offset * dim..(offset + len) * dim].to_vec()),
        });
        offset += len;
    }
    Ok(rows)
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>, ModelError> {
    let t = t
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Float)?
        .f_contiguous()?
        .f_view([-1])?;
    Ok(Vec::<f32>::try_from(&t)?)
}

/// The Arrow schema of `embeddings/v1`.
pub fn schema(dim: usize, per_residue: bool) -> Schema {
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let vector = DataType::FixedSizeList(item, dim as i32);
    let mut fields = vec![
        Field::new("protein_id", DataType::Utf8, false),
        Field::new("num_residues", DataType::Int32, false),
        Field::new("embedding", vector.clone(), false),
    ];
    if per_residue {
        fields.push(Field::new(
            "residue_embedding",
            DataType::List(Arc::new(Field::new("item", vector, false))),
            false,
        ));
    }
    let meta = [("fusionprot.schema".to_owned(), SCHEMA_TAG.to_owned())].into();
    Schema::new(fields).with_metadata(meta)
}

struct OutputWriter {
    tmp: tempfile::NamedTempFile,
    writer: ArrowWriter<std::fs::File>,
    schema: Arc<Schema>,
    dim: usize,
    per_residue: bool,
    out: PathBuf,
}

impl OutputWriter {
    fn create(out: &Path, dim: usize, per_residue: bool) -> Result<Self, ModelError> {
        let dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let io = |source| ModelError::Io {
            path: out.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = tempfile::Builder::new()
            .prefix(".embed-")
            .suffix(".parquet.tmp")
            .tempfile_in(dir)
            .map_err(io)?;
        let schema = Arc::new(schema(dim, per_residue));
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(4096))
            .build();
        let file = tmp.reopen().map_err(io)?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))?;
        Ok(OutputWriter {
            tmp,
            writer,
            schema,
            dim,
            per_residue,
            out: out.to_path_buf(),
        })
    }

    fn write(&mut self, rows: &[Row]) -> Result<(), ModelError> {
        let ids = StringArray::from_iter_values(rows.iter().map(|r| r.id.as_str()));
        let lens = Int32Array::from_iter_values(rows.iter().map(|r| r.len as i32));
        let mut vec = FixedSizeListBuilder::new(Float32Builder::new(), self.dim as i32)
            .with_field(Arc::new(Field::new("item", DataType::Float32, false)));
        for r in rows {
            vec.values().append_slice(&r.graph);
            vec.append(true);
        }
        let mut cols: Vec<ArrayRef> = vec![Arc::new(ids), Arc::new(lens), Arc::new(vec.finish())];
        if self.per_residue {
            let inner = FixedSizeListBuilder::new(Float32Builder::new(), self.dim as i32)
                .with_field(Arc::new(Field::new("item", DataType::Float32, false)));
            let item = Arc::new(Field::new(
                "item",
                DataType::FixedSizeList(
                    Arc::new(Field::new("item", DataType::Float32, false)),
                    self.dim as i32,
                ),
                false,
            ));
            let mut list = ListBuilder::new(inner).with_field(item);
            for r in rows {
                let nodes = r.nodes.as_deref().unwrap_or(&[]);
                for v in nodes.chunks(self.dim) {
                    list.values().values().append_slice(v);
                    list.values().append(true);
                }
                list.append(true);
            }
            cols.push(Arc::new(list.finish()));
        }
        let batch = RecordBatch::try_new(self.schema.clone(), cols)?;
        self.writer.write(&batch)?;
        Ok(())
    }

    fn finish(self) -> Result<(), ModelError> {
        self.writer.close()?;
        let out = self.out.clone();
        self.tmp.persist(&out).map_err(|e| ModelError::Io {
            path: out,
            source: e.error,
        })?;
        Ok(())
    }
}
