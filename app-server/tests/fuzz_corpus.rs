//! The fuzz targets under `cargo test`: replays the committed corpus of every target
//! (`fuzz/corpus/<target>/`) through the same checks the cargo-fuzz targets run
//! (`fuzz/checks.rs`), and property tests for split invariance of the SSE parser and of the
//! peer's framing over random inputs cut at random points.

#[path = "../../fuzz/checks.rs"]
mod checks;

use std::path::PathBuf;

use proptest::prelude::*;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

#[test]
fn every_committed_corpus_input_passes_its_targets_check() {
    for target in checks::TARGETS {
        let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir(target))
            .unwrap_or_else(|e| panic!("no corpus for {target}: {e}"))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "the corpus of {target} is empty");
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| checks::check(target, &data));
            assert!(
                outcome.is_ok(),
                "{target}: {} fails its check",
                file.display()
            );
        }
    }
}

/// Pieces an SSE stream is made of, including the awkward ones.
fn sse_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"data: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}".to_vec()),
        Just(b"event: error".to_vec()),
        Just(b": a comment".to_vec()),
        Just(b"data".to_vec()),
        Just(b"data:".to_vec()),
        Just(b"id: 7".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\xef\xbb\xbf".to_vec()),
        prop::collection::vec(any::<u8>(), 0..40),
    ]
}

fn cut_points(len: usize, raw: &[usize]) -> Vec<usize> {
    let mut cuts: Vec<usize> = raw.iter().map(|c| c % (len + 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

fn split_at<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    for &c in cuts {
        out.push(&data[start..c]);
        start = c;
    }
    out.push(&data[start..]);
    out
}

/// Messages (already framed as lines) a host might send, good and bad.
fn line_message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(
            br#"{"id":0,"method":"initialize","params":{"clientInfo":{"name":"t","version":"1"}}}"#
                .to_vec()
        ),
        (0i64..50)
            .prop_map(|id| format!(r#"{{"id":{id},"method":"m","params":{{}}}}"#).into_bytes()),
        (0i64..50).prop_map(|id| format!(r#"{{"id":"s{id}","method":"barrier"}}"#).into_bytes()),
        Just(br#"{"method":"note"}"#.to_vec()),
        Just(br#"{"id":99,"result":{}}"#.to_vec()),
        Just(b"[1,2]".to_vec()),
        Just(b"not json".to_vec()),
        Just(b"\xff\xfe\xfd".to_vec()),
        Just(b"   ".to_vec()),
        (0usize..600).prop_map(|n| format!(
            r#"{{"id":1,"method":"m","params":"{}"}}"#,
            "x".repeat(n)
        )
        .into_bytes()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn sse_events_do_not_depend_on_where_the_stream_is_cut(
        pieces in prop::collection::vec(sse_piece(), 0..30),
        raw_cuts in prop::collection::vec(any::<usize>(), 0..12),
        limit in 16usize..400,
    ) {
        let data: Vec<u8> = pieces.concat();
        let mut whole = authbridge_app_server::provider::SseParser::with_limit(limit);
        let expected = whole.push(&data);
        let mut split = authbridge_app_server::provider::SseParser::with_limit(limit);
        let mut got = Vec::new();
        for chunk in split_at(&data, &cut_points(data.len(), &raw_cuts)) {
            got.extend(split.push(chunk));
        }
        prop_assert_eq!(got, expected);
        prop_assert_eq!(split.error(), whole.error());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_peers_answers_do_not_depend_on_where_the_input_is_cut(
        messages in prop::collection::vec(line_message(), 0..12),
        content_length in any::<bool>(),
        crlf in any::<bool>(),
        raw_cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut data = Vec::new();
        for m in &messages {
            if content_length {
                data.extend_from_slice(format!("Content-Length: {}\r\n\r\n", m.len()).as_bytes());
                data.extend_from_slice(m);
            } else {
                data.extend_from_slice(m);
                data.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
        }
        let whole = checks::run_peer(&[&data]);
        let split = checks::run_peer(&split_at(&data, &cut_points(data.len(), &raw_cuts)));
        prop_assert_eq!(split, whole);
    }
}
