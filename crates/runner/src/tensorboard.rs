//! TensorBoard event files: a burn-train `MetricLogger` that forwards every scalar, plus the
//! text and HParams summaries tensorboard-rs cannot write.
//!
//! Train metrics are written per step (`train/Loss`, `train/Learning Rate`), numbered across
//! resumes; every epoch value of the run history as `epoch/<split>/<name>` (`epoch/valid/CIDEr`,
//! `epoch/valid/Loss`, …) and `epoch/lr`; and per epoch a few fixed validation images
//! (`samples/val/<image>`) with the caption the model gave each that epoch (text `samples/val`).
//! A fresh run also writes, at step 0, the resolved spec as text (`spec`) and the HParams
//! experiment and session start; at the end, `report.md` as text (`report`) and the HParams
//! session end.

mod hparams;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use burn::train::logger::MetricLogger;
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};
use caplab_metrics::MeteorMode;
use protobuf::RepeatedField;
use tensorboard_proto::summary::{
    Summary, SummaryMetadata, SummaryMetadata_PluginData, Summary_Image, Summary_Value,
};
use tensorboard_proto::tensor::TensorProto;
use tensorboard_proto::tensor_shape::{TensorShapeProto, TensorShapeProto_Dim};
use tensorboard_proto::types::DataType;
use tensorboard_rs::summary_writer::FileWriter;

use crate::spec::Spec;
use hparams::{DatasetType, HParamValue, MetricInfo, SessionStatus};

/// Text tag of the resolved spec, written at step 0.
pub const SPEC_TAG: &str = "spec";
/// Text tag of `report.md`, written at the end of the run.
pub const REPORT_TAG: &str = "report";

/// Spec keys that are locations rather than parameters, left out of the HParams.
const NOT_HPARAMS: [&str; 3] = [
    "experiment.runs_dir",
    "preprocess.feature_cache",
    "eval.meteor_dir",
];

/// A shared TensorBoard writer; clones write to the same event file.
#[derive(Clone)]
pub struct TensorBoard {
    writer: Arc<Mutex<FileWriter>>,
    new_dir: bool,
}

impl TensorBoard {
    /// Opens an event file in `dir`.
    pub fn new(dir: &Path) -> Self {
        let new_dir = !dir.exists();
        Self {
            writer: Arc::new(Mutex::new(FileWriter::new(dir))),
            new_dir,
        }
    }

    /// Whether the event directory did not exist before (not a resumed run's second file).
    pub fn is_new(&self) -> bool {
        self.new_dir
    }

    /// Writes one scalar.
    pub fn scalar(&self, tag: &str, value: f64, step: usize) {
        self.summary(tensorboard_rs::summary::scalar(tag, value as f32), step);
    }

    /// Writes a markdown text for TensorBoard's text plugin.
    pub fn text(&self, tag: &str, markdown: &str, step: usize) {
        self.summary(text_summary(tag, markdown), step);
    }

    /// Writes an image (PNG bytes of a `width` × `height` RGB picture) for the images dashboard.
    pub fn image(&self, tag: &str, png: Vec<u8>, width: u32, height: u32, step: usize) {
        let mut image = Summary_Image::new();
        image.set_width(width as i32);
        image.set_height(height as i32);
        image.set_colorspace(3);
        image.set_encoded_image_string(png);
        let mut value = Summary_Value::new();
        value.set_tag(tag.to_string());
        value.set_image(image);
        let mut summary = Summary::new();
        summary.set_value(RepeatedField::from(vec![value]));
        self.summary(summary, step);
    }

    /// Flushes the event file to disk.
    pub fn flush(&self) {
        if let Ok(mut w) = self.writer.lock() {
            w.flush();
        }
    }

    /// Writes the start of a run at step 0: the resolved spec as text, and the HParams
    /// experiment (the spec's scalar keys and the run's metrics) and session start, whose
    /// `model_uri` is the run directory.
    pub fn run_start(&self, spec: &Spec, run_dir: &Path) -> Result<()> {
        let toml = spec.to_toml()?;
        self.text(SPEC_TAG, &format!("```toml\n{}\n```", toml.trim_end()), 0);
        let hp = spec_hparams(spec)?;
        let model_uri = std::fs::canonicalize(run_dir).unwrap_or_else(|_| run_dir.to_path_buf());
        let now = unix_time();
        self.summary(
            plugin_summary(
                hparams::EXPERIMENT_TAG,
                hparams::PLUGIN_NAME,
                hparams::experiment(&hp, &run_metrics(&spec.eval.meteor_mode()), now),
            ),
            0,
        );
        self.summary(
            plugin_summary(
                hparams::SESSION_START_INFO_TAG,
                hparams::PLUGIN_NAME,
                hparams::session_start_info(&hp, &model_uri.display().to_string(), now),
            ),
            0,
        );
        self.flush();
        Ok(())
    }

    /// Writes the end of a successful run at `step`: `report.md` as text and the HParams
    /// session end.
    pub fn run_end(&self, report_md: &str, step: usize) {
        self.text(REPORT_TAG, &unlink_images(report_md), step);
        self.summary(
            plugin_summary(
                hparams::SESSION_END_INFO_TAG,
                hparams::PLUGIN_NAME,
                hparams::session_end_info(SessionStatus::Success, unix_time()),
            ),
            step,
        );
        self.flush();
    }

    fn summary(&self, summary: Summary, step: usize) {
        if let Ok(mut w) = self.writer.lock() {
            w.add_summary(summary, step);
        }
    }
}

fn unix_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A summary value carrying only plugin metadata (what the HParams plugin reads).
fn plugin_summary(tag: &str, plugin: &str, content: Vec<u8>) -> Summary {
    let mut plugin_data = SummaryMetadata_PluginData::new();
    plugin_data.set_plugin_name(plugin.to_string());
    plugin_data.set_content(content);
    let mut metadata = SummaryMetadata::new();
    metadata.set_plugin_data(plugin_data);
    let mut value = Summary_Value::new();
    value.set_tag(tag.to_string());
    value.set_metadata(metadata);
    let mut summary = Summary::new();
    summary.set_value(RepeatedField::from(vec![value]));
    summary
}

/// A text-plugin summary: a one-element `DT_STRING` tensor, as PyTorch's `add_text` writes.
fn text_summary(tag: &str, text: &str) -> Summary {
    // `TextPluginData { version: 0 }` serialises to no bytes.
    let mut summary = plugin_summary(tag, "text", Vec::new());
    let mut dim = TensorShapeProto_Dim::new();
    dim.set_size(1);
    let mut shape = TensorShapeProto::new();
    shape.set_dim(RepeatedField::from(vec![dim]));
    let mut tensor = TensorProto::new();
    tensor.set_dtype(DataType::DT_STRING);
    tensor.set_tensor_shape(shape);
    tensor.set_string_val(RepeatedField::from(vec![text.as_bytes().to_vec()]));
    summary.mut_value()[0].set_tensor(tensor);
    summary
}

/// The spec's scalar keys as hyperparameters (`train.lr`, `model.decoder.cell`, …): numbers,
/// strings and booleans, sorted by key; arrays and locations (run, cache and METEOR directories)
/// are left out.
fn spec_hparams(spec: &Spec) -> Result<BTreeMap<String, HParamValue>> {
    let mut out: BTreeMap<String, HParamValue> = spec
        .leaves()?
        .into_iter()
        .filter_map(|(key, value)| Some((key, hparam_value(value)?)))
        .collect();
    for key in NOT_HPARAMS {
        out.remove(key);
    }
    Ok(out)
}

/// A spec leaf as an HParams value: numbers, strings and booleans; `None` for the rest.
fn hparam_value(value: toml::Value) -> Option<HParamValue> {
    match value {
        toml::Value::Integer(i) => Some(HParamValue::Number(i as f64)),
        toml::Value::Float(f) if f.is_finite() => Some(HParamValue::Number(f)),
        toml::Value::Boolean(b) => Some(HParamValue::Bool(b)),
        toml::Value::String(s) => Some(HParamValue::String(s)),
        toml::Value::Float(_)
        | toml::Value::Array(_)
        | toml::Value::Datetime(_)
        | toml::Value::Table(_) => None,
    }
}

/// The HParams metrics of a run: the model's test metrics (the `test/model/<metric>` scalars
/// written at the end, METEOR under the key `meteor` produces) and the last epoch's validation
/// and training values.
fn run_metrics(meteor: &MeteorMode) -> Vec<MetricInfo> {
    let meteor = match meteor {
        MeteorMode::Off => None,
        MeteorMode::ExactStem { .. } => Some(caplab_metrics::METEOR_EXACT_STEM),
        MeteorMode::Full { .. } => Some(caplab_metrics::METEOR_FULL),
    };
    let test = ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"]
        .into_iter()
        .chain(meteor)
        .chain(["ROUGE-L", "CIDEr"])
        .map(|m| (format!("test/model/{m}"), DatasetType::Unknown));
    let epochs = [
        ("epoch/valid/CIDEr", DatasetType::Validation),
        ("epoch/valid/BLEU-4", DatasetType::Validation),
        ("epoch/valid/Loss", DatasetType::Validation),
        ("epoch/train/Loss", DatasetType::Training),
    ]
    .into_iter()
    .map(|(t, d)| (t.to_string(), d));
    test.chain(epochs)
        .map(|(tag, dataset_type)| MetricInfo { tag, dataset_type })
        .collect()
}

/// `report.md` for TensorBoard: image lines (attention strips, relative to the run directory,
/// which TensorBoard cannot serve) become their alt text and path.
fn unlink_images(md: &str) -> String {
    md.lines()
        .map(|line| {
            let image = line
                .trim()
                .strip_prefix("![")
                .and_then(|rest| rest.strip_suffix(')'))
                .and_then(|rest| rest.split_once("]("));
            match image {
                Some((alt, path)) => format!("*{alt}: `{path}` in the run directory*"),
                None => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Forwards burn-train's per-step training metrics to TensorBoard (`train/Loss`,
/// `train/Learning Rate`). Epoch values come from the run history (`epoch::EpochEnd`).
pub struct TensorBoardLogger {
    board: TensorBoard,
    names: HashMap<MetricId, String>,
    step: usize,
}

impl TensorBoardLogger {
    /// A logger writing to `board`, whose first training step is `steps_done + 1` (the steps
    /// of the epochs a resumed run already has).
    pub fn new(board: TensorBoard, steps_done: usize) -> Self {
        Self {
            board,
            names: HashMap::new(),
            step: steps_done,
        }
    }
}

impl MetricLogger for TensorBoardLogger {
    fn log(&mut self, update: MetricsUpdate, _epoch: usize, split: &Split) {
        if !matches!(split, Split::Train) {
            return;
        }
        self.step += 1;
        for entry in update.entries_numeric {
            let name = self
                .names
                .get(&entry.entry.metric_id)
                .cloned()
                .unwrap_or_else(|| "metric".to_string());
            let value = match entry.numeric_entry {
                NumericEntry::Value(v) => v,
                NumericEntry::Aggregated {
                    aggregated_value, ..
                } => aggregated_value,
            };
            if value.is_finite() {
                self.board
                    .scalar(&format!("train/{name}"), value, self.step);
            }
        }
    }

    fn read_numeric(
        &mut self,
        _name: &str,
        _epoch: usize,
        _split: &Split,
    ) -> Result<Vec<NumericEntry>, String> {
        Err("the TensorBoard logger does not read back".to_string())
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        self.names.insert(definition.metric_id, definition.name);
    }

    fn log_epoch_summary(&mut self, _summary: EpochSummary) {
        self.board.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protobuf::Message;

    // Produced with TensorBoard 2.21's protobuf classes in /var/tmp/caplab-ci-venv:
    //
    // from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2
    // from tensorboard.plugins.text import plugin_data_pb2 as text_pb2
    // print(summary_pb2.Summary(value=[summary_pb2.Summary.Value(
    //     tag="spec",
    //     metadata=summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(
    //         plugin_name="text", content=text_pb2.TextPluginData(version=0).SerializeToString())),
    //     tensor=tensor_pb2.TensorProto(dtype="DT_STRING", string_val=["héllo".encode()],
    //         tensor_shape=tensor_shape_pb2.TensorShapeProto(
    //             dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=1)])))]).SerializeToString().hex())
    const PY_TEXT: &str =
        "0a220a047370656342100807120412020801420668c3a96c6c6f4a080a060a0474657874";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    const SPEC: &str = r#"
[experiment]
name = "t"
seed = 3

[data]
kind = "synth"
root = "shapes"

[model.encoder]
arch = "resnet_tiny"

[model.decoder]
cell = "gru"

[train]
lr = 5e-3
grad_clip = { global_norm = 2.5 }
"#;

    #[test]
    fn text_summary_is_the_message_python_writes() {
        // rust-protobuf writes fields in declaration order and Python in field-number order, so
        // the messages are compared, not the bytes.
        let python = Summary::parse_from_bytes(&unhex(PY_TEXT)).expect("parses");
        assert_eq!(text_summary("spec", "héllo"), python);
    }

    #[test]
    fn hparams_are_the_spec_scalar_keys_sorted_and_typed() {
        let spec: Spec = toml::from_str(SPEC).expect("spec");
        let hp = spec_hparams(&spec).expect("hparams");
        assert_eq!(hp["train.lr"], HParamValue::Number(5e-3));
        assert_eq!(hp["experiment.seed"], HParamValue::Number(3.0));
        assert_eq!(hp["train.grad_clip.global_norm"], HParamValue::Number(2.5));
        assert_eq!(hp["model.decoder.cell"], HParamValue::String("gru".into()));
        assert_eq!(
            hp["model.encoder.arch"],
            HParamValue::String("resnet_tiny".into())
        );
        for key in NOT_HPARAMS {
            assert!(!hp.contains_key(key), "{key} is a location");
        }
        let value = toml::Value::try_from(&spec).expect("toml");
        assert!(
            value["experiment"].get("runs_dir").is_some(),
            "the spec does have a runs_dir, so leaving it out is tested"
        );
        // The same spec gives the same bytes.
        let again = spec_hparams(&spec).expect("hparams");
        assert_eq!(
            hparams::session_start_info(&hp, "r", 1.0),
            hparams::session_start_info(&again, "r", 1.0)
        );
    }

    #[test]
    fn scalars_become_hparams_and_the_rest_is_dropped() {
        use toml::Value;
        assert_eq!(
            hparam_value(Value::Boolean(true)),
            Some(HParamValue::Bool(true))
        );
        assert_eq!(
            hparam_value(Value::Integer(7)),
            Some(HParamValue::Number(7.0))
        );
        assert_eq!(
            hparam_value(Value::Float(0.5)),
            Some(HParamValue::Number(0.5))
        );
        assert_eq!(
            hparam_value(Value::String("x".into())),
            Some(HParamValue::String("x".into()))
        );
        assert_eq!(hparam_value(Value::Float(f64::NAN)), None);
        assert_eq!(hparam_value(Value::Array(vec![Value::Integer(1)])), None);
    }

    #[test]
    fn metrics_follow_the_meteor_key() {
        let tags =
            |m: MeteorMode| -> Vec<String> { run_metrics(&m).into_iter().map(|i| i.tag).collect() };
        let stem = tags(MeteorMode::ExactStem { dir: None });
        assert!(stem.contains(&"test/model/METEOR(exact+stem)".to_string()));
        assert!(stem.contains(&"test/model/CIDEr".to_string()));
        assert!(stem.contains(&"epoch/valid/CIDEr".to_string()));
        let full = tags(MeteorMode::Full { dir: "m".into() });
        assert!(full.contains(&"test/model/METEOR".to_string()));
        assert!(!full.contains(&"test/model/METEOR(exact+stem)".to_string()));
        assert_eq!(tags(MeteorMode::Off).len(), stem.len() - 1);
    }

    #[test]
    fn report_images_become_text() {
        let md = "# r\n\n![attention of a.jpg](attention/0-a.png)\n\n| a | b |";
        assert_eq!(
            unlink_images(md),
            "# r\n\n*attention of a.jpg: `attention/0-a.png` in the run directory*\n\n| a | b |"
        );
    }
}
