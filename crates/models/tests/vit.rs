//! Vision transformers against their references: torchvision's `VisionTransformer` and
//! open_clip's CLIP image tower, on reduced-width fixtures from `scripts/parity/vit.py fixtures`
//! (no torch needed here), the key listings of the full models, and the import errors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, Flex, NdArray};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use burn_store::{ModuleStore, SafetensorsStore};
use caplab_models::encoder::clip::{self, ClipVisionConfig};
use caplab_models::encoder::weights::{
    check_open_clip_keys, check_torchvision_keys, load_open_clip, load_torchvision_module,
};
use caplab_models::encoder::{
    load_encoder, Arch, Backbone, Encoder, EncoderConfig, VisionTransformer,
    VisionTransformerConfig,
};
use caplab_models::ImportError;

type B = NdArray<f32>;

/// Outputs are O(1): the tolerance the issue asks for.
const TOL: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vit")
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

/// Max abs difference divided by max |reference|, after checking the shapes agree.
fn relative_error<X: Backend, const D: usize>(got: Tensor<X, D>, want: &TensorData) -> f32 {
    assert_eq!(got.dims().to_vec(), want.shape.to_vec(), "output shape");
    let got = got.into_data().to_vec::<f32>().expect("f32 output");
    let want = want.to_vec::<f32>().expect("f32 fixture");
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    diff / scale
}

fn assert_close<X: Backend, const D: usize>(case: &str, got: Tensor<X, D>, want: &TensorData) {
    let error = relative_error(got, want);
    assert!(error <= TOL, "{case}: relative error {error:e} > {TOL:e}");
}

fn input<X: Backend>(data: &TensorData) -> Tensor<X, 4> {
    Tensor::from_data(data.clone(), &Default::default())
}

/// The reduced-width torchvision ViT of the fixture (32 px, patch 8, 2 blocks, width 16).
fn vit_tiny<X: Backend>() -> VisionTransformer<X> {
    VisionTransformerConfig::new(32, 8, 2, 2, 16, 24).init(&Default::default())
}

/// The reduced-width CLIP tower of the fixture (32 px, patch 8, 2 blocks, width 16, embed 8).
fn clip_tiny<X: Backend>(quick_gelu: bool) -> clip::VisionTransformer<X> {
    ClipVisionConfig::new(32, 8, 2, 16, 8)
        .with_head_width(8)
        .with_mlp_ratio(1.5)
        .with_quick_gelu(quick_gelu)
        .init(&Default::default())
}

fn listing() -> HashMap<String, Vec<(String, Vec<usize>)>> {
    let text = std::fs::read_to_string(fixture("state_dict_keys.json")).expect("listing");
    serde_json::from_str(&text).expect("listing JSON")
}

/// Every key and shape of torchvision's vit_b_16/vit_b_32/vit_l_16 and of open_clip's whole
/// ViT-B-32/ViT-B-16 (its `visual.*` part) maps onto the Burn modules; `heads` and the text
/// tower are left out.
#[test]
fn vit_and_clip_state_dicts_map_onto_modules() {
    let listing = listing();
    let device = Default::default();
    for arch in [Arch::VitB16, Arch::VitB32, Arch::VitL16] {
        let encoder = EncoderConfig::new(arch).init::<B>(&device);
        let keys = &listing[arch.name()];
        if let Err(e) = check_torchvision_keys(&encoder, keys) {
            panic!("{arch}: {e}");
        }
    }
    for (arch, listed) in [
        (Arch::ClipVitB32, "clip_vit_b_32"),
        (Arch::ClipVitB32QuickGelu, "clip_vit_b_32"),
        (Arch::ClipVitB16, "clip_vit_b_16"),
        (Arch::ClipVitB16QuickGelu, "clip_vit_b_16"),
    ] {
        let encoder = EncoderConfig::new(arch).init::<B>(&device);
        if let Err(e) = check_open_clip_keys(&encoder, &listing[listed]) {
            panic!("{arch}: {e}");
        }
    }
    // The check can fail: the B/32 listing does not fit B/16 (conv and positions differ).
    let b16 = EncoderConfig::new(Arch::VitB16).init::<B>(&device);
    let err = check_torchvision_keys(&b16, &listing["vit_b_32"]).expect_err("B/32 into B/16");
    let text = err.to_string();
    assert!(
        text.contains("conv_proj.weight") && text.contains("encoder.pos_embedding"),
        "{text}"
    );
}

#[test]
fn vit_matches_torchvision() {
    vit_matches_torchvision_on::<B>();
    vit_matches_torchvision_on::<Flex>();
}

fn vit_matches_torchvision_on<X: Backend>() {
    let io = read_io("vit_tiny");
    for file in ["vit_tiny.weights.safetensors", "vit_tiny.weights.pth"] {
        let vit = load_torchvision_module(vit_tiny::<X>(), &fixture(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let (pooled, spatial) = vit.forward_both(input(&io["input"]));
        assert_close(&format!("{file} class token"), pooled, &io["pooled"]);
        assert_close(&format!("{file} patch grid"), spatial, &io["spatial"]);
        // At 48 px the positional embedding is resampled as torchvision's interpolate_embeddings.
        let (pooled, spatial) = vit.forward_both(input(&io["input48"]));
        assert_close(
            &format!("{file} class token, 48 px"),
            pooled,
            &io["pooled48"],
        );
        assert_close(
            &format!("{file} patch grid, 48 px"),
            spatial,
            &io["spatial48"],
        );
    }
}

#[test]
fn clip_tower_matches_open_clip() {
    clip_tower_matches_open_clip_on::<B>();
    clip_tower_matches_open_clip_on::<Flex>();
}

fn clip_tower_matches_open_clip_on<X: Backend>() {
    for (case, file, quick_gelu) in [
        ("clip_tiny", "clip_tiny.weights.safetensors", true),
        ("clip_tiny", "clip_tiny.visual.pth", true),
        (
            "clip_tiny_gelu",
            "clip_tiny_gelu.weights.safetensors",
            false,
        ),
    ] {
        let io = read_io(case);
        let tower = load_open_clip(clip_tiny::<X>(quick_gelu), &fixture(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let (pooled, spatial) = tower.forward_both(input(&io["input"]));
        assert_close(&format!("{file} embedding"), pooled, &io["pooled"]);
        assert_close(&format!("{file} patch grid"), spatial, &io["spatial"]);
    }
    // The activation matters: QuickGELU weights run with GELU give other features.
    let io = read_io("clip_tiny");
    let tower = load_open_clip(
        clip_tiny::<X>(false),
        &fixture("clip_tiny.weights.safetensors"),
    )
    .expect("same keys");
    let (pooled, _) = tower.forward_both(input(&io["input"]));
    assert!(relative_error(pooled, &io["pooled"]) > 1e-3);
}

/// A safetensors copy of `src` without `drop` and with an extra `add` tensor.
fn edited_copy(src: &Path, dst: &Path, drop: &str, add: &str) {
    let mut store = SafetensorsStore::from_file(src);
    let snapshots = store.get_all_snapshots().expect("read fixture");
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = snapshots
        .iter()
        .filter(|(key, _)| key.as_str() != drop)
        .map(|(key, snapshot)| {
            let data = snapshot.to_data().expect("tensor");
            (key.clone(), data.shape.to_vec(), data.as_bytes().to_vec())
        })
        .collect();
    tensors.push((add.to_string(), vec![2], vec![0; 8]));
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(key, shape, bytes)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .expect("view");
            (key.clone(), view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, dst).expect("write edited copy");
}

/// Missing and extra keys are named as the file names them (torchvision's `encoder_layer_N`
/// and `mlp.3`, open_clip's `visual.` prefix), with the file.
#[test]
fn missing_and_extra_keys_are_named() {
    let dir = std::env::temp_dir().join(format!("caplab-vit-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let vit_file = dir.join("vit.safetensors");
    edited_copy(
        &fixture("vit_tiny.weights.safetensors"),
        &vit_file,
        "encoder.layers.encoder_layer_1.mlp.3.weight",
        "encoder.layers.encoder_layer_2.ln_1.weight",
    );
    let clip_file = dir.join("clip.safetensors");
    edited_copy(
        &fixture("clip_tiny.weights.safetensors"),
        &clip_file,
        "visual.ln_post.weight",
        "visual.attn_pool.query",
    );
    let vit = load_torchvision_module(vit_tiny::<B>(), &vit_file);
    let clip = load_open_clip(clip_tiny::<B>(true), &clip_file);
    let _ = std::fs::remove_dir_all(&dir);
    for (result, file, missing_key, extra_key) in [
        (
            vit.map(|_| ()),
            &vit_file,
            "encoder.layers.encoder_layer_1.mlp.3.weight",
            "encoder.layers.encoder_layer_2.ln_1.weight",
        ),
        (
            clip.map(|_| ()),
            &clip_file,
            "visual.ln_post.weight",
            "visual.attn_pool.query",
        ),
    ] {
        match result {
            Err(ImportError::Mismatch {
                path,
                missing,
                unexpected,
                ..
            }) => {
                assert_eq!(&path, file);
                assert_eq!(missing, vec![missing_key.to_string()]);
                assert_eq!(unexpected, vec![extra_key.to_string()]);
            }
            other => panic!("expected a mismatch, got {other:?}"),
        }
    }
}

/// A CLIP checkpoint given to a torchvision ViT, and the reverse, are errors naming the file
/// and the keys that show its layout.
#[test]
fn clip_and_torchvision_checkpoints_are_told_apart() {
    let device = Default::default();
    let clip_file = fixture("clip_tiny.weights.safetensors");
    let vit = Encoder::<B>::Vit(vit_tiny());
    match load_encoder(vit, &clip_file) {
        Err(e @ ImportError::WrongLayout { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&clip_file.display().to_string()), "{text}");
            assert!(text.contains("CLIP") && text.contains("visual."), "{text}");
        }
        other => panic!("expected WrongLayout, got {other:?}"),
    }
    // A whole-model CNN encoder refuses the CLIP file the same way.
    let resnet = EncoderConfig::new(Arch::ResnetTiny).init::<B>(&device);
    assert!(matches!(
        load_encoder(resnet, &clip_file),
        Err(ImportError::WrongLayout { .. })
    ));
    let vit_file = fixture("vit_tiny.weights.pth");
    let tower = Encoder::<B>::Clip(clip_tiny(true));
    match load_encoder(tower, &vit_file) {
        Err(e @ ImportError::WrongLayout { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&vit_file.display().to_string()), "{text}");
            assert!(
                text.contains("torchvision ViT") && text.contains("conv_proj.weight"),
                "{text}"
            );
        }
        other => panic!("expected WrongLayout, got {other:?}"),
    }
    // The right pairings load through the same entry point.
    assert!(load_encoder(Encoder::<B>::Vit(vit_tiny()), &vit_file).is_ok());
    assert!(load_encoder(Encoder::<B>::Clip(clip_tiny(true)), &clip_file).is_ok());
}

#[test]
fn image_size_must_be_a_multiple_of_the_patch_size() {
    let err = Arch::VitB16.check_image_size(100).expect_err("100 px");
    assert!(err.contains("16") && err.contains("100"), "{err}");
    let err = Arch::ClipVitB32.check_image_size(240).expect_err("240 px");
    assert!(err.contains("32") && err.contains("240"), "{err}");
    assert!(Arch::VitB32.check_image_size(224).is_ok());
    assert!(Arch::VitL16.check_image_size(64).is_ok());
    // caplab's vit_tiny has patches of 8.
    let err = Arch::VitTiny.check_image_size(60).expect_err("60 px");
    assert!(
        err.contains("vit_tiny") && err.contains("8") && err.contains("60"),
        "{err}"
    );
    assert!(Arch::VitTiny.check_image_size(64).is_ok());
    // CNNs take any size.
    assert!(Arch::Resnet50.check_image_size(100).is_ok());
    let err = VisionTransformerConfig::vit_b_16(100)
        .check()
        .expect_err("config");
    assert!(err.contains("100") && err.contains("16"), "{err}");
}

#[test]
fn arch_names_and_dimensions() {
    for (arch, name, dims) in [
        (Arch::VitB16, "vit_b_16", (224, 768, 768, 14)),
        (Arch::VitB32, "vit_b_32", (224, 768, 768, 7)),
        (Arch::VitL16, "vit_l_16", (224, 1024, 1024, 14)),
        (Arch::VitTiny, "vit_tiny", (64, 128, 128, 8)),
        (Arch::ClipVitB32, "clip_vit_b_32", (224, 512, 768, 7)),
        (
            Arch::ClipVitB32QuickGelu,
            "clip_vit_b_32_quickgelu",
            (224, 512, 768, 7),
        ),
        (Arch::ClipVitB16, "clip_vit_b_16", (224, 512, 768, 14)),
        (
            Arch::ClipVitB16QuickGelu,
            "clip_vit_b_16_quickgelu",
            (224, 512, 768, 14),
        ),
    ] {
        assert_eq!(serde_json::to_string(&arch).unwrap(), format!("\"{name}\""));
        assert_eq!(name.parse::<Arch>(), Ok(arch));
        let got = (
            arch.input_size(),
            arch.feature_dim(),
            arch.spatial_channels(),
            arch.spatial_size(),
        );
        assert_eq!(got, dims, "{arch}");
    }
    // The activation follows the name, as open_clip's `-quickgelu` models.
    let device = Default::default();
    for (arch, quick) in [
        (Arch::ClipVitB32, false),
        (Arch::ClipVitB32QuickGelu, true),
        (Arch::ClipVitB16, false),
        (Arch::ClipVitB16QuickGelu, true),
    ] {
        let Encoder::Clip(tower) = EncoderConfig::new(arch).init::<NdArray<f32>>(&device) else {
            panic!("{arch} is a CLIP tower");
        };
        assert!(arch.is_clip());
        assert_eq!(
            tower.transformer.resblocks[0].mlp.quick_gelu, quick,
            "{arch}"
        );
    }
    assert!(!Arch::VitB16.is_clip());
    let err = "vit_h_14".parse::<Arch>().expect_err("unknown");
    assert!(
        err.contains("vit_b_16") && err.contains("clip_vit_b_32"),
        "{err}"
    );
}

/// With `cut` = detach before the last block (`trainable = "last_block"`), gradients reach the
/// last block and not the patch embedding; without it they reach both.
#[test]
fn last_block_cut_stops_gradients_before_the_last_block() {
    type A = Autodiff<NdArray<f32>>;
    let device = Default::default();
    let images = || {
        Tensor::<A, 4>::random(
            [1, 3, 32, 32],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        )
    };
    for detach in [false, true] {
        let cut = |x: Tensor<A, 4>| if detach { x.detach() } else { x };
        let vit = vit_tiny::<A>();
        let (pooled, grid) = vit.forward_both_cut(images(), &cut);
        let grads = (pooled.sum() + grid.sum()).backward();
        let first = vit.conv_proj.weight.val().grad(&grads).is_some();
        let last = vit.encoder.layers[1]
            .mlp
            .linear_1
            .weight
            .val()
            .grad(&grads)
            .is_some();
        assert_eq!((first, last), (!detach, true), "vit, detach {detach}");

        let tower = clip_tiny::<A>(true);
        let (pooled, grid) = tower.forward_both_cut(images(), &cut);
        let grads = (pooled.sum() + grid.sum()).backward();
        let first = tower.conv1.weight.val().grad(&grads).is_some();
        let last = tower.transformer.resblocks[1]
            .mlp
            .c_fc
            .weight
            .val()
            .grad(&grads)
            .is_some();
        assert_eq!((first, last), (!detach, true), "clip, detach {detach}");
    }
}

/// caplab's own `vit_tiny` is the same `VisionTransformer` module with its small configuration:
/// at 64 px its class token is the 128-wide global feature and its patch tokens the 8×8 grid;
/// at 32 px (resampled positions) the grid is 4×4.
#[test]
fn vit_tiny_builds_and_gives_the_patch_grid() {
    use burn::module::Module;
    let device = Default::default();
    let Encoder::Vit(vit) = EncoderConfig::new(Arch::VitTiny).init::<B>(&device) else {
        panic!("vit_tiny is a VisionTransformer");
    };
    assert_eq!(vit.hidden_dim(), 128);
    assert_eq!(vit.encoder.layers.len(), 4);
    assert_eq!(vit.num_params(), 563_328);
    let config = VisionTransformerConfig::vit_tiny(64);
    assert_eq!(
        (config.patch_size, config.num_heads, config.mlp_dim),
        (8, 4, 256)
    );
    assert_eq!(config.grid_size(), 8);
    let encoder = Encoder::Vit(vit);
    for (size, grid) in [(64, 8), (32, 4)] {
        let images = Tensor::<B, 4>::random(
            [2, 3, size, size],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let (pooled, spatial) = encoder.forward_both(images);
        assert_eq!(pooled.dims(), [2, Arch::VitTiny.feature_dim()], "{size} px");
        assert_eq!(
            spatial.dims(),
            [2, Arch::VitTiny.spatial_channels(), grid, grid],
            "{size} px"
        );
    }
}
