//! `train.scst.init_from`: a run whose SCST epochs start from another, finished run's best
//! epoch instead of its own cross-entropy epochs.
//!
//! Everything is checked before the new run gets a directory: the source is a finished run,
//! its `model` and `preprocess` sections equal this spec's (the weights must fit and the
//! captions must be tokenised the same way), and its best epoch's checkpoint is on disk. The
//! new run uses the source's vocabulary.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;
use caplab_data::vocab::Vocab;
use caplab_models::Captioner;

use crate::checkpoint::{choose_epoch, load_model};
use crate::history::History;
use crate::spec::{CheckpointChoice, Spec};
use crate::train::step::TrainModel;

/// The finished run a spec's SCST epochs start from.
#[derive(Clone, Debug)]
pub struct InitFrom {
    /// Its run directory.
    pub dir: PathBuf,
    /// Its best epoch (by its own `train.select_metric`), whose weights are loaded.
    pub epoch: usize,
    /// Its vocabulary.
    pub vocab: Vocab,
}

/// Keys of `preprocess` that may differ from the source run: they do not change the weights
/// or the token ids (the vocabulary comes from the source run).
const FREE_PREPROCESS_KEYS: [&str; 4] = [
    "preprocess.max_image_pixels",
    "preprocess.vocab",
    "preprocess.preload_max_mib",
    "preprocess.feature_cache",
];

impl InitFrom {
    /// The run `spec`'s `train.scst.init_from` names, checked; `None` when it is not set.
    pub fn open(spec: &Spec) -> Result<Option<InitFrom>> {
        let Some(dir) = spec.train.scst.as_ref().and_then(|s| s.init_from.clone()) else {
            return Ok(None);
        };
        let key = format!("train.scst.init_from = {:?}", dir.display().to_string());
        if !dir.join("spec.toml").is_file() {
            bail!("{key}: not a caplab run directory (no spec.toml)");
        }
        if !dir.join("report.json").is_file() {
            bail!("{key}: the run has not finished (no report.json); finish it with `caplab resume` first");
        }
        let source = crate::spec::load_exact(&dir.join("spec.toml"))
            .with_context(|| format!("{key}: reading its spec"))?;
        let ours = spec.leaves()?;
        let theirs = source.leaves()?;
        let shaped = |k: &&String| {
            (k.starts_with("model.") || k.starts_with("preprocess."))
                && !FREE_PREPROCESS_KEYS
                    .iter()
                    .any(|free| k.as_str() == *free || k.starts_with(&format!("{free}.")))
        };
        let differing: Vec<String> = ours
            .keys()
            .chain(theirs.keys())
            .filter(shaped)
            .filter(|k| ours.get(*k) != theirs.get(*k))
            .map(|k| {
                let show = |v: Option<&toml::Value>| v.map_or("(absent)".into(), |v| v.to_string());
                format!(
                    "{k} = {} there, {} here",
                    show(theirs.get(k)),
                    show(ours.get(k))
                )
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !differing.is_empty() {
            bail!(
                "{key}: its model and preprocessing must equal this spec's; they differ in {}",
                differing.join("; ")
            );
        }
        let history = History::load(&dir).with_context(|| format!("{key}: reading its history"))?;
        let epoch = choose_epoch(&source, &dir, &history, CheckpointChoice::Best)
            .with_context(|| format!("{key}: its best epoch"))?;
        let vocab = Vocab::load(&dir.join("vocab.json"))
            .with_context(|| format!("{key}: reading its vocabulary"))?;
        Ok(Some(InitFrom { dir, epoch, vocab }))
    }

    /// `captioner` with the source run's best-epoch weights.
    pub fn load<B: Backend>(
        &self,
        captioner: Captioner<B>,
        device: &B::Device,
    ) -> Result<Captioner<B>> {
        let model = TrainModel::for_inference(captioner, 0);
        Ok(load_model(model, &self.dir, self.epoch, device)?.captioner)
    }
}
