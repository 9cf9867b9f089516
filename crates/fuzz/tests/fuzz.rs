//! The stable fuzz run (`cargo test -p caplab-fuzz --test fuzz`; `just test` and CI run it).
//!
//! For every target: the committed corpus (`fuzz/corpus/<target>/`) and regression inputs
//! (`fuzz/regressions/<target>/`) are replayed, then inputs mutated from them (seeded,
//! deterministic; inputs that make the parser say something new become parents too) run until
//! the target's share of the time budget is spent. An input fails when it
//!
//! - panics (caught; the run goes on with the next target),
//! - runs longer than the deadline (a watchdog thread ends the process), or
//! - takes the heap more than the memory bound above what it was before the input (the
//!   counting allocator ends the process before the allocation happens).
//!
//! A failing input is saved under `$TMPDIR/caplab-fuzz-crashes/<target>/` and named in the
//! output; fix the parser, then commit the input under `fuzz/regressions/<target>/`.
//!
//! Settings (environment): `CAPLAB_FUZZ_SECS` (mutation seconds for all targets together,
//! default 45), `CAPLAB_FUZZ_TARGET` (comma-separated names: run only those),
//! `CAPLAB_FUZZ_SEED` (default 26), `CAPLAB_FUZZ_DEADLINE_SECS` (default 10).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use caplab_fuzz::mutate::Mutator;
use caplab_fuzz::{all, scratch, Target};

/// The most one input may take the live heap above where it was when the input started.
const MEMORY_BOUND: usize = 256 << 20;
/// The longest input the mutator makes (the corpus's own files may be longer).
const MAX_LEN: usize = 64 << 10;
/// Parents kept per target: the corpus plus inputs with new outcomes, up to this many.
const MAX_POOL: usize = 512;

// ---------------------------------------------------------------- the counting allocator

/// Live heap bytes of the process.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// The highest `LIVE` since the last reset.
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// `LIVE` when the current input started; the bound applies above it. `usize::MAX`: no input.
static BASE: AtomicUsize = AtomicUsize::new(usize::MAX);
/// Set once a failure is being reported: allocations pass unchecked from then on.
static REPORTING: AtomicBool = AtomicBool::new(false);

struct Counting;

impl Counting {
    /// Counts `size` more live bytes, or reports the input and ends the process when that
    /// would take it over [`MEMORY_BOUND`].
    fn grow(&self, size: usize) {
        let base = BASE.load(Ordering::Relaxed);
        let live = LIVE.load(Ordering::Relaxed);
        if base != usize::MAX
            && live.saturating_add(size).saturating_sub(base) > MEMORY_BOUND
            && !REPORTING.swap(true, Ordering::SeqCst)
        {
            fail_and_exit(
                "memory",
                &format!(
                    "allocating {size} bytes would take this input's heap to {} MiB, over the \
                     {} MiB bound",
                    (live.saturating_add(size) - base) >> 20,
                    MEMORY_BOUND >> 20
                ),
            );
        }
        let now = LIVE.fetch_add(size, Ordering::Relaxed) + size;
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.grow(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.grow(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            self.grow(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// ---------------------------------------------------------------- the current input

/// The input being run and its target, for the watchdog and the allocator's report.
static CURRENT: Mutex<(String, Vec<u8>)> = Mutex::new((String::new(), Vec::new()));
/// Milliseconds since [`epoch`] when the current input started; 0 when none runs.
static STARTED_MS: AtomicU64 = AtomicU64::new(0);
/// The message of the last panic (set by the panic hook).
static PANIC: Mutex<Option<String>> = Mutex::new(None);

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64 + 1
}

/// Saves `data` as a crash input of `target`; returns its path.
fn save_crash(target: &str, kind: &str, data: &[u8]) -> PathBuf {
    // FNV-1a: a stable name for the same input.
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    let dir = std::env::temp_dir()
        .join("caplab-fuzz-crashes")
        .join(target);
    let path = dir.join(format!("{kind}-{hash:016x}"));
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, data)) {
        eprintln!("cannot save the failing input to {}: {e}", path.display());
    }
    path
}

/// Reports the current input as failing (`kind`: memory, hang) and ends the process.
fn fail_and_exit(kind: &str, message: &str) -> ! {
    REPORTING.store(true, Ordering::SeqCst);
    let (target, data) = match CURRENT.try_lock() {
        Ok(current) => current.clone(),
        Err(_) => (String::from("unknown"), Vec::new()),
    };
    let path = save_crash(&target, kind, &data);
    let _ = writeln!(
        std::io::stderr(),
        "\nFUZZ FAILURE ({kind}) in target {target}: {message}\n  input ({} bytes) saved to {}\n  \
         reproduce: CAPLAB_FUZZ_TARGET={target} after copying it to fuzz/regressions/{target}/",
        data.len(),
        path.display()
    );
    std::process::exit(1)
}

fn start_watchdog(deadline: Duration) {
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(50));
        let started = STARTED_MS.load(Ordering::SeqCst);
        if started != 0 && now_ms().saturating_sub(started) > deadline.as_millis() as u64 {
            fail_and_exit(
                "hang",
                &format!(
                    "the input ran longer than the {} s deadline",
                    deadline.as_secs()
                ),
            );
        }
    });
}

/// What one run of an input gave.
enum Ran {
    Ok {
        outcome: String,
        elapsed: Duration,
        peak: usize,
    },
    Panicked(String),
}

fn run_one(target: &Target, data: &[u8]) -> Ran {
    {
        let mut current = CURRENT.lock().unwrap_or_else(|p| p.into_inner());
        current.0.clear();
        current.0.push_str(target.name);
        current.1.clear();
        current.1.extend_from_slice(data);
    }
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    BASE.store(base, Ordering::SeqCst);
    let start = Instant::now();
    STARTED_MS.store(now_ms(), Ordering::SeqCst);
    let result = catch_unwind(AssertUnwindSafe(|| (target.run)(data)));
    STARTED_MS.store(0, Ordering::SeqCst);
    BASE.store(usize::MAX, Ordering::SeqCst);
    let elapsed = start.elapsed();
    let peak = PEAK.load(Ordering::SeqCst).saturating_sub(base);
    match result {
        Ok(outcome) => Ran::Ok {
            outcome,
            elapsed,
            peak,
        },
        Err(_) => {
            let message = PANIC
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_else(|| "panic without a message".to_string());
            Ran::Panicked(message)
        }
    }
}

/// Files of `dir` in name order (none when it does not exist).
fn inputs(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let data =
                std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            (p, data)
        })
        .collect()
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?}: expected a whole number")),
        Err(_) => default,
    }
}

/// Per-target totals.
#[derive(Default)]
struct Tally {
    replayed: usize,
    mutated: usize,
    outcomes: usize,
    slowest: Duration,
    peak: usize,
    /// The slowest input and the one with the highest heap peak, kept to be saved when they
    /// come near the bounds.
    slowest_input: Vec<u8>,
    peak_input: Vec<u8>,
    failure: Option<String>,
}

impl Tally {
    /// Records one run; `Some` outcome when it is new.
    fn record(&mut self, target: &Target, data: &[u8], from: &str, ran: Ran) -> Option<String> {
        match ran {
            Ran::Ok {
                outcome,
                elapsed,
                peak,
            } => {
                if elapsed > self.slowest {
                    self.slowest = elapsed;
                    self.slowest_input = data.to_vec();
                }
                if peak > self.peak {
                    self.peak = peak;
                    self.peak_input = data.to_vec();
                }
                Some(outcome)
            }
            Ran::Panicked(message) => {
                let path = save_crash(target.name, "panic", data);
                self.failure.get_or_insert(format!(
                    "panic on {from} ({} bytes, saved to {}): {message}",
                    data.len(),
                    path.display()
                ));
                None
            }
        }
    }
}

fn main() {
    // `cargo test -- --list` and friends: this binary has no listable tests.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let secs = env_u64("CAPLAB_FUZZ_SECS", 45);
    let seed = env_u64("CAPLAB_FUZZ_SEED", 26);
    let deadline = Duration::from_secs(env_u64("CAPLAB_FUZZ_DEADLINE_SECS", 10));
    let only: Option<Vec<String>> = std::env::var("CAPLAB_FUZZ_TARGET")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    let targets: Vec<Target> = all()
        .into_iter()
        .filter(|t| only.as_ref().is_none_or(|o| o.iter().any(|n| n == t.name)))
        .collect();
    if let Some(names) = &only {
        for name in names {
            assert!(
                targets.iter().any(|t| t.name == name),
                "CAPLAB_FUZZ_TARGET: no target {name:?} (targets: {:?})",
                all()
            );
        }
    }
    std::panic::set_hook(Box::new(|info| {
        let mut slot = PANIC.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(info.to_string());
        }
    }));
    epoch();
    start_watchdog(deadline);
    let share = Duration::from_secs_f64(secs as f64 / targets.len().max(1) as f64);
    println!(
        "fuzz: {} targets, {:.1} s of mutation each, seed {seed}, deadline {} s, heap bound {} MiB",
        targets.len(),
        share.as_secs_f64(),
        deadline.as_secs(),
        MEMORY_BOUND >> 20
    );
    let mut failures = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        let mut tally = Tally::default();
        let corpus = inputs(&root.join("corpus").join(target.name));
        let regressions = inputs(&root.join("regressions").join(target.name));
        assert!(
            !corpus.is_empty(),
            "target {}: no seed corpus in {}",
            target.name,
            root.join("corpus").join(target.name).display()
        );
        let mut seen: HashSet<String> = HashSet::new();
        let mut pool: Vec<Vec<u8>> = Vec::new();
        for (path, data) in corpus.iter().chain(&regressions) {
            let from = path.display().to_string();
            let ran = run_one(target, data);
            tally.replayed += 1;
            if let Some(outcome) = tally.record(target, data, &from, ran) {
                seen.insert(outcome);
            }
        }
        pool.extend(corpus.into_iter().map(|(_, d)| d));
        pool.extend(regressions.into_iter().map(|(_, d)| d));
        let longest = pool.iter().map(Vec::len).max().unwrap_or(0);
        let target_seed = seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut mutator = Mutator::new(
            target_seed,
            target.structure,
            target.dictionary,
            MAX_LEN.max(longest),
        );
        let start = Instant::now();
        while tally.failure.is_none() && start.elapsed() < share {
            let parent = mutator.rng().below(pool.len());
            let input = mutator.mutate(&pool[parent], &pool);
            let ran = run_one(target, &input);
            tally.mutated += 1;
            let from = format!("mutated input #{}", tally.mutated);
            if let Some(outcome) = tally.record(target, &input, &from, ran) {
                if seen.insert(outcome) && pool.len() < MAX_POOL {
                    pool.push(input);
                }
            }
        }
        tally.outcomes = seen.len();
        println!(
            "  {:<17} {:>3} replayed, {:>7} mutated in {:>5.1} s, {:>3} outcomes, slowest {:>6.1} ms, \
             peak heap {:>7.2} MiB{}",
            target.name,
            tally.replayed,
            tally.mutated,
            start.elapsed().as_secs_f64(),
            tally.outcomes,
            tally.slowest.as_secs_f64() * 1e3,
            tally.peak as f64 / (1 << 20) as f64,
            if tally.failure.is_some() { "  FAILED" } else { "" }
        );
        // Within the bounds but near them: saved, to look at before it grows into a failure.
        if tally.slowest > deadline / 10 {
            let path = save_crash(target.name, "slow", &tally.slowest_input);
            println!("    slowest input saved to {}", path.display());
        }
        if tally.peak > MEMORY_BOUND / 8 {
            let path = save_crash(target.name, "heap", &tally.peak_input);
            println!(
                "    input with the highest heap peak saved to {}",
                path.display()
            );
        }
        if let Some(f) = tally.failure {
            failures.push(format!("{}: {f}", target.name));
        }
    }
    scratch::remove_all();
    if !failures.is_empty() {
        eprintln!("\nfuzz failures:");
        for f in &failures {
            eprintln!("  {f}");
        }
        eprintln!(
            "fix the parser, then commit each saved input under fuzz/regressions/<target>/ \
             (the harness replays them)"
        );
        std::process::exit(1);
    }
    println!("fuzz: no panic, hang or heap over the bound");
}
