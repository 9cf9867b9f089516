//! Checks of a spec that serde cannot express: value ranges, combinations of keys, and the
//! sections other crates own. Every error names the full key and what it accepts.

use anyhow::{bail, Result};

use super::sections::{
    DeviceChoice, ExperimentSpec, GradClip, LrSchedule, Precision, ScstBaseline, Spec,
};

impl ExperimentSpec {
    /// Checks `device`, `precision` and `devices` together (what serde cannot).
    pub fn validate_device(&self) -> Result<()> {
        if self.device == DeviceChoice::Cpu && !self.precision.is_f32() {
            bail!(
                "invalid spec: key experiment.precision = {:?} needs a CUDA device: the CPU \
                 backend trains in f32 (set experiment.precision = \"f32\", or \
                 experiment.device = \"cuda\", or \"wgpu\" for f16)",
                self.precision.name()
            );
        }
        if matches!(self.device, DeviceChoice::Wgpu(_)) && self.precision == Precision::Bf16 {
            bail!(
                "invalid spec: key experiment.precision = \"bf16\" is CUDA-only: burn's wgpu \
                 backend has no bfloat16 (experiment.device = \"{}\"); use \"f16\" on an \
                 adapter with shader f16, or \"f32\"",
                self.device
            );
        }
        let Some(devices) = &self.devices else {
            return Ok(());
        };
        if devices.is_empty() {
            bail!(
                "invalid spec: key experiment.devices must list at least one CUDA ordinal, \
                 e.g. [0, 1] (leave it out to train on experiment.device alone)"
            );
        }
        if !matches!(self.device, DeviceChoice::Cuda(_)) {
            bail!(
                "invalid spec: key experiment.devices (data-parallel training) needs \
                 experiment.device = \"cuda\" or \"cuda:N\", got {:?}",
                self.device.to_string()
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for &d in devices {
            if !seen.insert(d) {
                bail!(
                    "invalid spec: key experiment.devices must list distinct CUDA ordinals, \
                     got {d} twice in {devices:?}"
                );
            }
        }
        if let DeviceChoice::Cuda(main) = self.device {
            if !devices.contains(&main) {
                bail!(
                    "invalid spec: key experiment.devices {devices:?} must include the main \
                     device experiment.device = \"{}\" (validation and the report run there)",
                    self.device
                );
            }
        }
        Ok(())
    }
}

impl Spec {
    /// Checks value ranges that serde cannot express.
    pub fn validate(&self) -> Result<()> {
        let t = &self.train;
        let init_from = t.scst.as_ref().is_some_and(|s| s.init_from.is_some());
        if init_from && t.epochs != 0 {
            bail!(
                "invalid spec: key train.epochs must be 0 with train.scst.init_from (the SCST \
                 epochs start from that run's best epoch), got {}",
                t.epochs
            );
        }
        if t.scst.is_some() && t.early_stopping_patience.is_some() {
            bail!(
                "invalid spec: keys train.early_stopping_patience and [train.scst] cannot be \
                 combined: the SCST epochs follow all train.epochs cross-entropy epochs"
            );
        }
        let checks: [(bool, &str, &str); 6] = [
            (
                t.epochs >= 1 || init_from,
                "train.epochs",
                "an integer ≥ 1 (0 only with train.scst.init_from)",
            ),
            (t.batch_size >= 1, "train.batch_size", "an integer ≥ 1"),
            (
                t.decoder_threads >= 1,
                "train.decoder_threads",
                "an integer ≥ 1",
            ),
            (
                t.captions_per_image >= 1,
                "train.captions_per_image",
                "an integer ≥ 1",
            ),
            (t.lr > 0.0 && t.lr.is_finite(), "train.lr", "a number > 0"),
            (
                self.eval.batch_size >= 1,
                "eval.batch_size",
                "an integer ≥ 1",
            ),
        ];
        for (ok, key, allowed) in checks {
            if !ok {
                bail!("invalid spec: key {key} must be {allowed}");
            }
        }
        if self.experiment.name.is_empty()
            || !self
                .experiment
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            bail!(
                "invalid spec: key experiment.name must be letters, digits, '-', '_' or '.', got {:?}",
                self.experiment.name
            );
        }
        self.experiment.validate_device()?;
        // Sections owned by other crates validate themselves; their errors name the full key.
        self.eval
            .search
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid spec: {e}"))?;
        self.model
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid spec: {e}"))?;
        // A decoder with a learned position table (model.transformer.max_positions) reads
        // `<sos>` and the words of every caption it trains on, samples or decodes.
        let scst_len = self
            .train
            .scst
            .as_ref()
            .map(|s| ("train.scst.max_len", s.max_len));
        let lengths = [
            (
                "preprocess.max_caption_len",
                self.preprocess.max_caption_len,
            ),
            ("eval.search.max_len", self.eval.search.max_len()),
        ];
        for (key, words) in lengths.into_iter().chain(scst_len) {
            self.model
                .decoder
                .check_length(key, words)
                .map_err(|e| anyhow::anyhow!("invalid spec: {e}"))?;
        }
        if let Some(clip) = self.train.grad_clip {
            let (key, v) = match clip {
                GradClip::GlobalNorm(v) => ("global_norm", v),
                GradClip::PerTensorNorm(v) => ("per_tensor_norm", v as f64),
                GradClip::Value(v) => ("value", v as f64),
                GradClip::Off => ("none", 1.0),
            };
            if !(v > 0.0 && v.is_finite()) {
                bail!("invalid spec: key train.grad_clip.{key} must be a number > 0, got {v}");
            }
        }
        match self.image_config().validate() {
            Err(caplab_data::DataError::Invalid { key, message }) => {
                let key = match key.as_str() {
                    "size" => "image_size",
                    "max_pixels" => "max_image_pixels",
                    other => other,
                };
                bail!("invalid spec: key preprocess.{key} {message}")
            }
            other => other?,
        }
        // A vision transformer cuts the image into whole patches.
        if let Err(message) = self.model.encoder.arch.check_image_size(self.image_size()) {
            bail!("invalid spec: key preprocess.image_size {message}");
        }
        if let Err(caplab_data::DataError::Invalid { key, message }) =
            caplab_data::vocab::check_vocab(&self.preprocess.tokenizer, &self.preprocess.vocab)
        {
            bail!("invalid spec: key preprocess.{key} {message}");
        }
        let ls = self.train.label_smoothing;
        if !(0.0..1.0).contains(&ls) {
            bail!("invalid spec: key train.label_smoothing must be in [0, 1), got {ls}");
        }
        if let LrSchedule::Step {
            every_epochs: 0, ..
        } = self.train.lr_schedule
        {
            bail!("invalid spec: key train.lr_schedule.every_epochs must be an integer ≥ 1");
        }
        if let LrSchedule::Noam { warmup_steps: 0 } = self.train.lr_schedule {
            bail!("invalid spec: key train.lr_schedule.warmup_steps must be an integer ≥ 1");
        }
        if let Some(scst) = &self.train.scst {
            let checks: [(bool, &str, &str); 6] = [
                (scst.epochs >= 1, "epochs", "an integer ≥ 1"),
                (scst.lr > 0.0 && scst.lr.is_finite(), "lr", "a number > 0"),
                (
                    scst.samples_per_image >= 1,
                    "samples_per_image",
                    "an integer ≥ 1",
                ),
                (scst.max_len >= 1, "max_len", "an integer ≥ 1"),
                (
                    scst.temperature > 0.0 && scst.temperature.is_finite(),
                    "temperature",
                    "a number > 0",
                ),
                (
                    scst.reward.cider >= 0.0
                        && scst.reward.bleu4 >= 0.0
                        && scst.reward.cider + scst.reward.bleu4 > 0.0,
                    "reward",
                    "weights ≥ 0, not all 0, e.g. { cider = 1.0, bleu4 = 0.0 }",
                ),
            ];
            for (ok, key, allowed) in checks {
                if !ok {
                    bail!("invalid spec: key train.scst.{key} must be {allowed}");
                }
            }
            if scst.baseline == ScstBaseline::MeanOfOthers && scst.samples_per_image < 2 {
                bail!(
                    "invalid spec: key train.scst.baseline = \"mean_of_others\" needs \
                     train.scst.samples_per_image ≥ 2, got {}",
                    scst.samples_per_image
                );
            }
        }
        if let Some(ss) = &self.train.scheduled_sampling {
            if !(0.0..=1.0).contains(&ss.max_prob) {
                bail!(
                    "invalid spec: key train.scheduled_sampling.max_prob must be in [0, 1], got {}",
                    ss.max_prob
                );
            }
            if self.model.decoder.is_attention() {
                bail!(
                    "invalid spec: key train.scheduled_sampling is supported with model.decoder, \
                     not {}",
                    self.model.decoder.section()
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod transformer_tests {
    use super::*;

    /// A spec with a small transformer decoder with a learned table of 21 positions.
    fn check(transformer: &str, extra: &str) -> Result<(), String> {
        let text = format!(
            "[experiment]\nname = \"t\"\n[data]\nkind = \"synth\"\nroot = \"shapes\"\n\
             [model.encoder]\narch = \"resnet_tiny\"\n[model.transformer]\n{transformer}\n{extra}"
        );
        let spec: Spec = toml::from_str(&text).map_err(|e| e.to_string())?;
        spec.validate().map_err(|e| format!("{e:#}"))
    }

    const LEARNED: &str = "d_model = 8\nnum_heads = 2\npositions = \"learned\"\nmax_positions = 21";
    const FITS: &str = "[preprocess]\nmax_caption_len = 20\n";

    #[test]
    fn caption_lengths_beyond_a_learned_position_table_name_their_key() {
        assert_eq!(check(LEARNED, FITS), Ok(()));
        for (extra, key) in [
            (
                "[eval.search]\nmethod = \"greedy\"\nmax_len = 21\n",
                "eval.search.max_len",
            ),
            ("[train.scst]\nmax_len = 24\n", "train.scst.max_len"),
        ] {
            let err = check(LEARNED, &format!("{FITS}{extra}")).expect_err(key);
            assert!(
                err.contains(&format!(
                    "key {key} must be at most 20 with model.transformer.max_positions = 21"
                )),
                "{err}"
            );
        }
        let err = check(LEARNED, "").expect_err("30 words by default");
        assert!(
            err.contains("key preprocess.max_caption_len must be at most 20"),
            "{err}"
        );
        // Sinusoids have no table: any length.
        let sinusoidal = "d_model = 8\nnum_heads = 2\nmax_positions = 21";
        assert_eq!(
            check(
                sinusoidal,
                "[eval.search]\nmethod = \"greedy\"\nmax_len = 200\n"
            ),
            Ok(())
        );
    }

    #[test]
    fn transformer_heads_noam_warmup_and_scheduled_sampling_name_their_key() {
        let err = check("d_model = 10\nnum_heads = 4", "").expect_err("4 does not divide 10");
        assert!(
            err.contains(
                "key model.transformer.num_heads must divide model.transformer.d_model = 10, got 4"
            ),
            "{err}"
        );
        let noam = "[train]\nlr_schedule = { kind = \"noam\", warmup_steps = 0 }\n";
        let err = check(LEARNED, &format!("{FITS}{noam}")).expect_err("no warm-up");
        assert!(
            err.contains("key train.lr_schedule.warmup_steps must be an integer ≥ 1"),
            "{err}"
        );
        let ss = "[train]\nscheduled_sampling = { max_prob = 0.2 }\n";
        let err = check(LEARNED, &format!("{FITS}{ss}")).expect_err("RNN only");
        assert!(err.contains("not model.transformer"), "{err}");
    }
}
