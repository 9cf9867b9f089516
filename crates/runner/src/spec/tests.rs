//! Tests of loading, sections and validation together.

use super::*;

#[test]
fn scheduled_sampling_ramps_linearly_from_its_start_epoch() {
    let s = ScheduledSampling {
        start_epoch: 3,
        ramp_epochs: 4,
        max_prob: 0.4,
    };
    let p: Vec<f64> = (1..=8).map(|e| s.probability(e)).collect();
    let expected = [0.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.4, 0.4];
    for (a, b) in p.iter().zip(expected) {
        assert!((a - b).abs() < 1e-12, "{p:?}");
    }
}

const BASE: &str = "[experiment]\nname = \"t\"\n\n[data]\nkind = \"synth\"\nroot = \"shapes\"\n\n[model.encoder]\narch = \"resnet_tiny\"\n";

/// Loads `BASE` plus `extra` with `--set` overrides; the error text on failure.
fn load_with(extra: &str, sets: &[&str]) -> Result<Spec, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.toml");
    std::fs::write(&path, format!("{BASE}{extra}")).unwrap();
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    load(&path, &sets).map_err(|e| format!("{e:#}"))
}

#[test]
fn out_of_range_values_name_the_full_key_and_the_allowed_range() {
    let cases = [
        (
            "model.decoder.num_layers=0",
            "key model.decoder.num_layers must be an integer ≥ 1, got 0",
        ),
        (
            "model.decoder.hidden_dim=0",
            "key model.decoder.hidden_dim must be an integer ≥ 1, got 0",
        ),
        (
            "model.decoder.dropout=1.5",
            "key model.decoder.dropout must be in [0, 1), got 1.5",
        ),
        (
            "preprocess.image_size=5000",
            "key preprocess.image_size must be in 16..=1024 pixels, got 5000",
        ),
        (
            "train.batch_size=0",
            "key train.batch_size must be an integer ≥ 1",
        ),
    ];
    for (set, expected) in cases {
        let err = load_with("", &[set]).unwrap_err();
        assert!(err.contains(expected), "--set {set}: {err}");
    }
    let greedy = "[eval.search]\nmethod = \"greedy\"\n";
    let err = load_with(greedy, &["eval.search.max_len=0"]).unwrap_err();
    assert!(
        err.contains("key eval.search.max_len must be an integer ≥ 1, got 0"),
        "{err}"
    );
    let err = load_with("[eval.search]\nmethod = \"beam\"\nbeam_size = 0\n", &[]).unwrap_err();
    assert!(
        err.contains("key eval.search.beam_size must be an integer ≥ 1, got 0"),
        "{err}"
    );
    let err = load_with("[model.attention]\nattention_dim = 0\n", &[]).unwrap_err();
    assert!(
        err.contains("key model.attention.attention_dim must be an integer ≥ 1, got 0"),
        "{err}"
    );
}

#[test]
fn a_set_table_replaces_the_files_table_instead_of_merging_into_it() {
    let beam = "[eval.search]\nmethod = \"beam\"\nbeam_size = 3\nmax_len = 9\n[train]\ngrad_clip = { global_norm = 5.0 }\n";
    let spec = load_with(
        beam,
        &[
            "eval.search={ method = \"greedy\", max_len = 7 }",
            "train.grad_clip={ value = 1.0 }",
        ],
    )
    .unwrap();
    assert_eq!(spec.eval.search.max_len(), 7);
    assert!(
        matches!(spec.train.grad_clip, Some(GradClip::Value(v)) if v == 1.0),
        "{:?}",
        spec.train.grad_clip
    );
    let leaves = spec.leaves().unwrap();
    assert!(!leaves.contains_key("eval.search.beam_size"), "{leaves:?}");
    // A dotted key still sets one leaf and keeps its siblings.
    let spec = load_with(beam, &["eval.search.beam_size=5"]).unwrap();
    let leaves = spec.leaves().unwrap();
    assert_eq!(leaves["eval.search.beam_size"].as_integer(), Some(5));
    assert_eq!(leaves["eval.search.max_len"].as_integer(), Some(9));
    // Setting below a plain value is an error naming the flag.
    let off = load_with("", &["train.grad_clip=\"none\""]).unwrap();
    assert_eq!(off.train.grad_clip, Some(GradClip::Off));
    assert!(off.to_toml().unwrap().contains("grad_clip = \"none\""));
    let err = load_with("[train]\nlr = 1e-3\n", &["train.lr.x=1"]).unwrap_err();
    assert!(err.contains("train.lr holds a value"), "{err}");
}

#[test]
fn decoder_and_attention_are_one_choice_and_serialise_only_their_keys() {
    let err = load_with("[model.decoder]\n\n[model.attention]\n", &[]).unwrap_err();
    assert!(
        err.contains("model.decoder and model.attention are alternatives"),
        "{err}"
    );
    let rnn = load_with("[model.decoder]\ncell = \"gru\"\n", &[]).unwrap();
    let leaves = rnn.leaves().unwrap();
    assert_eq!(leaves["model.decoder.cell"].as_str(), Some("gru"));
    assert!(!leaves.keys().any(|k| k.starts_with("model.attention")));
    let att = load_with("[model.attention]\nembed_dim = 24\n", &[]).unwrap();
    assert!(att.model.decoder.is_attention());
    let leaves = att.leaves().unwrap();
    assert_eq!(leaves["model.attention.embed_dim"].as_integer(), Some(24));
    assert!(
        !leaves.keys().any(|k| k.starts_with("model.decoder")),
        "{leaves:?}"
    );
    // The resolved spec.toml reads back to the same choice.
    let toml = att.to_toml().unwrap();
    let back: Spec = toml::from_str(&toml).unwrap();
    assert_eq!(back.model, att.model);
    // Neither key: the default RNN decoder.
    let default = load_with("", &[]).unwrap();
    assert_eq!(
        default.model.decoder,
        caplab_models::DecoderChoice::default()
    );
}

#[test]
fn device_accepts_cpu_cuda_wgpu_and_auto_and_names_the_key_otherwise() {
    let cases = [
        ("cpu", DeviceChoice::Cpu),
        ("cuda", DeviceChoice::Cuda(0)),
        ("cuda:0", DeviceChoice::Cuda(0)),
        ("cuda:3", DeviceChoice::Cuda(3)),
        ("wgpu", DeviceChoice::Wgpu(WgpuChoice::Gpu)),
        ("wgpu:0", DeviceChoice::Wgpu(WgpuChoice::Index(0))),
        ("wgpu:2", DeviceChoice::Wgpu(WgpuChoice::Index(2))),
        ("wgpu:cpu", DeviceChoice::Wgpu(WgpuChoice::CpuAdapter)),
        ("auto", DeviceChoice::Auto),
    ];
    for (text, want) in cases {
        let set = format!("experiment.device=\"{text}\"");
        let spec = load_with("", &[&set]).unwrap();
        assert_eq!(spec.experiment.device, want, "{text}");
        // The resolved spec writes it back readably ("cuda:0" as "cuda", as before indices).
        let back: Spec = toml::from_str(&spec.to_toml().unwrap()).unwrap();
        assert_eq!(back.experiment.device, want);
    }
    assert_eq!(DeviceChoice::Cuda(0).to_string(), "cuda");
    assert_eq!(DeviceChoice::Cuda(2).to_string(), "cuda:2");
    assert_eq!(
        DeviceChoice::Wgpu(WgpuChoice::Index(1)).to_string(),
        "wgpu:1"
    );
    for bad in [
        "gpu", "cuda:x", "cuda:", "cuda:-1", "cuda:1:2", "CUDA", "cuda0", "wgpu:", "wgpu:gpu",
        "wgpu:-1", "vulkan",
    ] {
        let set = format!("experiment.device=\"{bad}\"");
        let err = load_with("", &[&set]).unwrap_err();
        assert!(
            err.contains("key experiment.device must be"),
            "{bad}: {err}"
        );
        assert!(err.contains("\"cuda:N\""), "{bad}: {err}");
        assert!(err.contains("\"wgpu:N\""), "{bad}: {err}");
        assert!(err.contains(&format!("got {bad:?}")), "{bad}: {err}");
    }
    let err = load_with("", &["experiment.device=0"]).unwrap_err();
    assert!(err.contains("experiment.device"), "{err}");
}

#[test]
fn precision_defaults_to_f32_and_is_refused_on_the_cpu_otherwise() {
    let spec = load_with("", &[]).unwrap();
    assert_eq!(spec.experiment.precision, Precision::F32);
    assert!(!spec.to_toml().unwrap().contains("precision"));
    let bf16 = load_with(
        "",
        &[
            "experiment.device=\"cuda\"",
            "experiment.precision=\"bf16\"",
        ],
    )
    .unwrap();
    assert_eq!(bf16.experiment.precision, Precision::Bf16);
    assert!(bf16.to_toml().unwrap().contains("precision = \"bf16\""));
    // "auto" may resolve to CUDA: checked when the device is resolved (backend.rs).
    let auto = load_with(
        "",
        &["experiment.device=\"auto\"", "experiment.precision=\"f16\""],
    );
    assert!(auto.is_ok(), "{auto:?}");
    let err = load_with(
        "",
        &["experiment.device=\"cpu\"", "experiment.precision=\"bf16\""],
    )
    .unwrap_err();
    assert!(err.contains("key experiment.precision = \"bf16\""), "{err}");
    assert!(err.contains("the CPU backend trains in f32"), "{err}");
    let err = load_with(
        "",
        &[
            "experiment.device=\"wgpu\"",
            "experiment.precision=\"bf16\"",
        ],
    )
    .unwrap_err();
    assert!(err.contains("\"bf16\" is CUDA-only"), "{err}");
    let f16 = load_with(
        "",
        &[
            "experiment.device=\"wgpu:0\"",
            "experiment.precision=\"f16\"",
        ],
    );
    assert!(f16.is_ok(), "{f16:?}");
    let err = load_with("", &["experiment.precision=\"fp8\""]).unwrap_err();
    assert!(err.contains("experiment.precision"), "{err}");
    assert!(err.contains("bf16"), "{err}");
}

#[test]
fn devices_must_be_distinct_cuda_ordinals_including_the_main_device() {
    let cuda = "experiment.device=\"cuda:1\"";
    let spec = load_with("", &[cuda, "experiment.devices=[1, 0]"]).unwrap();
    assert_eq!(spec.experiment.devices, Some(vec![1, 0]));
    let back: Spec = toml::from_str(&spec.to_toml().unwrap()).unwrap();
    assert_eq!(back.experiment.devices, Some(vec![1, 0]));
    let cases: [(&[&str], &str); 5] = [
        (
            &[cuda, "experiment.devices=[]"],
            "key experiment.devices must list at least one",
        ),
        (
            &[cuda, "experiment.devices=[1, 1]"],
            "must list distinct CUDA ordinals, got 1 twice",
        ),
        (
            &[cuda, "experiment.devices=[0, 2]"],
            "must include the main device experiment.device = \"cuda:1\"",
        ),
        (
            &["experiment.device=\"cpu\"", "experiment.devices=[0]"],
            "key experiment.devices (data-parallel training) needs experiment.device = \"cuda\"",
        ),
        (&["experiment.devices=[0, 1]"], "got \"auto\""),
    ];
    for (sets, expected) in cases {
        let err = load_with("", sets).unwrap_err();
        assert!(err.contains(expected), "{sets:?}: {err}");
    }
    let err = load_with("", &[cuda, "experiment.devices=[-1]"]).unwrap_err();
    assert!(err.contains("experiment.devices"), "{err}");
}

#[test]
fn preprocess_jpeg_draft_reaches_the_image_config_and_is_written_only_when_on() {
    let spec = load_with("", &[]).unwrap();
    assert!(!spec.preprocess.jpeg_draft && !spec.image_config().jpeg_draft);
    // Off, the resolved spec is what it was before the key existed (sweep hashes, init_from).
    assert!(!spec.leaves().unwrap().contains_key("preprocess.jpeg_draft"));
    let on = load_with("[preprocess]\njpeg_draft = true\n", &[]).unwrap();
    assert!(on.image_config().jpeg_draft);
    assert_eq!(
        on.leaves().unwrap().get("preprocess.jpeg_draft"),
        Some(&toml::Value::Boolean(true))
    );
    let set = load_with("", &["preprocess.jpeg_draft=true"]).unwrap();
    assert!(set.image_config().jpeg_draft);
    let err = load_with("", &["preprocess.jpeg_draft=1"]).unwrap_err();
    assert!(err.contains("jpeg_draft") && err.contains("bool"), "{err}");
}

/// A ViT's image size must be a whole number of patches (the error names the key and the patch
/// size); a `clip_*` tower takes CLIP's preprocessing, every other encoder ImageNet's.
#[test]
fn vision_transformers_need_whole_patches_and_clip_towers_take_clip_preprocessing() {
    use caplab_data::image::Resize;
    use caplab_data::resample::{CLIP_MEAN, CLIP_STD};
    let err = load_with(
        "",
        &[
            "model.encoder.arch=\"vit_b_16\"",
            "preprocess.image_size=100",
        ],
    )
    .unwrap_err();
    assert!(
        err.contains(
            "key preprocess.image_size must be a multiple of vit_b_16's patch size 16, got 100"
        ),
        "{err}"
    );
    let vit = load_with(
        "",
        &[
            "model.encoder.arch=\"vit_b_32\"",
            "preprocess.image_size=64",
        ],
    )
    .unwrap();
    let cfg = vit.image_config();
    assert_eq!((cfg.size, cfg.resize), (64, Resize::Squash));
    for arch in ["clip_vit_b_32", "clip_vit_b_16_quickgelu"] {
        let spec = load_with("", &[&format!("model.encoder.arch=\"{arch}\"")]).unwrap();
        let cfg = spec.image_config();
        assert_eq!(cfg.size, 224, "{arch}: the architecture's size");
        assert_eq!(cfg.resize, Resize::BicubicCenterCrop, "{arch}");
        assert_eq!((cfg.mean, cfg.std), (CLIP_MEAN, CLIP_STD), "{arch}");
    }
    let err = load_with("", &["model.encoder.arch=\"clip_vit_b_64\""]).unwrap_err();
    assert!(
        err.contains("clip_vit_b_32_quickgelu") && err.contains("vit_l_16"),
        "{err}"
    );
}
