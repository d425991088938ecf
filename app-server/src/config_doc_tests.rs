//! `docs/config.md` and the code agree: every key the config structs accept is documented,
//! and every documented key is accepted. The code's keys are read from serde's own
//! "unknown field, expected one of …" answer, so nothing lists them a second time.

use std::collections::BTreeSet;

use super::Config;

/// The keys serde expects at `table` (a dotted path, "" for the top level).
fn keys_in_code(table: &str) -> BTreeSet<String> {
    let probe = "zz_not_a_key";
    let mut spec = String::new();
    if !table.is_empty() {
        spec.push_str(table);
        spec.push('.');
    }
    spec.push_str(probe);
    spec.push_str("=1");
    let mut overrides = vec![spec];
    if table.contains(".auth") {
        overrides.insert(0, format!("{table}.command=\"x\""));
    }
    let mut t = toml::Table::new();
    for o in &overrides {
        super::apply_override(&mut t, o).expect("override");
    }
    let message = Config::from_table(t)
        .expect_err("an unknown key is refused")
        .to_string();
    let expected = message
        .split("expected one of ")
        .nth(1)
        .unwrap_or_else(|| panic!("serde names the expected fields: {message}"));
    expected
        .split(", ")
        .map(|k| k.trim().trim_matches('`').to_string())
        .collect()
}

/// The keys in the table under `heading` of docs/config.md (first column, in backticks).
fn keys_in_doc(heading: &str) -> BTreeSet<String> {
    let doc = include_str!("../../docs/config.md");
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with(heading))
        .unwrap_or_else(|| panic!("docs/config.md has a section `## {heading}`"));
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_top_level_key_is_documented_and_every_documented_key_exists() {
    assert_eq!(keys_in_doc("Top level"), keys_in_code(""));
}

#[test]
fn every_provider_key_is_documented_and_every_documented_key_exists() {
    assert_eq!(
        keys_in_doc("`[model_providers.<id>]`"),
        keys_in_code("model_providers.openai")
    );
}

#[test]
fn every_auth_command_key_is_documented_and_every_documented_key_exists() {
    assert_eq!(
        keys_in_doc("`[model_providers.<id>.auth]`"),
        keys_in_code("model_providers.openai.auth")
    );
}
