//! The experiment spec through figment: a TOML file with `--set` overrides.

use caplab_runner::spec;

use super::outcome::outcome;
use crate::scratch;

/// The input up to its first NUL byte is the spec file; each NUL-separated piece after it is
/// one `--set key=value` item (invalid UTF-8 replaced). Run as `caplab run` loads a spec
/// ([`spec::load`]), as `caplab eval` loads a run's `spec.toml` with `eval.*` overrides
/// ([`spec::load_for_eval`]) and, for a spec that loads, as a sweep applies overrides to it
/// ([`spec::Spec::with_overrides`]).
pub fn spec(data: &[u8]) -> String {
    let mut parts = data.split(|&b| b == 0);
    let file = parts.next().unwrap_or_default();
    let sets: Vec<String> = parts
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let path = scratch::file("spec", "spec.toml", file);
    let loaded = spec::load(&path, &sets);
    let dir = scratch::dir("spec");
    let for_eval = spec::load_for_eval(&dir, &sets);
    if let Ok(s) = &loaded {
        let _ = s.with_overrides(&sets, "--set");
        let _ = s.to_toml();
    }
    format!("{} / {}", outcome(&loaded), outcome(&for_eval))
}
