//! Tests of config loading: defaults, overrides, merging and errors that name the key.

use super::*;

fn load(toml_text: &str, overrides: &[&str]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), toml_text).unwrap();
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Config::load(dir.path(), &overrides)
}

#[test]
fn an_empty_home_gives_the_documented_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let c = Config::load(dir.path(), &[]).unwrap();
    assert_eq!(c.model_provider, "openai");
    assert_eq!(c.model, "gpt-5");
    assert_eq!(c.external_auth_refresh_timeout_ms, 10_000);
    assert_eq!(c.external_auth_refresh_ahead_ms, 300_000);
    assert_eq!(c.chatgpt_token_timeout_ms, 30_000);
    assert_eq!(c.max_message_bytes, 16 * 1024 * 1024);
    assert_eq!(c.max_in_flight_requests, 1024);
    assert_eq!(c.max_unsent_output_bytes, 64 * 1024 * 1024);
    assert_eq!(c.auth_lock_timeout_ms, 5_000);
    assert_eq!(c.cli_auth_credentials_store, CredentialsStore::File);
    let p = c.active_provider();
    assert_eq!(p.base_url, "https://api.openai.com/v1");
    assert_eq!(
        p.chatgpt_base_url.as_deref(),
        Some("https://chatgpt.com/backend-api/codex")
    );
    assert!(p.requires_openai_auth);
    assert_eq!(p.connect_timeout_ms, 10_000);
    assert_eq!(p.stream_idle_timeout_ms, 300_000);
    assert_eq!(c.auth_dir(dir.path()), dir.path());
}

#[test]
fn overrides_of_the_builtin_provider_merge_field_by_field() {
    let c = load(
        "[model_providers.openai]\nconnect_timeout_ms = 5\n",
        &["model_providers.openai.base_url=http://127.0.0.1:9/v1"],
    )
    .unwrap();
    let p = c.active_provider();
    assert_eq!(p.base_url, "http://127.0.0.1:9/v1");
    assert_eq!(p.connect_timeout_ms, 5);
    assert!(p.requires_openai_auth);
    assert_eq!(
        p.chatgpt_base_url.as_deref(),
        Some("https://chatgpt.com/backend-api/codex")
    );
}

#[test]
fn override_values_parse_as_toml_and_fall_back_to_strings() {
    let c = load(
        "",
        &[
            "external_auth_refresh_timeout_ms=250",
            "forced_chatgpt_workspace_id=org-1",
            "model=\"gpt-x\"",
        ],
    )
    .unwrap();
    assert_eq!(c.external_auth_refresh_timeout_ms, 250);
    assert_eq!(c.forced_chatgpt_workspace_id.as_deref(), Some("org-1"));
    assert_eq!(c.model, "gpt-x");
}

#[test]
fn a_custom_provider_with_an_auth_command_reads_its_defaults() {
    let c = load(
        "model_provider = \"corp\"\n[model_providers.corp]\nbase_url = \"http://127.0.0.1:8080/v1\"\n[model_providers.corp.auth]\ncommand = \"print-token\"\n",
        &[],
    )
    .unwrap();
    let p = c.active_provider();
    assert!(!p.requires_openai_auth);
    let auth = p.auth.as_ref().unwrap();
    assert_eq!(auth.command, "print-token");
    assert_eq!(auth.timeout_ms, 5_000);
    assert_eq!(auth.refresh_interval_ms, 300_000);
}

#[test]
fn an_unknown_top_level_key_is_named() {
    let e = load("modle = \"x\"\n", &[]).unwrap_err();
    assert!(e.to_string().contains("`modle`"), "{e}");
}

#[test]
fn an_unknown_nested_key_is_named_with_its_path() {
    let e = load("", &["model_providers.openai.bse_url=x"]).unwrap_err();
    assert!(
        e.to_string().contains("`model_providers.openai.bse_url`"),
        "{e}"
    );
}

#[test]
fn a_value_of_the_wrong_type_names_the_key() {
    let e = load("", &["max_in_flight_requests=lots"]).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("`max_in_flight_requests`"), "{text}");
    let e = load("", &["forced_login_method=sometimes"]).unwrap_err();
    assert!(e.to_string().contains("`forced_login_method`"), "{e}");
}

#[test]
fn a_provider_with_both_env_key_and_auth_command_is_refused() {
    let e = load(
        "[model_providers.corp]\nbase_url = \"http://x\"\nenv_key = \"K\"\n[model_providers.corp.auth]\ncommand = \"t\"\n",
        &[],
    )
    .unwrap_err();
    assert!(
        matches!(e, ConfigError::TwoCredentialSources(ref id) if id == "corp"),
        "{e}"
    );
}

#[test]
fn a_missing_provider_is_refused() {
    let e = load("model_provider = \"nope\"\n", &[]).unwrap_err();
    assert!(matches!(e, ConfigError::UnknownProvider(_)), "{e}");
}

#[test]
fn malformed_overrides_and_files_say_what_is_wrong() {
    assert!(matches!(
        load("", &["no-equals-sign"]).unwrap_err(),
        ConfigError::BadOverride(_)
    ));
    assert!(matches!(
        load("model = \"a\"\n", &["model.x=1"]).unwrap_err(),
        ConfigError::OverrideNotTable { .. }
    ));
    assert!(matches!(
        load("this is = = not toml", &[]).unwrap_err(),
        ConfigError::Syntax { .. }
    ));
}

#[test]
fn max_unsent_output_bytes_is_set_by_an_override() {
    let c = load("max_unsent_output_bytes = 1000", &[]).unwrap();
    assert_eq!(c.max_unsent_output_bytes, 1000);
    let c = load("", &["max_unsent_output_bytes=4096"]).unwrap();
    assert_eq!(c.max_unsent_output_bytes, 4096);
}

#[test]
fn sign_in_keys_have_codex_defaults_and_an_issuer_also_moves_the_refresh_url() {
    let c = load("", &[]).unwrap();
    assert_eq!(c.chatgpt_issuer, "https://auth.openai.com");
    assert_eq!(c.chatgpt_login_port, 1455);
    assert_eq!(c.chatgpt_login_timeout_ms, 600_000);
    assert_eq!(c.chatgpt_token_url, "https://auth.openai.com/oauth/token");
    let c = load(
        "",
        &["chatgpt_issuer=http://127.0.0.1:9/", "chatgpt_login_port=0"],
    )
    .unwrap();
    assert_eq!(c.chatgpt_token_url, "http://127.0.0.1:9/oauth/token");
    assert_eq!(c.chatgpt_login_port, 0);
    let c = load(
        "chatgpt_token_url = \"http://t/oauth/token\"\n",
        &["chatgpt_issuer=http://i"],
    )
    .unwrap();
    assert_eq!(
        c.chatgpt_token_url, "http://t/oauth/token",
        "an explicit URL wins"
    );
    let e = load("", &["chatgpt_login_port=70000"]).unwrap_err();
    assert!(e.to_string().contains("`chatgpt_login_port`"), "{e}");
}
