//! The committed `docs/schema/` matches what the Rust types generate today.

use std::path::Path;

#[test]
fn the_committed_schema_files_are_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schema");
    let expected = authbridge_protocol::schema::files();
    if std::env::var_os("AUTHBRIDGE_UPDATE_SCHEMA").is_some() {
        authbridge_protocol::schema::write_all(&dir).unwrap();
    }
    let refresh = "run `cargo run -p authbridge-app-server -- schema --out docs/schema` and commit the result";
    let mut stale = Vec::new();
    for (name, text) in &expected {
        match std::fs::read_to_string(dir.join(name)) {
            Ok(found) if &found == text => {}
            Ok(_) => stale.push(format!("{name} differs")),
            Err(_) => stale.push(format!("{name} is missing")),
        }
    }
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !expected.contains_key(&name) {
            stale.push(format!("{name} is no longer generated"));
        }
    }
    assert!(
        stale.is_empty(),
        "docs/schema is out of date ({}): {refresh}",
        stale.join(", ")
    );
}
