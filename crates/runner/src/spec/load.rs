//! Loading a spec. Layers, later ones winning: the TOML file, then `CAPLAB_SECTION__KEY=value`
//! environment variables, then `--set section.key=value` flags (values parsed as TOML, so `1e-3`
//! works). A run's saved `spec.toml` is read back exactly ([`load_exact`]); `caplab eval` may
//! change only its `eval.*` keys ([`load_for_eval`]).

use std::path::Path;

use anyhow::{bail, Context, Result};
use figment::providers::{Env, Format, Toml};
use figment::Figment;

use super::sections::Spec;

pub fn load(path: &Path, overrides: &[String]) -> Result<Spec> {
    if !path.is_file() {
        bail!(
            "spec file {} does not exist (see experiments/ for examples)",
            path.display()
        );
    }
    let figment = Figment::new().merge(Toml::file_exact(path)).merge(
        Env::prefixed("CAPLAB_")
            .filter(|k| k.as_str().contains("__"))
            .split("__"),
    );
    let origin = path.display().to_string();
    extract(with_sets(figment, overrides, &origin)?, &origin)
}

/// `--set key=value` items applied over `figment`, each checked to be a dotted key and a TOML
/// value. A set value **replaces** what is at its key: `--set 'eval.search={ method = "greedy" }'`
/// drops the file's `beam_size` instead of merging into it (figment merges tables key by key).
fn with_sets(figment: Figment, overrides: &[String], origin: &str) -> Result<Figment> {
    if overrides.is_empty() {
        return Ok(figment);
    }
    let mut sets = Vec::with_capacity(overrides.len());
    for item in overrides {
        let (key, value) = item
            .split_once('=')
            .with_context(|| format!("--set {item:?}: expected key=value, e.g. train.epochs=2"))?;
        let key = key.trim();
        if key.is_empty() || !key.split('.').all(is_bare_key) {
            bail!("--set {item:?}: {key:?} is not a dotted key such as train.epochs");
        }
        // Parse the value as TOML first so the error names the flag.
        let value = format!("v = {}", value.trim())
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .with_context(|| {
                format!("--set {item:?}: the value is not valid TOML (quote strings: key=\"text\")")
            })?;
        sets.push((item, key, value));
    }
    let mut tree: toml::Value = figment.extract().map_err(|e| {
        let msg = e.to_string().replace("key \"default.", "key \"");
        anyhow::anyhow!("invalid spec {origin}: {msg}")
    })?;
    for (item, key, value) in sets {
        let mut node = &mut tree;
        let parts: Vec<&str> = key.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let toml::Value::Table(table) = node else {
                bail!(
                    "--set {item:?}: {} holds a value, not a table",
                    parts[..i].join(".")
                );
            };
            if i + 1 == parts.len() {
                table.insert(part.to_string(), value);
                break;
            }
            node = table
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        }
    }
    let text = toml::to_string(&tree).context("serialising the spec with --set values")?;
    Ok(Figment::new().merge(Toml::string(&text)))
}

/// The typed, validated spec from layered sources; errors name `origin`.
fn extract(figment: Figment, origin: &str) -> Result<Spec> {
    let spec: Spec = figment
        .extract()
        // figment prefixes key paths with its profile name ("default."): readers want the key.
        .map_err(|e| {
            let msg = e.to_string().replace("key \"default.", "key \"");
            anyhow::anyhow!("invalid spec {origin}: {msg}")
        })?;
    spec.validate()?;
    Ok(spec)
}

/// Loads a run's saved `spec.toml` exactly as written: no `CAPLAB_*` variable and no override
/// applies (what `caplab resume` and `caplab eval` use).
pub fn load_exact(path: &Path) -> Result<Spec> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let spec: Spec = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("invalid spec {}: {e}", path.display()))?;
    spec.validate()?;
    Ok(spec)
}

fn is_bare_key(part: &str) -> bool {
    !part.is_empty()
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `a.b.c`, `v` → `[a.b]\nc = v`.
pub fn nest(key: &str, value: &str) -> String {
    match key.rsplit_once('.') {
        Some((table, leaf)) => format!("[{table}]\n{leaf} = {value}\n"),
        None => format!("{key} = {value}\n"),
    }
}

/// The run's spec with `eval.*` overrides, and `experiment.device` / `experiment.precision`
/// (where the evaluation runs: a checkpoint trained on one device evaluates on another),
/// applied; any other key is an error naming it. A new `experiment.device` drops the training
/// run's `experiment.devices` and `experiment.precision` (set the precision after it to keep one).
pub fn load_for_eval(run_dir: &Path, overrides: &[String]) -> Result<Spec> {
    let path = run_dir.join("spec.toml");
    if !path.is_file() {
        bail!(
            "{} is not a caplab run directory (no spec.toml)",
            run_dir.display()
        );
    }
    let spec = load_exact(&path)?;
    if overrides.is_empty() {
        return Ok(spec);
    }
    let mut value = toml::Value::try_from(&spec).context("serialising the run's spec")?;
    for item in overrides {
        let (key, raw) = item
            .split_once('=')
            .with_context(|| format!("--set {item:?}: expected eval.KEY=VALUE"))?;
        let key = key.trim();
        let device_key = key == "experiment.device" || key == "experiment.precision";
        if !key.starts_with("eval.") && !device_key {
            bail!(
                "--set {item:?}: caplab eval only changes eval.* keys (search, batch_size, \
                 samples, meteor_dir) and where it runs (experiment.device, \
                 experiment.precision); {key} is part of the trained run"
            );
        }
        if key == "experiment.device" {
            // Evaluation runs on the one device named; the training run's device list (and a
            // precision only its device had) stay with the training run.
            if let Some(exp) = value.get_mut("experiment").and_then(|e| e.as_table_mut()) {
                exp.remove("devices");
                exp.remove("precision");
            }
        }
        let snippet: toml::Table = nest(key, raw.trim()).parse().with_context(|| {
            format!("--set {item:?}: the value is not valid TOML (quote strings: key=\"text\")")
        })?;
        merge(&mut value, toml::Value::Table(snippet));
    }
    let spec: Spec = value
        .try_into()
        .map_err(|e| anyhow::anyhow!("invalid --set for {}: {e}", path.display()))?;
    spec.validate()?;
    Ok(spec)
}

/// Merges `patch` into `base`, tables key by key, other values replaced.
fn merge(base: &mut toml::Value, patch: toml::Value) {
    match (base, patch) {
        (toml::Value::Table(b), toml::Value::Table(p)) => {
            for (k, v) in p {
                match b.get_mut(&k) {
                    // A whole `search = { method = … }` replaces the old table (another method
                    // has other keys), keeping `max_len` unless it gives one.
                    Some(existing) if k == "search" && v.get("method").is_some() => {
                        let max_len = existing.get("max_len").cloned();
                        let mut v = v;
                        if let (Some(t), Some(m)) = (v.as_table_mut(), max_len) {
                            t.entry("max_len").or_insert(m);
                        }
                        *existing = v;
                    }
                    Some(existing) if v.is_table() => merge(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, p) => *b = p,
    }
}

impl Spec {
    /// This spec with `key=value` overrides applied (values parsed as TOML, as `--set` does;
    /// no environment variable applies), validated; errors name `origin`.
    pub fn with_overrides(&self, overrides: &[String], origin: &str) -> Result<Spec> {
        let figment = Figment::new().merge(Toml::string(&self.to_toml()?));
        extract(with_sets(figment, overrides, origin)?, origin)
    }

    /// The resolved spec as TOML.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).context("serialising the resolved spec")
    }
}
