//! Integration tests of caplab-models (one file, one module per component).

/// LSTM/GRU against PyTorch fixtures from `scripts/parity/rnn.py` (no torch needed here).
mod rnn_parity {
    use std::path::{Path, PathBuf};

    use burn::backend::{Autodiff, NdArray};
    use burn::module::Module;
    use burn::tensor::backend::Backend;
    use burn::tensor::{Int, Tensor, TensorData};
    use caplab_models::rnn::{load_pytorch_rnn, CellKind, Rnn, RnnConfig, RnnState};
    use caplab_models::ImportError;
    use serde_json::Value;

    type B = NdArray<f32>;

    /// Parity tolerance required by the issue (max abs diff vs PyTorch).
    const TOL: f32 = 1e-5;

    fn fixture_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rnn")
    }

    /// A parity fixture: the JSON written next to the `.pt`/`.safetensors` files.
    struct Fixture {
        cell: CellKind,
        json: Value,
    }

    impl Fixture {
        fn load(cell: CellKind) -> Self {
            let name = match cell {
                CellKind::Lstm => "lstm.json",
                CellKind::Gru => "gru.json",
            };
            let path = fixture_dir().join(name);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            let json: Value = serde_json::from_str(&text).expect("fixture is valid JSON");
            Self { cell, json }
        }

        fn dim(&self, key: &str) -> usize {
            self.json[key].as_u64().expect("integer field") as usize
        }

        fn config(&self) -> RnnConfig {
            RnnConfig::new(self.cell, self.dim("input_size"), self.dim("hidden_size"))
                .with_num_layers(self.dim("num_layers"))
        }

        fn tensor<const D: usize>(&self, key: &str) -> Tensor<B, D> {
            tensor_from_json(&self.json[key])
        }

        fn state_dict_tensor<const D: usize>(&self, key: &str) -> Tensor<B, D> {
            tensor_from_json(&self.json["state_dict"][key])
        }

        fn initial_state(&self) -> RnnState<B> {
            RnnState {
                h: self.tensor("h0"),
                c: (self.cell == CellKind::Lstm).then(|| self.tensor("c0")),
            }
        }

        /// Imports the fixture's weights from `file` (in the fixture dir) with `prefix`.
        fn import(&self, file: &str, prefix: &str) -> Rnn<B> {
            let rnn = self.config().init::<B>(&Default::default());
            load_pytorch_rnn(rnn, &fixture_dir().join(file), prefix)
                .unwrap_or_else(|e| panic!("import {file}: {e}"))
        }
    }

    fn tensor_from_json<const D: usize>(value: &Value) -> Tensor<B, D> {
        let shape: Vec<usize> = value["shape"]
            .as_array()
            .expect("shape array")
            .iter()
            .map(|d| d.as_u64().expect("shape entry") as usize)
            .collect();
        let values: Vec<f32> = value["values"]
            .as_array()
            .expect("values array")
            .iter()
            .map(|v| v.as_f64().expect("float value") as f32)
            .collect();
        Tensor::from_data(TensorData::new(values, shape), &Default::default())
    }

    fn max_abs_diff<const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
        assert_eq!(a.dims(), b.dims(), "shape mismatch");
        (a - b).abs().max().into_scalar()
    }

    /// Checks forward (given and zero state) and step-by-step against PyTorch.
    fn assert_parity(fixture: &Fixture, rnn: &Rnn<B>) {
        let x: Tensor<B, 3> = fixture.tensor("input");
        let [_, time, _] = x.dims();

        let (output, state) = rnn.forward(x.clone(), Some(fixture.initial_state()));
        let diff_out = max_abs_diff(output, fixture.tensor("output"));
        let diff_h = max_abs_diff(state.h, fixture.tensor("h_n"));
        assert!(diff_out <= TOL, "forward output diff {diff_out}");
        assert!(diff_h <= TOL, "forward h_n diff {diff_h}");
        match fixture.cell {
            CellKind::Lstm => {
                let c = state.c.expect("LSTM returns c");
                let diff_c = max_abs_diff(c, fixture.tensor("c_n"));
                assert!(diff_c <= TOL, "forward c_n diff {diff_c}");
            }
            CellKind::Gru => assert!(state.c.is_none(), "GRU has no cell state"),
        }

        let (output_zero, _) = rnn.forward(x.clone(), None);
        let diff_zero = max_abs_diff(output_zero, fixture.tensor("output_zero_state"));
        assert!(diff_zero <= TOL, "zero-state output diff {diff_zero}");

        let mut state = Some(fixture.initial_state());
        let mut outputs = Vec::with_capacity(time);
        for t in 0..time {
            let x_t = x.clone().narrow(1, t, 1).squeeze_dim::<2>(1);
            let (h_t, next) = rnn.step(x_t, state);
            outputs.push(h_t);
            state = Some(next);
        }
        let state = state.expect("state after steps");
        let diff_steps = max_abs_diff(Tensor::stack::<3>(outputs, 1), fixture.tensor("output"));
        let diff_step_h = max_abs_diff(state.h, fixture.tensor("h_n"));
        assert!(diff_steps <= TOL, "step outputs diff {diff_steps}");
        assert!(diff_step_h <= TOL, "step h_n diff {diff_step_h}");
        if fixture.cell == CellKind::Lstm {
            let c = state.c.expect("LSTM step returns c");
            let diff_step_c = max_abs_diff(c, fixture.tensor("c_n"));
            assert!(diff_step_c <= TOL, "step c_n diff {diff_step_c}");
        }
        eprintln!(
            "{:?} parity: forward output {diff_out:.2e}, h_n {diff_h:.2e}, zero-state \
             {diff_zero:.2e}, steps {diff_steps:.2e}",
            fixture.cell
        );
    }

    /// The imported parameters equal the fixture's state_dict bit for bit; the weights are
    /// stored transposed (`[in, gates * hidden]`).
    fn assert_weights_match(fixture: &Fixture, rnn: &Rnn<B>) {
        for k in 0..rnn.num_layers() {
            let [w_ih, w_hh, b_ih, b_hh] = layer_params(rnn, k);
            let expected = |name: &str| fixture.state_dict_tensor::<2>(&format!("{name}_l{k}"));
            let expected_bias =
                |name: &str| fixture.state_dict_tensor::<1>(&format!("{name}_l{k}"));
            assert_eq!(max_abs_diff(w_ih.transpose(), expected("weight_ih")), 0.0);
            assert_eq!(max_abs_diff(w_hh.transpose(), expected("weight_hh")), 0.0);
            assert_eq!(
                max_abs_diff(b_ih.unsqueeze::<2>(), expected_bias("bias_ih").unsqueeze()),
                0.0
            );
            assert_eq!(
                max_abs_diff(b_hh.unsqueeze::<2>(), expected_bias("bias_hh").unsqueeze()),
                0.0
            );
        }
    }

    /// `[weight_ih, weight_hh, bias_ih, bias_hh]` of layer `k`, biases as `[1, G*H]`.
    fn layer_params(rnn: &Rnn<B>, k: usize) -> [Tensor<B, 2>; 4] {
        let (w_ih, w_hh, b_ih, b_hh) = match rnn {
            Rnn::Lstm(m) => {
                let l = &m.layers[k];
                (
                    l.weight_ih.val(),
                    l.weight_hh.val(),
                    l.bias_ih.val(),
                    l.bias_hh.val(),
                )
            }
            Rnn::Gru(m) => {
                let l = &m.layers[k];
                (
                    l.weight_ih.val(),
                    l.weight_hh.val(),
                    l.bias_ih.val(),
                    l.bias_hh.val(),
                )
            }
        };
        [w_ih, w_hh, b_ih.unsqueeze(), b_hh.unsqueeze()]
    }

    /// Imports `file` (under `prefix`) for `cell`'s fixture; checks weights and outputs.
    fn assert_imports_with_parity(cell: CellKind, file: &str, prefix: &str) {
        let fixture = Fixture::load(cell);
        let rnn = fixture.import(file, prefix);
        assert_weights_match(&fixture, &rnn);
        assert_parity(&fixture, &rnn);
    }

    #[test]
    fn lstm_and_gru_match_pytorch_from_pt_and_safetensors() {
        for (cell, file) in [
            (CellKind::Lstm, "lstm.pt"),
            (CellKind::Lstm, "lstm.safetensors"),
            (CellKind::Gru, "gru.pt"),
            (CellKind::Gru, "gru.safetensors"),
        ] {
            assert_imports_with_parity(cell, file, "");
        }
    }

    #[test]
    fn prefixed_import_ignores_keys_outside_prefix() {
        for (cell, file, prefix) in [
            (CellKind::Lstm, "decoder_lstm.pt", "decoder.lstm."),
            (CellKind::Gru, "decoder_gru.pt", "decoder.gru."),
        ] {
            assert_imports_with_parity(cell, file, prefix);
        }
    }

    /// Imports `file` into a model built from `config`, expecting an error.
    fn import_error(config: RnnConfig, file: &str, prefix: &str) -> ImportError {
        let rnn = config.init::<B>(&Default::default());
        match load_pytorch_rnn(rnn, &fixture_dir().join(file), prefix) {
            Ok(_) => panic!("importing {file} into {config} should fail"),
            Err(e) => e,
        }
    }

    fn sorted(keys: &[&str]) -> Vec<String> {
        let mut keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        keys.sort();
        keys
    }

    #[test]
    fn import_reports_missing_keys() {
        let config = RnnConfig::new(CellKind::Lstm, 6, 8).with_num_layers(3);
        match import_error(config, "lstm.pt", "") {
            ImportError::Mismatch {
                mut missing,
                unexpected,
                ..
            } => {
                missing.sort();
                let expected = ["bias_hh_l2", "bias_ih_l2", "weight_hh_l2", "weight_ih_l2"];
                assert_eq!(missing, sorted(&expected));
                assert!(unexpected.is_empty(), "unexpected: {unexpected:?}");
            }
            other => panic!("expected Mismatch, got {other}"),
        }
    }

    #[test]
    fn import_reports_unexpected_keys() {
        let config = RnnConfig::new(CellKind::Gru, 6, 8);
        let error = import_error(config, "gru.safetensors", "");
        let message = error.to_string();
        match error {
            ImportError::Mismatch {
                missing,
                mut unexpected,
                ..
            } => {
                unexpected.sort();
                let expected = ["bias_hh_l1", "bias_ih_l1", "weight_hh_l1", "weight_ih_l1"];
                assert_eq!(unexpected, sorted(&expected));
                assert!(missing.is_empty(), "missing: {missing:?}");
                assert!(
                    message.contains("weight_ih_l1"),
                    "message lists keys: {message}"
                );
            }
            other => panic!("expected Mismatch, got {other}"),
        }
    }

    #[test]
    fn import_with_wrong_prefix_lists_both_sides() {
        let config = RnnConfig::new(CellKind::Lstm, 6, 8).with_num_layers(2);
        match import_error(config, "decoder_lstm.pt", "") {
            ImportError::Mismatch {
                missing,
                unexpected,
                ..
            } => {
                assert_eq!(missing.len(), 8, "missing: {missing:?}");
                assert!(missing.contains(&"weight_hh_l1".to_string()));
                assert!(unexpected.contains(&"decoder.lstm.weight_ih_l0".to_string()));
                assert!(unexpected.contains(&"decoder.embed.weight".to_string()));
            }
            other => panic!("expected Mismatch, got {other}"),
        }
    }

    #[test]
    fn import_rejects_wrong_cell_shapes() {
        // GRU tensors are [3H, *]; an LSTM of the same sizes expects [4H, *].
        let config = RnnConfig::new(CellKind::Lstm, 6, 8).with_num_layers(2);
        match import_error(config, "gru.pt", "") {
            ImportError::Mismatch { errors, .. } => {
                assert_eq!(errors.len(), 8, "errors: {errors:?}");
                assert!(errors.iter().any(|e| e.contains("layers.0.weight_ih")));
            }
            other => panic!("expected Mismatch, got {other}"),
        }
    }

    #[test]
    fn import_reports_unreadable_files() {
        let config = RnnConfig::new(CellKind::Lstm, 6, 8);
        let missing_file = import_error(config.clone(), "does_not_exist.pt", "");
        assert!(
            matches!(missing_file, ImportError::Read { .. }),
            "{missing_file}"
        );
        // A JSON file is neither a torch pickle nor safetensors.
        let not_a_checkpoint = import_error(config, "lstm.json", "");
        assert!(
            matches!(not_a_checkpoint, ImportError::Read { .. }),
            "{not_a_checkpoint}"
        );
    }

    #[test]
    fn shapes_of_forward_step_and_state() {
        let device = Default::default();
        for cell in [CellKind::Lstm, CellKind::Gru] {
            for layers in [1, 3] {
                let rnn = RnnConfig::new(cell, 5, 7)
                    .with_num_layers(layers)
                    .init::<B>(&device);
                assert_eq!(rnn.d_hidden(), 7);
                assert_eq!(rnn.num_layers(), layers);
                assert_eq!(rnn.cell(), cell);

                let x = Tensor::<B, 3>::ones([4, 6, 5], &device);
                let (output, state) = rnn.forward(x, None);
                assert_eq!(output.dims(), [4, 6, 7]);
                assert_eq!(state.h.dims(), [layers, 4, 7]);
                assert_eq!(
                    state.c.as_ref().map(|c| c.dims()),
                    match cell {
                        CellKind::Lstm => Some([layers, 4, 7]),
                        CellKind::Gru => None,
                    }
                );

                let (h, state) = rnn.step(Tensor::<B, 2>::ones([4, 5], &device), Some(state));
                assert_eq!(h.dims(), [4, 7]);
                assert_eq!(state.h.dims(), [layers, 4, 7]);

                let zero = rnn.zero_state(2, &device);
                assert_eq!(zero.h.dims(), [layers, 2, 7]);
                assert_eq!(zero.h.abs().sum().into_scalar(), 0.0);
                assert_eq!(zero.c.is_some(), cell == CellKind::Lstm);
            }
        }
    }

    #[test]
    fn step_output_is_top_layer_hidden_state() {
        let device = Default::default();
        let rnn = RnnConfig::new(CellKind::Lstm, 3, 4)
            .with_num_layers(2)
            .init::<B>(&device);
        let x = Tensor::<B, 2>::from_floats([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]], &device);
        let (h, state) = rnn.step(x, None);
        let top = state.h.narrow(0, 1, 1).squeeze_dim::<2>(0);
        assert_eq!(max_abs_diff(h.clone(), top), 0.0);
        assert!(
            h.abs().sum().into_scalar() > 0.0,
            "state moved away from zero"
        );
    }

    #[test]
    fn select_gathers_along_batch() {
        let device = Default::default();
        // h[l, b, :] = 10 * l + b, c = -h.
        let values: Vec<f32> = (0..2)
            .flat_map(|l| (0..3).flat_map(move |b| [(10 * l + b) as f32; 2]))
            .collect();
        let h = Tensor::<B, 3>::from_data(TensorData::new(values, [2, 3, 2]), &device);
        let state = RnnState {
            h: h.clone(),
            c: Some(h.neg()),
        };
        let indices = Tensor::<B, 1, Int>::from_data([2, 0, 0, 1], &device);
        let selected = state.select(indices);
        assert_eq!(selected.h.dims(), [2, 4, 2]);
        let h_values = selected.h.into_data().to_vec::<f32>().expect("f32 data");
        let expected: Vec<f32> = [2.0, 0.0, 0.0, 1.0, 12.0, 10.0, 10.0, 11.0]
            .iter()
            .flat_map(|v| [*v; 2])
            .collect();
        assert_eq!(h_values, expected);
        let c_values = selected
            .c
            .expect("c kept")
            .into_data()
            .to_vec::<f32>()
            .expect("f32");
        let expected_c: Vec<f32> = expected.iter().map(|v| -v).collect();
        assert_eq!(c_values, expected_c);

        let gru_state = RnnState::<B> {
            h: Tensor::zeros([1, 3, 2], &device),
            c: None,
        };
        let selected = gru_state.select(Tensor::from_data([1, 1], &device));
        assert_eq!(selected.h.dims(), [1, 2, 2]);
        assert!(selected.c.is_none());
    }

    #[test]
    fn init_is_uniform_within_pytorch_bound() {
        let device = Default::default();
        let hidden = 16;
        let bound = 1.0 / (hidden as f32).sqrt();
        for cell in [CellKind::Lstm, CellKind::Gru] {
            let rnn = RnnConfig::new(cell, 5, hidden)
                .with_num_layers(2)
                .init::<B>(&device);
            let gates = if cell == CellKind::Lstm { 4 } else { 3 };
            let bias_bound = bound * (1.0 + 1e-6);
            for k in 0..2 {
                let [w_ih, w_hh, b_ih, b_hh] = layer_params(&rnn, k);
                let d_in = if k == 0 { 5 } else { hidden };
                assert_eq!(w_ih.dims(), [d_in, gates * hidden]);
                assert_eq!(w_hh.dims(), [hidden, gates * hidden]);
                assert_eq!(b_ih.dims(), [1, gates * hidden]);
                for w in [w_ih, w_hh, b_ih, b_hh] {
                    let max = w.abs().max().into_scalar();
                    assert!(
                        max <= bias_bound,
                        "{cell:?} parameter {max} exceeds {bound}"
                    );
                    assert!(
                        max > 0.5 * bound,
                        "{cell:?} parameters look degenerate: {max}"
                    );
                }
            }
            // Per layer: weight_ih [G*H, d_in], weight_hh [G*H, H], two biases [G*H].
            let layer0 = gates * hidden * (5 + hidden + 2);
            let layer1 = gates * hidden * (hidden + hidden + 2);
            let expected = layer0 + layer1;
            assert_eq!(rnn.num_params(), expected);
        }
    }

    #[test]
    fn dropout_between_layers_only_when_training() {
        let device = Default::default();
        let x_data = TensorData::new(
            (0..2 * 4 * 3)
                .map(|i| (i as f32 * 0.37).sin())
                .collect::<Vec<_>>(),
            [2, 4, 3],
        );
        let config = RnnConfig::new(CellKind::Gru, 3, 32)
            .with_num_layers(2)
            .with_dropout(0.5);

        let rnn = config.init::<B>(&device);
        let x = Tensor::<B, 3>::from_data(x_data.clone(), &device);
        let (a, _) = rnn.forward(x.clone(), None);
        let (b, _) = rnn.forward(x, None);
        assert_eq!(max_abs_diff(a, b), 0.0, "inference is deterministic");

        type AD = Autodiff<B>;
        <AD as Backend>::seed(&device, 7);
        let rnn = config.init::<AD>(&device);
        let x = Tensor::<AD, 3>::from_data(x_data, &device);
        let (a, _) = rnn.forward(x.clone(), None);
        let (b, _) = rnn.forward(x.clone(), None);
        let diff = (a - b).abs().max().into_scalar();
        assert!(
            diff > 0.0,
            "training forward applies dropout between layers"
        );

        // One layer: PyTorch applies no dropout at all.
        let rnn = config.with_num_layers(1).init::<AD>(&device);
        let (a, _) = rnn.forward(x.clone(), None);
        let (b, _) = rnn.forward(x, None);
        assert_eq!((a - b).abs().max().into_scalar(), 0.0);
    }

    #[test]
    fn config_serde_round_trip() {
        let config = RnnConfig::new(CellKind::Gru, 256, 512);
        assert_eq!(config.num_layers, 1);
        assert_eq!(config.dropout, 0.0);
        let json = serde_json::to_string(&config).expect("serialize config");
        assert!(json.contains("\"cell\":\"gru\""), "{json}");
        let parsed: RnnConfig = serde_json::from_str(&json).expect("parse config");
        assert_eq!(parsed.cell, CellKind::Gru);
        assert_eq!(parsed.d_hidden, 512);
        // burn's Config derive requires every field when deserializing (defaults only apply
        // to `RnnConfig::new`), so config files must spell out num_layers and dropout.
        let text = r#"{"cell":"lstm","d_input":4,"d_hidden":8,"num_layers":2,"dropout":0.3}"#;
        let parsed: RnnConfig = serde_json::from_str(text).expect("parse full config");
        assert_eq!(parsed.cell, CellKind::Lstm);
        assert_eq!((parsed.num_layers, parsed.dropout), (2, 0.3));
        assert!(serde_json::from_str::<RnnConfig>(
            r#"{"cell":"rnn","d_input":4,"d_hidden":8,"num_layers":1,"dropout":0.0}"#
        )
        .is_err());
    }
}

/// Encoders against torchvision: key/shape listings of every full model and block-level
/// parity fixtures from `scripts/parity/encoders.py fixtures` (no torch needed here).
mod encoder_parity {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    use burn::backend::NdArray;
    use burn::module::{Module, ParamId};
    use burn::tensor::backend::Backend;
    use burn::tensor::{Tensor, TensorData};
    use burn_store::{ModuleSnapshot, ModuleStore, SafetensorsStore, TensorSnapshot};
    use caplab_models::encoder::inception::{
        BasicConv2dConfig, InceptionA, InceptionB, InceptionC, InceptionD, InceptionE,
    };
    use caplab_models::encoder::resnet::{BlockKind, ResidualBlock, ResidualBlockConfig};
    use caplab_models::encoder::weights::{
        check_torchvision_keys, expected_torchvision_params, load_torchvision_module,
        load_torchvision_module_skipping,
    };
    use caplab_models::encoder::{load_torchvision, Arch, Backbone, EncoderConfig, Vgg, VggConfig};
    use caplab_models::ImportError;

    type B = NdArray<f32>;

    /// Block outputs are O(1); the issue asks for 1e-4.
    const TOL: f32 = 1e-4;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/encoder")
            .join(name)
    }

    /// The tensors of an `*.io.safetensors` fixture.
    fn read_io(case: &str) -> HashMap<String, TensorData> {
        let path = fixture(&format!("{case}.io.safetensors"));
        let mut store = SafetensorsStore::from_file(&path);
        let snapshots = store
            .get_all_snapshots()
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        snapshots
            .iter()
            .map(|(key, snapshot)| (key.clone(), snapshot.to_data().expect("fixture tensor")))
            .collect()
    }

    fn tensor4<X: Backend>(data: &TensorData) -> Tensor<X, 4> {
        Tensor::from_data(data.clone(), &Default::default())
    }

    /// Max abs difference, after checking the shapes agree.
    fn max_abs_diff<X: Backend, const D: usize>(got: Tensor<X, D>, want: &TensorData) -> f32 {
        assert_eq!(got.dims().to_vec(), want.shape.to_vec(), "output shape");
        let got = got.into_data().to_vec::<f32>().expect("f32 output");
        let want = want.to_vec::<f32>().expect("f32 fixture");
        got.iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    fn assert_close<X: Backend, const D: usize>(case: &str, got: Tensor<X, D>, want: &TensorData) {
        let diff = max_abs_diff(got, want);
        assert!(diff <= TOL, "{case}: max abs diff {diff:e} > {TOL:e}");
    }

    /// `BatchNorm` in training mode against torch's `BatchNorm2d` (eps 1e-3, momentum 0.1):
    /// the output with batch statistics, the gradients of the input, `γ` and `β` for an
    /// upstream gradient, the running statistics after the step (PyTorch keeps the unbiased
    /// variance), and the eval-mode output on them. On NdArray and on Flex, whose broadcast
    /// fast path the module is written for.
    #[test]
    fn batch_norm_trains_like_torch_batch_norm_2d() {
        check_batch_norm_training::<burn::backend::Autodiff<NdArray<f32>>>("ndarray");
        check_batch_norm_training::<burn::backend::Autodiff<burn::backend::Flex>>("flex");
    }

    fn check_batch_norm_training<AB: burn::tensor::backend::AutodiffBackend>(backend: &str) {
        use burn::module::{AutodiffModule, Param, RunningState};
        use caplab_models::encoder::BatchNormConfig;

        let io = read_io("batch_norm_train");
        let device = Default::default();
        let t1 = |key: &str| Tensor::<AB, 1>::from_data(io[key].clone(), &device);
        let t4 = |key: &str| Tensor::<AB, 4>::from_data(io[key].clone(), &device);
        let close = |what: &str, got: Vec<f32>, want: &TensorData| {
            let want = want.to_vec::<f32>().expect("f32 fixture");
            assert_eq!(got.len(), want.len(), "{backend} {what}: length");
            let diff = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(diff <= 1e-5, "{backend} {what}: max abs diff {diff:e}");
        };

        let mut bn = BatchNormConfig::new(6)
            .with_epsilon(1e-3)
            .init::<AB>(&device);
        bn.gamma = Param::from_tensor(t1("initial.weight"));
        bn.beta = Param::from_tensor(t1("initial.bias"));
        bn.running_mean = RunningState::new(t1("initial.running_mean"));
        bn.running_var = RunningState::new(t1("initial.running_var"));

        let x = t4("input").require_grad();
        let y = bn.forward(x.clone());
        let grads = (y.clone() * t4("upstream")).sum().backward();
        let vec = |t: Tensor<AB::InnerBackend, 4>| t.into_data().to_vec::<f32>().unwrap();
        let vec1 = |t: Tensor<AB::InnerBackend, 1>| t.into_data().to_vec::<f32>().unwrap();
        close("output", vec(y.inner()), &io["output"]);
        close(
            "grad_input",
            vec(x.grad(&grads).unwrap()),
            &io["grad_input"],
        );
        let grad_gamma = bn.gamma.val().grad(&grads).unwrap();
        close("grad_weight", vec1(grad_gamma), &io["grad_weight"]);
        let grad_beta = bn.beta.val().grad(&grads).unwrap();
        close("grad_bias", vec1(grad_beta), &io["grad_bias"]);
        close(
            "running_mean",
            vec1(bn.running_mean.value_sync().inner()),
            &io["running_mean"],
        );
        close(
            "running_var",
            vec1(bn.running_var.value_sync().inner()),
            &io["running_var"],
        );

        let eval = bn.valid().forward(t4("input").inner());
        close("output_eval", vec(eval), &io["output_eval"]);
    }

    #[test]
    fn arch_names_are_torchvision_names() {
        for (arch, name) in [
            (Arch::ResnetTiny, "resnet_tiny"),
            (Arch::Resnet18, "resnet18"),
            (Arch::Resnet152, "resnet152"),
            (Arch::Vgg16Bn, "vgg16_bn"),
            (Arch::Vgg19, "vgg19"),
            (Arch::InceptionV3, "inception_v3"),
        ] {
            assert_eq!(serde_json::to_string(&arch).unwrap(), format!("\"{name}\""));
            let back: Arch = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(back, arch);
            assert_eq!(name.parse::<Arch>(), Ok(arch));
        }
        assert!("resnet_18".parse::<Arch>().is_err());
        let config = EncoderConfig::new(Arch::Vgg11Bn);
        assert!(config.weights.is_none() && config.transform_input);
        let json = serde_json::to_string(&config).unwrap();
        assert!(json.contains(r#""arch":"vgg11_bn""#), "{json}");
        let back: EncoderConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back.arch, Arch::Vgg11Bn);
    }

    #[test]
    fn arch_dimensions() {
        let dims = |arch: Arch| {
            (
                arch.input_size(),
                arch.feature_dim(),
                arch.spatial_channels(),
                arch.spatial_size(),
            )
        };
        assert_eq!(dims(Arch::ResnetTiny), (64, 128, 128, 2));
        assert_eq!(dims(Arch::Resnet34), (224, 512, 512, 7));
        assert_eq!(dims(Arch::Resnet101), (224, 2048, 2048, 7));
        assert_eq!(dims(Arch::Vgg13Bn), (224, 4096, 512, 14));
        assert_eq!(dims(Arch::InceptionV3), (299, 2048, 2048, 8));
    }

    /// Every key and shape of every full torchvision state_dict maps onto the Burn module.
    #[test]
    fn torchvision_state_dicts_map_onto_modules() {
        let text = std::fs::read_to_string(fixture("state_dict_keys.json")).expect("listing");
        let listing: HashMap<String, Vec<(String, Vec<usize>)>> =
            serde_json::from_str(&text).expect("listing JSON");
        let device = Default::default();
        let mut checked = 0;
        // The CNNs; the vision transformers' listings are checked in tests/vit.rs.
        let cnns = Arch::ALL.into_iter().filter(|a| a.patch_size().is_none());
        for arch in cnns.filter(|a| *a != Arch::ResnetTiny) {
            let keys = listing
                .get(arch.name())
                .unwrap_or_else(|| panic!("no listing for {arch}"));
            let encoder = EncoderConfig::new(arch).init::<B>(&device);
            if let Err(e) = check_torchvision_keys(&encoder, keys) {
                panic!("{arch}: {e}");
            }
            checked += 1;
        }
        assert_eq!(checked, 14);

        // The check can fail: a dropped key, an extra key and a wrong shape are all reported.
        let encoder = EncoderConfig::new(Arch::Resnet18).init::<B>(&device);
        let mut keys = listing["resnet18"].clone();
        let dropped = keys.remove(0).0;
        keys.push(("layer5.0.conv1.weight".into(), vec![1]));
        let bn = keys
            .iter_mut()
            .find(|(k, _)| k == "layer1.0.bn1.running_var")
            .expect("key");
        bn.1 = vec![65];
        match check_torchvision_keys(&encoder, &keys) {
            Err(ImportError::Mismatch {
                missing,
                unexpected,
                errors,
                ..
            }) => {
                assert_eq!(missing, vec![dropped]);
                assert_eq!(unexpected, vec!["layer5.0.conv1.weight".to_string()]);
                assert_eq!(errors.len(), 1, "{errors:?}");
            }
            other => panic!("expected a mismatch, got {other:?}"),
        }
    }

    #[test]
    fn resnet_tiny_shapes() {
        let device = Default::default();
        let encoder = EncoderConfig::new(Arch::ResnetTiny).init::<B>(&device);
        let images = Tensor::<B, 4>::random(
            [2, 3, 64, 64],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let (pooled, spatial) = encoder.forward_both(images.clone());
        assert_eq!(pooled.dims(), [2, 128]);
        assert_eq!(spatial.dims(), [2, 128, 2, 2]);
        let mean = spatial.clone().mean_dim(3).mean_dim(2).flatten::<2>(1, 3);
        let diff = (mean - pooled.clone()).abs().max().into_scalar();
        assert!(diff < 1e-5, "pooled is the spatial mean ({diff})");
        let again = encoder.forward_pooled(images);
        let diff = (again - pooled).abs().max().into_scalar();
        assert!(diff == 0.0, "forward_pooled == forward_both.0");
        let params = encoder.num_params();
        assert_eq!(
            params, 310_896,
            "convolutions and batch norm affine parameters"
        );
    }

    fn residual<X: Backend>(
        kind: BlockKind,
        in_channels: usize,
        planes: usize,
        stride: usize,
    ) -> ResidualBlock<X> {
        ResidualBlockConfig::new(kind, in_channels, planes)
            .with_stride(stride)
            .init(&Default::default())
    }

    /// On NdArray, and on Flex, where convolutions and batch norms run caplab's own kernels.
    #[test]
    fn residual_blocks_match_torchvision() {
        residual_blocks_match_torchvision_on::<B>();
        residual_blocks_match_torchvision_on::<burn::backend::Flex>();
    }

    fn residual_blocks_match_torchvision_on<X: Backend>() {
        for (case, block, weights) in [
            (
                "basic_block",
                residual(BlockKind::Basic, 8, 16, 2),
                "safetensors",
            ),
            ("basic_block", residual(BlockKind::Basic, 8, 16, 2), "pth"),
            (
                "basic_block_identity",
                residual(BlockKind::Basic, 8, 8, 1),
                "safetensors",
            ),
            (
                "bottleneck",
                residual(BlockKind::Bottleneck, 16, 4, 2),
                "safetensors",
            ),
            (
                "bottleneck_identity",
                residual(BlockKind::Bottleneck, 16, 4, 1),
                "safetensors",
            ),
        ] {
            let path = fixture(&format!("{case}.weights.{weights}"));
            let block = load_torchvision_module(block, &path)
                .unwrap_or_else(|e| panic!("{case}.{weights}: {e}"));
            let io = read_io(case);
            assert_close(
                case,
                block.forward(tensor4::<X>(&io["input"])),
                &io["output"],
            );
        }
    }

    /// A copy of the safetensors file `src` with the tensors whose key `keep` accepts, in
    /// float16 or float32 (same keys and shapes).
    fn copy_safetensors(src: &Path, dst: &Path, float16: bool, keep: impl Fn(&str) -> bool) {
        let mut store = SafetensorsStore::from_file(src);
        let snapshots = store.get_all_snapshots().expect("read fixture");
        let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = snapshots
            .iter()
            .filter(|(key, _)| keep(key))
            .map(|(key, snapshot)| {
                let data = snapshot.to_data().expect("tensor");
                let data = if float16 {
                    data.convert::<burn::tensor::f16>()
                } else {
                    data.convert::<f32>()
                };
                (key.clone(), data.shape.to_vec(), data.as_bytes().to_vec())
            })
            .collect();
        let dtype = if float16 {
            safetensors::Dtype::F16
        } else {
            safetensors::Dtype::F32
        };
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
            .iter()
            .map(|(key, shape, bytes)| {
                let view = safetensors::tensor::TensorView::new(dtype, shape.clone(), bytes)
                    .expect("view");
                (key.clone(), view)
            })
            .collect();
        safetensors::serialize_to_file(views, None, dst).expect("write copy");
    }

    #[test]
    fn float16_weights_load_into_a_float32_model() {
        let dst =
            std::env::temp_dir().join(format!("caplab-f16-{}.safetensors", std::process::id()));
        copy_safetensors(
            &fixture("basic_block.weights.safetensors"),
            &dst,
            true,
            |_| true,
        );
        let loaded = load_torchvision_module(residual::<B>(BlockKind::Basic, 8, 16, 2), &dst);
        let _ = std::fs::remove_file(&dst);
        let block = loaded.expect("f16 weights are converted to the model's f32");
        let io = read_io("basic_block");
        // float16 weights: about 3 significant digits.
        let diff = max_abs_diff(block.forward(tensor4(&io["input"])), &io["output"]);
        assert!(diff <= 2e-2, "max abs diff {diff:e}");
    }

    fn vgg_tiny<X: Backend>(batch_norm: bool) -> Vgg<X> {
        VggConfig::new([1, 1, 2, 2, 2], batch_norm)
            .with_widths([8, 16, 16, 32, 32])
            .with_hidden(24)
            .init(&Default::default())
    }

    #[test]
    fn vgg_matches_torchvision() {
        vgg_matches_torchvision_on::<B>();
        vgg_matches_torchvision_on::<burn::backend::Flex>();
    }

    fn vgg_matches_torchvision_on<X: Backend>() {
        for (case, batch_norm) in [("vgg_tiny", false), ("vgg_tiny_bn", true)] {
            let path = fixture(&format!("{case}.weights.safetensors"));
            let vgg = load_torchvision_module(vgg_tiny::<X>(batch_norm), &path)
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            let io = read_io(case);
            let (pooled, spatial) = vgg.forward_both(tensor4(&io["input"]));
            assert_close(case, spatial, &io["spatial"]);
            assert_close(case, pooled, &io["pooled"]);
        }
    }

    /// fc6 and fc7 parameters of [`vgg_tiny`]: 32·7·7 → 24 → 24, weights and biases.
    const VGG_TINY_CLASSIFIER_PARAMS: usize = 32 * 7 * 7 * 24 + 24 + 24 * 24 + 24;

    /// A VGG built without fc6/fc7 has none of their parameters, reads a torchvision
    /// `state_dict` (classifier keys included) skipping them, and gives the full network's grid.
    #[test]
    fn grid_only_vgg_skips_the_classifier() {
        for (case, batch_norm) in [("vgg_tiny", false), ("vgg_tiny_bn", true)] {
            let path = fixture(&format!("{case}.weights.safetensors"));
            let full = load_torchvision_module(vgg_tiny::<B>(batch_norm), &path).unwrap();
            let grid = VggConfig::new([1, 1, 2, 2, 2], batch_norm)
                .with_widths([8, 16, 16, 32, 32])
                .with_hidden(24)
                .with_classifier(false)
                .init::<B>(&Default::default());
            assert!(grid.classifier.is_empty() && !grid.has_classifier());
            assert_eq!(full.classifier.len(), 5);
            let keys = expected_torchvision_params(&grid);
            assert!(
                keys.keys().all(|k| !k.starts_with("classifier.")),
                "{keys:?}"
            );
            let full_keys = expected_torchvision_params(&full);
            assert_eq!(
                full_keys.len() - keys.len(),
                4,
                "fc6 and fc7 weight and bias"
            );
            assert_eq!(
                full.num_params() - grid.num_params(),
                VGG_TINY_CLASSIFIER_PARAMS
            );

            // The strict loader names the classifier keys; the skipping one reads the rest.
            let err = load_torchvision_module(vgg_tiny_grid::<B>(batch_norm), &path)
                .expect_err("classifier keys are unexpected to the strict loader");
            assert!(err.to_string().contains("classifier.0.weight"), "{err}");
            let unbuilt = grid.unbuilt_prefixes();
            assert_eq!(unbuilt, ["classifier."]);
            let grid = load_torchvision_module_skipping(grid, &path, unbuilt)
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            let io = read_io(case);
            let spatial = grid.forward_spatial(tensor4(&io["input"]));
            assert_close(case, spatial.clone(), &io["spatial"]);
            let diff = (spatial - full.forward_spatial(tensor4(&io["input"])))
                .abs()
                .max()
                .into_scalar();
            assert_eq!(diff, 0.0, "{case}: same conv weights, same grid");
        }
    }

    fn vgg_tiny_grid<X: Backend>(batch_norm: bool) -> Vgg<X> {
        VggConfig::new([1, 1, 2, 2, 2], batch_norm)
            .with_widths([8, 16, 16, 32, 32])
            .with_hidden(24)
            .with_classifier(false)
            .init(&Default::default())
    }

    /// A full VGG still needs fc6 and fc7 from the file, through the encoder loader too.
    #[test]
    fn full_vgg_requires_the_classifier_keys() {
        let dst = std::env::temp_dir().join(format!(
            "caplab-vgg-no-classifier-{}.safetensors",
            std::process::id()
        ));
        copy_safetensors(
            &fixture("vgg_tiny.weights.safetensors"),
            &dst,
            false,
            |key| !key.starts_with("classifier."),
        );
        let full = load_torchvision_module_skipping(
            vgg_tiny::<B>(false),
            &dst,
            vgg_tiny::<B>(false).unbuilt_prefixes(),
        );
        let grid =
            load_torchvision_module_skipping(vgg_tiny_grid::<B>(false), &dst, &["classifier."]);
        let _ = std::fs::remove_file(&dst);
        match full.expect_err("fc6/fc7 missing") {
            ImportError::Mismatch { missing, .. } => {
                assert!(
                    missing.iter().any(|k| k == "classifier.0.weight")
                        && missing.iter().any(|k| k == "classifier.3.bias"),
                    "{missing:?}"
                );
            }
            other => panic!("expected a mismatch, got {other}"),
        }
        grid.expect("a grid-only VGG needs no classifier keys");
    }

    /// The encoder loader skips what the encoder was built without: a torchvision-layout VGG
    /// `state_dict` into `EncoderConfig::pooled_layers = false`.
    #[test]
    fn encoder_loader_skips_the_unbuilt_classifier() {
        let encoder = caplab_models::encoder::Encoder::Vgg(vgg_tiny_grid::<B>(true));
        assert!(!encoder.has_pooled());
        let path = fixture("vgg_tiny_bn.weights.safetensors");
        let encoder = caplab_models::encoder::load_encoder(encoder, &path).unwrap();
        let io = read_io("vgg_tiny_bn");
        assert_close(
            "vgg_tiny_bn",
            encoder.forward_spatial(tensor4(&io["input"])),
            &io["spatial"],
        );
        let full = caplab_models::encoder::Encoder::Vgg(vgg_tiny::<B>(true));
        assert!(full.has_pooled() && full.unbuilt_prefixes().is_empty());
    }

    #[test]
    #[should_panic(expected = "built without fc6/fc7")]
    fn grid_only_vgg_has_no_pooled_feature() {
        let vgg = vgg_tiny_grid::<B>(false);
        let images = Tensor::<B, 4>::zeros([1, 3, 32, 32], &Default::default());
        let _ = vgg.forward_pooled(images);
    }

    /// A grid-only VGG's record round-trips; a record saved with fc6/fc7 (caplab's VGG +
    /// attention checkpoints before fc6/fc7 were left out) does not load into it: burn's `Vec`
    /// record loading asserts equal lengths.
    #[test]
    fn grid_only_vgg_records() {
        use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
        let device = Default::default();
        let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::new();
        let path = fixture("vgg_tiny_bn.weights.safetensors");
        let grid =
            load_torchvision_module_skipping(vgg_tiny_grid::<B>(true), &path, &["classifier."])
                .unwrap();
        let bytes = recorder.record(grid.clone().into_record(), ()).unwrap();
        let record = Recorder::<B>::load(&recorder, bytes, &device).unwrap();
        let loaded = vgg_tiny_grid::<B>(true).load_record(record);
        let io = read_io("vgg_tiny_bn");
        assert_close(
            "record",
            loaded.forward_spatial(tensor4(&io["input"])),
            &io["spatial"],
        );

        let full = load_torchvision_module(vgg_tiny::<B>(true), &path).unwrap();
        let bytes = recorder.record(full.into_record(), ()).unwrap();
        let record = Recorder::<B>::load(&recorder, bytes, &device).unwrap();
        let old = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            vgg_tiny_grid::<B>(true).load_record(record)
        }));
        assert!(
            old.is_err(),
            "a record with fc6/fc7 is refused, not half-loaded"
        );
    }

    #[test]
    fn import_reports_missing_and_unexpected_keys() {
        // Basic-block weights into a bottleneck: conv3/bn3 missing; nothing unexpected but shapes differ.
        let err = load_torchvision_module(
            residual::<B>(BlockKind::Bottleneck, 8, 4, 2),
            &fixture("basic_block.weights.safetensors"),
        )
        .expect_err("wrong block");
        match err {
            ImportError::Mismatch {
                missing, errors, ..
            } => {
                assert!(
                    missing.iter().any(|k| k.starts_with("conv3.")),
                    "{missing:?}"
                );
                assert!(!errors.is_empty());
            }
            other => panic!("expected a mismatch, got {other}"),
        }
        // VGG without batch norm given BN weights: the BN keys are unexpected.
        let err = load_torchvision_module(
            vgg_tiny::<B>(false),
            &fixture("vgg_tiny_bn.weights.safetensors"),
        )
        .expect_err("bn weights");
        let text = err.to_string();
        assert!(
            text.contains("unexpected") && text.contains("running_var"),
            "{text}"
        );

        let encoder = EncoderConfig::new(Arch::ResnetTiny).init::<B>(&Default::default());
        assert!(matches!(
            load_torchvision(encoder, Path::new("weights.onnx")),
            Err(ImportError::UnsupportedFormat(_))
        ));
        let missing = EncoderConfig::new(Arch::ResnetTiny)
            .with_weights(Some(fixture("no_such_file.pth")))
            .load::<B>(&Default::default());
        assert!(matches!(missing, Err(ImportError::Read { .. })));
    }

    /// Deterministic weights shared with `scripts/parity/encoders.py` (`formula_tensor`).
    fn formula_values(key: &str, shape: &[usize]) -> Vec<f32> {
        const MASK: u64 = 0xFFFF_FFFF;
        let hash = key.bytes().fold(0x811C_9DC5u64, |h, b| {
            ((h ^ u64::from(b)) * 0x0100_0193) & MASK
        });
        let n: usize = shape.iter().product();
        let fan_in: usize = shape.iter().skip(1).product();
        (0..n as u64)
            .map(|i| {
                let mut x = (i * 0x9E37_79B1 + hash) & MASK;
                x ^= x >> 16;
                x = (x * 0x85EB_CA6B) & MASK;
                x ^= x >> 13;
                x = (x * 0xC2B2_AE35) & MASK;
                x ^= x >> 16;
                let u = x as f64 / 2f64.powi(32);
                let v = if shape.len() == 4 {
                    (2.0 * u - 1.0) * (3.0 / fan_in as f64).sqrt()
                } else if key.ends_with("running_var") || key.ends_with("bn.weight") {
                    0.5 + u
                } else {
                    0.2 * (2.0 * u - 1.0)
                };
                v as f32
            })
            .collect()
    }

    /// Fills every parameter of a torchvision-named module with [`formula_values`].
    fn formula_weights<X: Backend, M: Module<X>>(mut module: M) -> M {
        let snapshots = expected_torchvision_params(&module)
            .into_iter()
            .map(|(key, shape)| {
                let data = TensorData::new(formula_values(&key, &shape), shape);
                let burn_key = key
                    .replace("bn.weight", "bn.gamma")
                    .replace("bn.bias", "bn.beta");
                let path = burn_key.split('.').map(str::to_string).collect();
                TensorSnapshot::from_data(data, path, Vec::new(), ParamId::new())
            })
            .collect();
        let result = module.apply(snapshots, None, None, true);
        assert!(
            result.missing.is_empty() && result.unused.is_empty() && result.errors.is_empty(),
            "{result}"
        );
        module
    }

    /// On NdArray, and on Flex, where convolutions and batch norms run caplab's own kernels.
    #[test]
    fn inception_blocks_match_torchvision() {
        inception_blocks_match_torchvision_on::<B>();
        inception_blocks_match_torchvision_on::<burn::backend::Flex>();
    }

    fn inception_blocks_match_torchvision_on<B: Backend>() {
        let device = Default::default();
        let check = |case: &str, forward: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>| {
            let io = read_io(case);
            assert_close(case, forward(tensor4(&io["input"])), &io["output"]);
        };
        let conv = formula_weights(
            BasicConv2dConfig::new(3, 4, [3, 3])
                .with_stride([2, 2])
                .init::<B>(&device),
        );
        check("basic_conv2d", &|x| conv.forward(x));
        let a = formula_weights(InceptionA::<B>::new(8, 8, &device));
        check("inception_a", &|x| a.forward(x));
        let b = formula_weights(InceptionB::<B>::new(8, &device));
        check("inception_b", &|x| b.forward(x));
        let c = formula_weights(InceptionC::<B>::new(8, 4, &device));
        check("inception_c", &|x| c.forward(x));
        let d = formula_weights(InceptionD::<B>::new(8, &device));
        check("inception_d", &|x| d.forward(x));
        let e = formula_weights(InceptionE::<B>::new(8, &device));
        check("inception_e", &|x| e.forward(x));
    }
}

/// Show, Attend and Tell decoder against PyTorch fixtures from `scripts/parity/attention.py`.
mod attention_parity {
    use std::path::{Path, PathBuf};

    use burn::backend::NdArray;
    use burn::tensor::{Int, Tensor, TensorData};
    use caplab_models::attention::{
        grid_to_sequence, load_pytorch_attention_decoder, AttentionDecoder, AttentionDecoderConfig,
    };
    use caplab_models::search::{BeamSearch, GreedySearch, Search, StepDecoder};
    use caplab_models::ImportError;
    use serde_json::Value;

    type B = NdArray<f32>;

    /// Parity tolerance required by the issue (max abs diff vs PyTorch).
    const TOL: f32 = 1e-5;

    fn fixture_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/attention")
    }

    fn fixture() -> Value {
        let path = fixture_dir().join("decoder.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        serde_json::from_str(&text).expect("fixture is valid JSON")
    }

    fn dim(json: &Value, key: &str) -> usize {
        json[key].as_u64().expect("integer field") as usize
    }

    fn shape(value: &Value) -> Vec<usize> {
        value["shape"]
            .as_array()
            .expect("shape array")
            .iter()
            .map(|d| d.as_u64().expect("shape entry") as usize)
            .collect()
    }

    fn tensor<const D: usize>(value: &Value) -> Tensor<B, D> {
        let values: Vec<f32> = value["values"]
            .as_array()
            .expect("values array")
            .iter()
            .map(|v| v.as_f64().expect("float value") as f32)
            .collect();
        Tensor::from_data(TensorData::new(values, shape(value)), &Default::default())
    }

    fn int_tensor<const D: usize>(value: &Value) -> Tensor<B, D, Int> {
        let values: Vec<i64> = value["values"]
            .as_array()
            .expect("values array")
            .iter()
            .map(|v| v.as_i64().expect("integer value"))
            .collect();
        Tensor::from_data(TensorData::new(values, shape(value)), &Default::default())
    }

    fn config(json: &Value, hidden_dim: usize) -> AttentionDecoderConfig {
        AttentionDecoderConfig {
            embed_dim: dim(json, "embed_dim"),
            hidden_dim,
            attention_dim: dim(json, "attention_dim"),
            dropout: 0.5,
            alpha_c: 1.0,
        }
    }

    fn fresh(json: &Value, hidden_dim: usize) -> AttentionDecoder<B> {
        config(json, hidden_dim).init(
            dim(json, "encoder_dim"),
            dim(json, "vocab_size"),
            &Default::default(),
        )
    }

    fn loaded(json: &Value) -> AttentionDecoder<B> {
        let decoder = fresh(json, dim(json, "hidden_dim"));
        load_pytorch_attention_decoder(decoder, &fixture_dir().join("decoder.safetensors"), "")
            .expect("import the PyTorch state_dict")
    }

    fn assert_close<const D: usize>(name: &str, got: Tensor<B, D>, want: Tensor<B, D>) {
        assert_eq!(got.dims(), want.dims(), "{name}: shape");
        let diff = (got - want).abs().max().into_scalar();
        assert!(diff <= TOL, "{name}: max abs diff {diff} > {TOL}");
    }

    fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    #[test]
    fn step_matches_pytorch() {
        let json = fixture();
        let decoder = loaded(&json);
        let step = &json["step"];
        let state = decoder.start(tensor(&json["encoder_out"]));
        let h0 = state.rnn.h.clone().squeeze_dim::<2>(0);
        let c0 = state.rnn.c.clone().expect("LSTM cell").squeeze_dim::<2>(0);
        assert_close("h0", h0, tensor(&step["h0"]));
        assert_close("c0", c0, tensor(&step["c0"]));
        let inputs: Tensor<B, 2, Int> = int_tensor(&json["inputs"]);
        let [n, _] = inputs.dims();
        let sos = inputs.narrow(1, 0, 1).reshape([n]);
        let (logp, state) = decoder.step(sos, state);
        assert_close("logp", logp, tensor(&step["logp"]));
        assert_close("alpha", state.alpha, tensor(&step["alpha"]));
        assert_close("h", state.rnn.h.squeeze_dim::<2>(0), tensor(&step["h"]));
        let c = state.rnn.c.expect("LSTM cell").squeeze_dim::<2>(0);
        assert_close("c", c, tensor(&step["c"]));
    }

    #[test]
    fn forward_matches_pytorch() {
        let json = fixture();
        let decoder = loaded(&json);
        let (logits, alphas) =
            decoder.forward(tensor(&json["encoder_out"]), int_tensor(&json["inputs"]));
        assert_close("logits", logits, tensor(&json["forward"]["logits"]));
        assert_close("alphas", alphas, tensor(&json["forward"]["alphas"]));
    }

    #[test]
    fn import_reports_mismatches() {
        let json = fixture();
        let path = fixture_dir().join("decoder.safetensors");
        let wrong_hidden = fresh(&json, dim(&json, "hidden_dim") + 1);
        match load_pytorch_attention_decoder(wrong_hidden, &path, "") {
            Err(ImportError::Mismatch { errors, .. }) => {
                assert!(errors.iter().any(|e| e.contains("init_h")), "{errors:?}")
            }
            other => panic!("expected a shape mismatch, got {other:?}"),
        }
        let fresh_decoder = fresh(&json, dim(&json, "hidden_dim"));
        match load_pytorch_attention_decoder(fresh_decoder, &path, "decoder.") {
            Err(ImportError::Mismatch { missing, .. }) => {
                assert!(
                    missing.iter().any(|k| k == "lstm.layers.0.weight_ih"),
                    "{missing:?}"
                )
            }
            other => panic!("expected missing keys, got {other:?}"),
        }
        let fresh_decoder = fresh(&json, dim(&json, "hidden_dim"));
        let absent = fixture_dir().join("absent.safetensors");
        assert!(matches!(
            load_pytorch_attention_decoder(fresh_decoder, &absent, ""),
            Err(ImportError::Read { .. })
        ));
    }

    #[test]
    fn alphas_are_distributions_with_expected_shapes() {
        let json = fixture();
        let decoder = fresh(&json, 9);
        let (n, l, d, t, v) = (3, 5, dim(&json, "encoder_dim"), 4, dim(&json, "vocab_size"));
        let device = Default::default();
        let encoder_out: Tensor<B, 3> = Tensor::random(
            [n, l, d],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let inputs: Tensor<B, 2, Int> =
            Tensor::from_data(TensorData::new([1i64, 4, 5, 6].repeat(n), [n, t]), &device);
        let (logits, alphas) = decoder.forward(encoder_out, inputs);
        assert_eq!(logits.dims(), [n, t, v]);
        assert_eq!(alphas.dims(), [n, t, l]);
        assert!(values(alphas.clone()).iter().all(|a| *a > 0.0 && *a < 1.0));
        for sum in values(alphas.sum_dim(2)) {
            assert!((sum - 1.0).abs() < 1e-5, "attention sums to {sum}");
        }
    }

    #[test]
    fn state_select_reorders_rows() {
        let json = fixture();
        let decoder = loaded(&json);
        let encoder_out: Tensor<B, 3> = tensor(&json["encoder_out"]);
        let device = Default::default();
        let tokens = |ids: Vec<i64>| {
            let len = ids.len();
            Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [len]), &device)
        };
        let (_, state) = decoder.step(tokens(vec![1, 1]), decoder.start(encoder_out));
        let indices = tokens(vec![1, 0, 0]);
        let picked = StepDecoder::select(&decoder, state.clone(), indices.clone());
        assert_eq!(picked.encoder_out.dims()[0], 3);
        assert_close(
            "alpha rows",
            picked.alpha.clone(),
            state.alpha.clone().select(0, indices.clone()),
        );
        // Stepping the selected state equals selecting the rows of the stepped state.
        let (logp_picked, next_picked) = decoder.step(tokens(vec![7, 3, 3]), picked);
        let (logp_all, next_all) = decoder.step(tokens(vec![3, 7]), state);
        assert_close("logp", logp_picked, logp_all.select(0, indices.clone()));
        assert_close(
            "next alpha",
            next_picked.alpha,
            next_all.alpha.select(0, indices),
        );
    }

    #[test]
    fn doubly_stochastic_loss_by_hand() {
        let json = fixture();
        let mut decoder = fresh(&json, 7);
        decoder.alpha_c = 2.0;
        let device = Default::default();
        // Image 0: Σ_t α = [1.5, 0.5] → 0.25 + 0.25; image 1 (step 1 padded): [0.25, 0.75] → 0.625.
        let alphas: Tensor<B, 3> = Tensor::from_data(
            TensorData::new(vec![0.5f32, 0.5, 1.0, 0.0, 0.25, 0.75, 0.6, 0.4], [2, 2, 2]),
            &device,
        );
        let mask: Tensor<B, 2> = Tensor::from_data(
            TensorData::new(vec![1.0f32, 1.0, 1.0, 0.0], [2, 2]),
            &device,
        );
        let loss = decoder.doubly_stochastic_loss(alphas, mask).into_scalar();
        assert!(
            (loss - 2.0 * (0.5 + 0.625) / 2.0).abs() < 1e-6,
            "loss {loss}"
        );
    }

    #[test]
    fn grid_to_sequence_is_row_major() {
        let device = Default::default();
        let grid: Tensor<B, 4> = Tensor::arange(0..12, &device).float().reshape([1, 2, 2, 3]);
        let seq = grid_to_sequence(grid);
        assert_eq!(seq.dims(), [1, 6, 2]);
        // Location y·w + x holds the channels of pixel (y, x).
        let want = [0.0, 6.0, 1.0, 7.0, 2.0, 8.0, 3.0, 9.0, 4.0, 10.0, 5.0, 11.0];
        assert_eq!(values(seq), want);
    }

    #[test]
    fn attend_greedy_returns_one_map_per_word() {
        let json = fixture();
        let decoder = loaded(&json);
        let search = GreedySearch {
            max_len: 6,
            sos: 1,
            eos: 2,
        };
        let encoder_out: Tensor<B, 3> = tensor(&json["encoder_out"]);
        let (hyps, maps) = decoder.attend_greedy(&search, encoder_out.clone());
        let plain = search.run(
            &decoder,
            decoder.start(encoder_out.clone()),
            2,
            &Default::default(),
        );
        assert_eq!(hyps, plain);
        assert_eq!(maps.len(), hyps.len());
        let l = dim(&json, "num_pixels");
        for (hyp, rows) in hyps.iter().zip(&maps) {
            assert_eq!(rows.len(), hyp.tokens.len());
            for map in rows {
                assert_eq!(map.len(), l);
                assert!((map.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
        }
        // The first map is the attention of the <sos> step (PyTorch's `step.alpha`).
        let first_row: Vec<f32> = values(tensor::<2>(&json["step"]["alpha"]))[..l].to_vec();
        let first = maps[0].first().expect("image 0 gets at least one word");
        for (a, b) in first.iter().zip(&first_row) {
            assert!((a - b).abs() <= TOL);
        }
    }

    #[test]
    fn beam_search_scores_match_teacher_forcing() {
        let json = fixture();
        let decoder = loaded(&json);
        let encoder_out: Tensor<B, 3> = tensor(&json["encoder_out"]);
        let device = Default::default();
        let greedy = GreedySearch {
            max_len: 5,
            sos: 1,
            eos: 2,
        };
        let state = || decoder.start(encoder_out.clone());
        let beam1 = BeamSearch::new(1, 5, 1, 2).run_best(&decoder, state(), 2, &device);
        let plain = greedy.run(&decoder, state(), 2, &device);
        for (b, g) in beam1.iter().zip(&plain) {
            assert_eq!(b.tokens, g.tokens);
            assert!((b.log_prob - g.log_prob).abs() < 1e-4);
        }
        // Every beam's score is the teacher-forced log-probability of its caption, which
        // holds only if the state rows follow their beams through `select`.
        let beams = BeamSearch::new(3, 5, 1, 2).run(&decoder, state(), 2, &device);
        for (image, hyps) in beams.iter().enumerate() {
            assert!(!hyps.is_empty());
            for hyp in hyps {
                let mut inputs = vec![1i64];
                inputs.extend(hyp.tokens.iter().map(|&t| i64::from(t)));
                let steps = inputs.len();
                let ids = Tensor::<B, 2, Int>::from_data(
                    TensorData::new(inputs.clone(), [1, steps]),
                    &device,
                );
                let (logits, _) = decoder.forward(encoder_out.clone().narrow(0, image, 1), ids);
                let logp = values(burn::tensor::activation::log_softmax(logits, 2));
                let vocab = dim(&json, "vocab_size");
                let words: f64 = (0..steps - 1)
                    .map(|t| f64::from(logp[t * vocab + inputs[t + 1] as usize]))
                    .sum();
                let with_eos = words + f64::from(logp[(steps - 1) * vocab + 2]);
                let close = |x: f64| (hyp.log_prob - x).abs() < 1e-4;
                assert!(
                    close(words) || close(with_eos),
                    "beam {:?}: {} vs teacher-forced {words} / {with_eos}",
                    hyp.tokens,
                    hyp.log_prob
                );
            }
        }
    }

    #[test]
    fn config_reads_spec_and_rejects_unknown_fields() {
        let spec: AttentionDecoderConfig =
            serde_json::from_str(r#"{"embed_dim": 16, "alpha_c": 0.5}"#).expect("parse spec");
        assert_eq!(spec.embed_dim, 16);
        assert_eq!(spec.alpha_c, 0.5);
        assert_eq!(
            spec.hidden_dim,
            AttentionDecoderConfig::default().hidden_dim
        );
        assert!(serde_json::from_str::<AttentionDecoderConfig>(r#"{"cell": "lstm"}"#).is_err());
    }
}
