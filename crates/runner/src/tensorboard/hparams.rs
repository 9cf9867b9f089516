//! A hand-written protobuf encoder for TensorBoard's HParams plugin data.
//!
//! The `content` of an HParams summary is a serialised `tensorboard.hparams.HParamsPluginData`
//! (`tensorboard/plugins/hparams/plugin_data.proto`, `api.proto`) holding an `Experiment`, a
//! `SessionStartInfo` or a `SessionEndInfo`, with hyperparameter values as
//! `google.protobuf.Value`. tensorboard-proto has generated types for these, but they keep the
//! hyperparameters in a `HashMap`, so their bytes change from run to run; this encoder writes
//! fields in field-number order and map entries sorted by key, which is what Python's
//! `SerializeToString(deterministic=True)` writes (the tests compare the two byte for byte).

use std::collections::BTreeMap;

/// `metadata.PLUGIN_NAME` of the HParams plugin.
pub const PLUGIN_NAME: &str = "hparams";
/// Summary tag of the `Experiment` (`metadata.EXPERIMENT_TAG`).
pub const EXPERIMENT_TAG: &str = "_hparams_/experiment";
/// Summary tag of the `SessionStartInfo` (`metadata.SESSION_START_INFO_TAG`).
pub const SESSION_START_INFO_TAG: &str = "_hparams_/session_start_info";
/// Summary tag of the `SessionEndInfo` (`metadata.SESSION_END_INFO_TAG`).
pub const SESSION_END_INFO_TAG: &str = "_hparams_/session_end_info";

/// A hyperparameter value: one case of `google.protobuf.Value`.
#[derive(Clone, Debug, PartialEq)]
pub enum HParamValue {
    /// `number_value` (integers too), shown with type `DATA_TYPE_FLOAT64`.
    Number(f64),
    /// `string_value`, type `DATA_TYPE_STRING`.
    String(String),
    /// `bool_value`, type `DATA_TYPE_BOOL`.
    Bool(bool),
}

impl HParamValue {
    /// The `tensorboard.hparams.DataType` of the value.
    fn data_type(&self) -> u64 {
        match self {
            HParamValue::String(_) => 1,
            HParamValue::Bool(_) => 2,
            HParamValue::Number(_) => 3,
        }
    }

    /// The serialised `google.protobuf.Value`; a oneof case is written even when it is zero.
    fn encode(&self) -> Vec<u8> {
        let mut m = ProtoWriter::default();
        match self {
            HParamValue::Number(v) => {
                m.key(2, WIRE_I64);
                m.buf.extend_from_slice(&v.to_le_bytes());
            }
            HParamValue::String(s) => m.len_delimited(3, s.as_bytes()),
            HParamValue::Bool(b) => {
                m.key(4, WIRE_VARINT);
                m.varint(u64::from(*b));
            }
        }
        m.buf
    }
}

/// `tensorboard.hparams.DatasetType`: what a metric is computed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetType {
    /// `DATASET_UNKNOWN` (the enum has no test value).
    Unknown = 0,
    /// `DATASET_TRAINING`.
    Training = 1,
    /// `DATASET_VALIDATION`.
    Validation = 2,
}

/// A metric of the experiment: a scalar tag of the session's own run (empty group).
#[derive(Clone, Debug, PartialEq)]
pub struct MetricInfo {
    /// The scalar tag, e.g. `test/model/CIDEr`.
    pub tag: String,
    /// What the metric is computed on.
    pub dataset_type: DatasetType,
}

/// `tensorboard.hparams.Status` of a finished session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStatus {
    /// `STATUS_SUCCESS`.
    Success = 1,
}

const WIRE_VARINT: u8 = 0;
const WIRE_I64: u8 = 1;
const WIRE_LEN: u8 = 2;

/// Protobuf wire-format writer (proto3: zero scalars are left out).
#[derive(Default)]
struct ProtoWriter {
    buf: Vec<u8>,
}

impl ProtoWriter {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    /// A length-delimited field, always written (strings in a oneof, map keys, sub-messages).
    fn len_delimited(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, WIRE_LEN);
        self.varint(bytes.len() as u64);
        self.buf.extend_from_slice(bytes);
    }

    /// A proto3 `string` field, left out when empty.
    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.len_delimited(field, s.as_bytes());
        }
    }

    /// A proto3 enum or integer field, left out when zero.
    fn uint(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.key(field, WIRE_VARINT);
            self.varint(v);
        }
    }

    /// A proto3 `double` field, left out when +0.0 (as protobuf does: by bit pattern).
    fn double(&mut self, field: u32, v: f64) {
        if v.to_bits() != 0 {
            self.key(field, WIRE_I64);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// `HParamsPluginData { version: 0, <field>: message }`; version 0 is the default, so only the
/// oneof case is written.
fn plugin_data(field: u32, message: &[u8]) -> Vec<u8> {
    let mut m = ProtoWriter::default();
    m.len_delimited(field, message);
    m.buf
}

/// Serialised `HParamsPluginData` holding an `Experiment`: one `HParamInfo` (name and type,
/// no domain) per hyperparameter, in key order, and one `MetricInfo` per metric, in order.
pub fn experiment(
    hparams: &BTreeMap<String, HParamValue>,
    metrics: &[MetricInfo],
    time_created_secs: f64,
) -> Vec<u8> {
    let mut exp = ProtoWriter::default();
    exp.double(3, time_created_secs);
    for (name, value) in hparams {
        let mut info = ProtoWriter::default();
        info.string(1, name);
        info.uint(4, value.data_type());
        exp.len_delimited(4, &info.buf);
    }
    for metric in metrics {
        let mut metric_name = ProtoWriter::default();
        metric_name.string(2, &metric.tag);
        let mut info = ProtoWriter::default();
        info.len_delimited(1, &metric_name.buf);
        info.uint(5, metric.dataset_type as u64);
        exp.len_delimited(5, &info.buf);
    }
    plugin_data(2, &exp.buf)
}

/// Serialised `HParamsPluginData` holding a `SessionStartInfo`: the hyperparameter map (entries
/// sorted by key), `model_uri` and `start_time_secs`.
pub fn session_start_info(
    hparams: &BTreeMap<String, HParamValue>,
    model_uri: &str,
    start_time_secs: f64,
) -> Vec<u8> {
    let mut info = ProtoWriter::default();
    for (name, value) in hparams {
        let mut entry = ProtoWriter::default();
        entry.len_delimited(1, name.as_bytes());
        entry.len_delimited(2, &value.encode());
        info.len_delimited(1, &entry.buf);
    }
    info.string(2, model_uri);
    info.double(5, start_time_secs);
    plugin_data(3, &info.buf)
}

/// Serialised `HParamsPluginData` holding a `SessionEndInfo`.
pub fn session_end_info(status: SessionStatus, end_time_secs: f64) -> Vec<u8> {
    let mut info = ProtoWriter::default();
    info.uint(1, status as u64);
    info.double(2, end_time_secs);
    plugin_data(4, &info.buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protobuf::Message;
    use tensorboard_proto::plugin_hparams::HParamsPluginData;

    // Produced once with TensorBoard 2.21's own protobuf classes (protobuf 7.36, upb) in
    // /var/tmp/caplab-ci-venv:
    //
    // from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
    // hp = {"model.decoder.cell": "lstm", "train.lr": 0.005, "train.epochs": 3,
    //       "eval.search.suppress_unk": False, "data.root": "", "z.neg": -0.0}
    // types = {str: "DATA_TYPE_STRING", bool: "DATA_TYPE_BOOL", float: "DATA_TYPE_FLOAT64",
    //          int: "DATA_TYPE_FLOAT64"}
    // exp = api_pb2.Experiment(
    //     time_created_secs=1700000000.25,
    //     hparam_infos=[api_pb2.HParamInfo(name=k, type=api_pb2.DataType.Value(types[type(v)]))
    //                   for k, v in sorted(hp.items())],
    //     metric_infos=[
    //         api_pb2.MetricInfo(name=api_pb2.MetricName(tag="test/model/CIDEr")),
    //         api_pb2.MetricInfo(name=api_pb2.MetricName(tag="epoch/valid/CIDEr"),
    //                            dataset_type=api_pb2.DATASET_VALIDATION),
    //         api_pb2.MetricInfo(name=api_pb2.MetricName(tag="epoch/train/Loss"),
    //                            dataset_type=api_pb2.DATASET_TRAINING)])
    // ssi = plugin_data_pb2.SessionStartInfo(model_uri="runs/tiny/x",
    //                                        start_time_secs=1700000000.25)
    // for k, v in hp.items():
    //     if isinstance(v, bool): ssi.hparams[k].bool_value = v
    //     elif isinstance(v, str): ssi.hparams[k].string_value = v
    //     else: ssi.hparams[k].number_value = v
    // sei = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS,
    //                                      end_time_secs=1700000123.5)
    // for name, m in [("experiment", exp), ("session_start_info", ssi),
    //                 ("session_end_info", sei)]:
    //     print(name, plugin_data_pb2.HParamsPluginData(version=0, **{name: m})
    //           .SerializeToString(deterministic=True).hex())
    const PY_EXPERIMENT: &str = "12c0011900001040fc54d941220d0a09646174612e726f6f742001221c0a18\
        6576616c2e7365617263682e73757070726573735f756e6b200222160a126d6f64656c2e6465636f646572\
        2e63656c6c200122100a0c747261696e2e65706f6368732003220c0a08747261696e2e6c72200322090a05\
        7a2e6e656720032a140a121210746573742f6d6f64656c2f43494445722a170a13121165706f63682f7661\
        6c69642f434944457228022a160a12121065706f63682f747261696e2f4c6f73732801";
    const PY_SESSION_START: &str = "1aab010a0f0a09646174612e726f6f7412021a000a1e0a186576616c2e\
        7365617263682e73757070726573735f756e6b120220000a1c0a126d6f64656c2e6465636f6465722e6365\
        6c6c12061a046c73746d0a190a0c747261696e2e65706f63687312091100000000000008400a150a087472\
        61696e2e6c721209117b14ae47e17a743f0a120a057a2e6e65671209110000000000000080120b72756e73\
        2f74696e792f782900001040fc54d941";
    const PY_SESSION_END: &str = "220b0801110000e05efc54d941";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn sample_hparams() -> BTreeMap<String, HParamValue> {
        [
            ("model.decoder.cell", HParamValue::String("lstm".into())),
            ("train.lr", HParamValue::Number(0.005)),
            ("train.epochs", HParamValue::Number(3.0)),
            ("eval.search.suppress_unk", HParamValue::Bool(false)),
            ("data.root", HParamValue::String(String::new())),
            ("z.neg", HParamValue::Number(-0.0)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn sample_metrics() -> Vec<MetricInfo> {
        [
            ("test/model/CIDEr", DatasetType::Unknown),
            ("epoch/valid/CIDEr", DatasetType::Validation),
            ("epoch/train/Loss", DatasetType::Training),
        ]
        .into_iter()
        .map(|(tag, dataset_type)| MetricInfo {
            tag: tag.into(),
            dataset_type,
        })
        .collect()
    }

    #[test]
    fn experiment_matches_python_bytes() {
        let bytes = experiment(&sample_hparams(), &sample_metrics(), 1_700_000_000.25);
        assert_eq!(hex(&bytes), PY_EXPERIMENT);
    }

    #[test]
    fn session_start_info_matches_python_bytes() {
        let bytes = session_start_info(&sample_hparams(), "runs/tiny/x", 1_700_000_000.25);
        assert_eq!(hex(&bytes), PY_SESSION_START);
    }

    #[test]
    fn session_end_info_matches_python_bytes() {
        let bytes = session_end_info(SessionStatus::Success, 1_700_000_123.5);
        assert_eq!(hex(&bytes), PY_SESSION_END);
    }

    #[test]
    fn long_fields_use_multi_byte_lengths() {
        // A value longer than 127 bytes needs a two-byte varint length.
        let long = "x".repeat(300);
        let hp: BTreeMap<String, HParamValue> =
            [("k".to_string(), HParamValue::String(long.clone()))].into();
        let parsed = HParamsPluginData::parse_from_bytes(&session_start_info(&hp, "", 0.0))
            .expect("tensorboard-proto parses the encoder's bytes");
        let start = parsed.get_session_start_info();
        assert_eq!(start.get_hparams()["k"].get_string_value(), long);
        assert_eq!(start.get_start_time_secs(), 0.0);
    }

    #[test]
    fn tensorboard_proto_decodes_every_message() {
        // An independent decoder (rust-protobuf's generated types) reads what the encoder wrote.
        let hp = sample_hparams();
        let exp = HParamsPluginData::parse_from_bytes(&experiment(&hp, &sample_metrics(), 1.5))
            .expect("experiment parses");
        assert_eq!(exp.get_version(), 0);
        let exp = exp.get_experiment();
        assert_eq!(exp.get_time_created_secs(), 1.5);
        let names: Vec<&str> = exp
            .get_hparam_infos()
            .iter()
            .map(|h| h.get_name())
            .collect();
        assert_eq!(names, hp.keys().map(String::as_str).collect::<Vec<_>>());
        let tags: Vec<&str> = exp
            .get_metric_infos()
            .iter()
            .map(|m| m.get_name().get_tag())
            .collect();
        assert_eq!(
            tags,
            ["test/model/CIDEr", "epoch/valid/CIDEr", "epoch/train/Loss"]
        );

        let start = HParamsPluginData::parse_from_bytes(&session_start_info(&hp, "uri", 2.0))
            .expect("session start parses");
        let start = start.get_session_start_info();
        assert_eq!(start.get_model_uri(), "uri");
        let got = start.get_hparams();
        assert_eq!(got.len(), hp.len());
        assert_eq!(got["train.lr"].get_number_value(), 0.005);
        assert_eq!(got["model.decoder.cell"].get_string_value(), "lstm");
        assert!(got["eval.search.suppress_unk"].has_bool_value());
        assert!(!got["eval.search.suppress_unk"].get_bool_value());

        let end =
            HParamsPluginData::parse_from_bytes(&session_end_info(SessionStatus::Success, 3.0))
                .expect("session end parses");
        assert_eq!(
            end.get_session_end_info().get_status(),
            tensorboard_proto::api::Status::STATUS_SUCCESS
        );
        assert_eq!(end.get_session_end_info().get_end_time_secs(), 3.0);
    }
}
