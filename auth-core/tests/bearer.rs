//! Bearer managers: backed by a scripted source or a real command, apart from the account.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use authbridge_auth_core::*;
use common::*;

/// A bearer manager for a source (its runs bounded by the source alone).
fn bearer(source: Arc<dyn BearerSource>) -> Arc<BearerManager> {
    BearerManager::new(source)
}

#[tokio::test]
async fn a_bearer_manager_returns_the_provider_token_and_the_account_keeps_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let base = AuthManager::new(config(dir.path()));
    base.login_api_key(Secret::new("sk-base")).await.unwrap();
    let r = ScriptedBearer::new(Ok("provider-token-1"));
    let provider = bearer(r.clone());

    let p = provider.auth().await.unwrap();
    assert_eq!(
        (
            p.bearer_token().expose(),
            p.mode(),
            p.source(),
            p.account_id()
        ),
        (
            "provider-token-1",
            ApiAuthMode::ApiKey,
            CredentialSource::ExternalBearer,
            None
        )
    );
    let b = base.auth().await.unwrap().unwrap();
    assert_eq!(
        (b.bearer_token().expose(), b.source()),
        ("sk-base", CredentialSource::StoredApiKey)
    );
    assert_eq!(r.calls(), 1, "the first use ran the source once");
    provider.auth().await.unwrap();
    assert_eq!(r.calls(), 1, "then its token is reused");
}

#[tokio::test]
async fn recovery_on_a_bearer_manager_refreshes_once_then_returns_the_new_token() {
    let dir = tempfile::tempdir().unwrap();
    let base = AuthManager::new(config(dir.path()));
    let r = ScriptedBearer::new(Ok("refreshed"));
    *r.resolved.lock().unwrap() = Some(Secret::new("initial"));
    let provider = bearer(r.clone());
    let rejected = provider.auth().await.unwrap();
    assert_eq!(rejected.bearer_token().expose(), "initial");

    let mut rec = provider.unauthorized_recovery(&rejected);
    assert_eq!(
        (rec.mode(), rec.step(), rec.has_next()),
        (RecoveryMode::External, RecoveryStep::ExternalRefresh, true)
    );
    assert_eq!(rec.next().await.unwrap(), RecoveryOutcome { changed: true });
    assert_eq!((rec.step(), rec.has_next()), (RecoveryStep::Done, false));
    assert_eq!(r.calls(), 1);
    let now = provider.auth().await.unwrap();
    assert_eq!(now.bearer_token().expose(), "refreshed");
    assert!(
        base.auth().await.unwrap().is_none(),
        "the base manager is not affected"
    );
}

#[tokio::test]
async fn an_api_key_has_no_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.env_api_key = Some(Secret::new("sk-env"));
    let mgr = AuthManager::new(cfg);
    let creds = mgr.auth().await.unwrap().unwrap();
    assert_eq!(creds.source(), CredentialSource::EnvApiKey);
    let rec = mgr.unauthorized_recovery(&creds);
    assert_eq!(
        (
            rec.has_next(),
            rec.step(),
            rec.unavailable_reason().as_str()
        ),
        (false, RecoveryStep::Done, "not_chatgpt_auth")
    );
}

/// Writes a shell script and returns its path. It is run as `/bin/sh <path>`, so no test
/// execs a file another thread may still hold open for writing (ETXTBSY).
fn script(dir: &std::path::Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{body}\n")).unwrap();
    path
}

fn cmd(script: &str, interval: Duration) -> CommandAuthConfig {
    CommandAuthConfig {
        command: "/bin/sh".into(),
        args: vec![script.into()],
        timeout: Duration::from_secs(5),
        refresh_interval: interval,
        cwd: None,
    }
}

#[tokio::test]
async fn the_command_token_is_trimmed_cached_and_rerun_after_a_401() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("count");
    let s = script(
        dir.path(),
        "print-token",
        &format!(
            "echo x >> {0}; n=$(wc -l < {0}); printf '  token-%s \\n' $n",
            counter.display()
        ),
    );
    let source = Arc::new(CommandBearerSource::new(cmd(
        s.to_str().unwrap(),
        Duration::ZERO,
    )));
    let provider = bearer(source.clone());
    let first = provider.auth().await.unwrap();
    assert_eq!(first.bearer_token().expose(), "token-1");
    provider.auth().await.unwrap();
    assert_eq!(source.runs().await, 1, "interval 0: cached until a 401");

    let mut rec = provider.unauthorized_recovery(&first);
    assert_eq!(rec.next().await.unwrap(), RecoveryOutcome { changed: true });
    assert_eq!(
        provider.auth().await.unwrap().bearer_token().expose(),
        "token-2"
    );
    assert_eq!(source.runs().await, 2);
}

#[tokio::test]
async fn the_command_reruns_when_its_interval_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), "t", "date +%s%N");
    let source = CommandBearerSource::new(cmd(s.to_str().unwrap(), Duration::from_millis(100)));
    let a = source.resolve().await.unwrap().unwrap();
    let b = source.resolve().await.unwrap().unwrap();
    assert_eq!(a, b);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let c = source.resolve().await.unwrap().unwrap();
    assert_ne!(a, c);
    assert_eq!(source.runs().await, 2);
}

#[tokio::test]
async fn a_relative_command_resolves_against_cwd() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("bin")).unwrap();
    std::os::unix::fs::symlink("/bin/echo", dir.path().join("bin/tok")).unwrap();
    let mut c = cmd("from-cwd", Duration::ZERO);
    c.command = "bin/tok".into();
    c.cwd = Some(dir.path().to_path_buf());
    let t = CommandBearerSource::new(c)
        .resolve()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.expose(), "from-cwd");
}

#[tokio::test]
async fn command_failures_are_worded_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let fail = script(dir.path(), "fail", "echo 'no creds here' >&2; exit 3");
    let empty = script(dir.path(), "empty", "printf '  \\n'");
    let slow = script(dir.path(), "slow", "sleep 30; echo late");
    let missing = dir.path().join("missing");
    let cases = [
        (&fail, "/bin/sh", "provider auth command `/bin/sh` exited with status 3: no creds here".to_owned()),
        (&empty, "/bin/sh", "provider auth command `/bin/sh` produced an empty token".to_owned()),
        (&slow, "/bin/sh", "provider auth command `/bin/sh` timed out after 300ms".to_owned()),
        (
            &missing,
            missing.to_str().unwrap(),
            format!(
                "provider auth command `{}` failed to start: No such file or directory (os error 2)",
                missing.display()
            ),
        ),
    ];
    for (path, command, message) in cases {
        let mut c = cmd(path.to_str().unwrap(), Duration::ZERO);
        c.command = command.into();
        c.timeout = Duration::from_millis(300);
        let started = Instant::now();
        let err = CommandBearerSource::new(c).resolve().await.unwrap_err();
        assert_eq!(err.to_string(), message);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the slow one was killed"
        );
    }
}

#[tokio::test]
async fn a_failing_command_fails_auth_instead_of_sending_no_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let fail = script(dir.path(), "fail", "exit 1");
    let provider = bearer(Arc::new(CommandBearerSource::new(cmd(
        fail.to_str().unwrap(),
        Duration::ZERO,
    ))));
    let err = provider.auth().await.unwrap_err();
    assert!(matches!(err, RefreshError::Transient(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "provider auth command `/bin/sh` exited with status 1: "
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_uses_run_the_command_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), "t", "sleep 0.2; echo once");
    let source = Arc::new(CommandBearerSource::new(cmd(
        s.to_str().unwrap(),
        Duration::ZERO,
    )));
    let provider = bearer(source.clone());
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let p = provider.clone();
        tasks.push(tokio::spawn(async move {
            p.auth().await.unwrap().bearer_token().expose().to_owned()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), "once");
    }
    assert_eq!(source.runs().await, 1);
}

#[tokio::test]
async fn the_command_runs_with_stdin_closed() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), "t", "read x || echo stdin-was-closed");
    let t = CommandBearerSource::new(cmd(s.to_str().unwrap(), Duration::ZERO))
        .resolve()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.expose(), "stdin-was-closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_401s_on_one_provider_token_rerun_the_command_once() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("count");
    let s = script(
        dir.path(),
        "t",
        &format!(
            "sleep 0.1; echo x >> {0}; echo token-$(wc -l < {0})",
            counter.display()
        ),
    );
    let source = Arc::new(CommandBearerSource::new(cmd(
        s.to_str().unwrap(),
        Duration::ZERO,
    )));
    let provider = bearer(source.clone());
    let rejected = provider.auth().await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (p, r) = (provider.clone(), rejected.clone());
        tasks.push(tokio::spawn(async move {
            let outcome = p.unauthorized_recovery(&r).next().await.unwrap();
            let now = p.auth().await.unwrap();
            (outcome.changed, now.bearer_token().expose().to_owned())
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), (true, "token-2".to_owned()));
    }
    assert_eq!(
        source.runs().await,
        2,
        "one first run, one re-run for all the 401s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_not_handed_out_while_the_source_runs_again() {
    let r = ScriptedBearer::new(Ok("token-1"));
    let provider = bearer(r.clone());
    let refused = provider.auth().await.unwrap();
    *r.answer.lock().unwrap() = Ok(Secret::new("token-2"));
    *r.delay.lock().unwrap() = Duration::from_millis(200);
    let recovery = {
        let (provider, refused) = (provider.clone(), refused.clone());
        tokio::spawn(async move { provider.unauthorized_recovery(&refused).next().await })
    };
    until("the source was not run again", || r.calls() >= 2).await;
    // A request starting now waits for the re-run instead of sending token-1.
    assert_eq!(
        provider.auth().await.unwrap().bearer_token().expose(),
        "token-2"
    );
    assert!(recovery.await.unwrap().unwrap().changed);
    assert_eq!(r.calls(), 2);
}
