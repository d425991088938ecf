//! The credential hot path, `AuthManager::auth()` on cached credentials, next to its floor.
//!
//! `cargo bench -p authbridge-auth-core --bench auth` prints a Markdown table (scripts/bench
//! puts it in docs/performance.md). The floor is what `auth()` cannot do without: a read lock
//! on an `Arc` of the same kind of credentials, the `Arc` clone, and the one clock read that
//! checking `exp` needs, awaited from an `async fn` as `auth()` is.
//!
//! The harness is plain std (`harness = false`): every case runs batches of calls on one and on
//! two threads that start together, and reports the median nanoseconds per call over the
//! batches. Under `cargo test` (no `--bench` argument) it runs one tiny batch per case, so the
//! bench cannot rot unnoticed.

use std::future::Future;
use std::hint::black_box;
use std::io::Write;
use std::sync::{Arc, Barrier, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use authbridge_auth_core::{
    encode_unsigned_jwt, AuthManager, AuthManagerConfig, ExternalAuthTokens, Secret,
};

/// One run of a case: `calls` awaited calls on the calling thread.
type Body = Arc<dyn Fn(u64) + Send + Sync>;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (calls, batches) = if full { (200_000, 15) } else { (1_000, 1) };
    let home = tempfile::tempdir().expect("temporary directory");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");

    let external = AuthManager::new(AuthManagerConfig::new(home.path().join("external")));
    let exp = now_secs() + 24 * 3600;
    let jwt = encode_unsigned_jwt(&serde_json::json!({ "exp": exp, "email": "bench@example.com" }));
    let tokens = ExternalAuthTokens::chatgpt(jwt, "org-bench", Some("pro".into()));
    runtime
        .block_on(external.login_external_chatgpt(tokens))
        .expect("external tokens accepted");

    let file = AuthManager::new(AuthManagerConfig::new(home.path().join("file")));
    runtime
        .block_on(file.login_api_key(Secret::new("sk-bench")))
        .expect("api key stored");

    let floor = Arc::new(RwLock::new(Arc::new(Floor {
        bearer: "sk-bench".into(),
        exp: Some(exp * 1000),
    })));

    let cases: Vec<(&str, Body)> = vec![
        (
            "floor: RwLock<Arc<_>> read + clone + one clock read",
            awaiting(move || {
                let floor = floor.clone();
                async move { floor_read(&floor).await }
            }),
        ),
        (
            "auth(), host-pushed ChatGPT tokens (exp checked)",
            awaiting(move || {
                let m = external.clone();
                async move { m.auth().await }
            }),
        ),
        (
            "auth(), API key from auth.json (stat once a second)",
            awaiting(move || {
                let m = file.clone();
                async move { m.auth().await }
            }),
        ),
    ];

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "| case | ns/call, 1 thread | ns/call, 2 threads | × floor (1 / 2 threads) |"
    )
    .unwrap();
    writeln!(out, "|---|---:|---:|---:|").unwrap();
    let mut floor_ns = None;
    for (name, body) in cases {
        let one = median_ns_per_call(1, calls, batches, &body);
        let two = median_ns_per_call(2, calls, batches, &body);
        let (f1, f2) = *floor_ns.get_or_insert((one, two));
        writeln!(
            out,
            "| {name} | {one:.1} | {two:.1} | {:.2}× / {:.2}× |",
            one / f1,
            two / f2
        )
        .unwrap();
    }
}

struct Floor {
    bearer: String,
    exp: Option<i64>,
}

async fn floor_read(lock: &RwLock<Arc<Floor>>) -> Option<Arc<Floor>> {
    let creds = lock.read().unwrap_or_else(|p| p.into_inner()).clone();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    (creds.exp.is_none_or(|exp| exp > now) && !creds.bearer.is_empty()).then_some(creds)
}

/// A body that awaits `call()` `calls` times inside one current-thread runtime.
fn awaiting<F, Fut>(call: F) -> Body
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future,
{
    Arc::new(move |calls| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            for _ in 0..calls {
                black_box(call().await);
            }
        });
    })
}

/// Runs `batches` batches of `calls` calls on each of `threads` threads started together.
fn median_ns_per_call(threads: usize, calls: u64, batches: usize, body: &Body) -> f64 {
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (barrier, body) = (barrier.clone(), body.clone());
            std::thread::spawn(move || {
                body(calls / 10); // warm up
                (0..batches)
                    .map(|_| {
                        barrier.wait();
                        let started = Instant::now();
                        body(calls);
                        started.elapsed().as_nanos() as f64 / calls as f64
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut samples: Vec<f64> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("bench thread"))
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
