//! Tests of the SSE parser: line endings, fields, chunking and the size bound.

use super::sse::{SseError, SseEvent, SseParser};

fn ev(event: Option<&str>, data: &str) -> SseEvent {
    SseEvent {
        event: event.map(str::to_string),
        data: data.to_string(),
    }
}

fn parse_whole(bytes: &[u8]) -> Vec<SseEvent> {
    SseParser::new().push(bytes)
}

/// A stream exercising every rule: comments, CRLF, CR, LF, multi-line data, `event:`,
/// a field without a colon, unknown fields, `[DONE]`, a non-ASCII character.
const STREAM: &[u8] = b": keep-alive\r\n\
event: response.output_text.delta\r\n\
data: {\"type\":\"response.output_text.delta\",\"delta\":\"h\xc3\xa9\"}\r\n\
\r\n\
data: line one\rdata:line two\r\r\
id: 7\nretry: 10\nunknown: x\ndata\n\n\
event: error\n\n\
data: [DONE]\n\n\
data: unfinished";

fn stream_events() -> Vec<SseEvent> {
    vec![
        ev(
            Some("response.output_text.delta"),
            "{\"type\":\"response.output_text.delta\",\"delta\":\"hé\"}",
        ),
        ev(None, "line one\nline two"),
        ev(None, ""),
        ev(None, "[DONE]"),
    ]
}

#[test]
fn a_whole_stream_parses_into_its_events() {
    assert_eq!(parse_whole(STREAM), stream_events());
}

#[test]
fn splitting_at_every_byte_boundary_gives_the_same_events() {
    for at in 0..=STREAM.len() {
        let mut parser = SseParser::new();
        let mut events = parser.push(&STREAM[..at]);
        events.extend(parser.push(&STREAM[at..]));
        assert_eq!(events, stream_events(), "split at byte {at}");
    }
}

#[test]
fn feeding_one_byte_at_a_time_gives_the_same_events() {
    let mut parser = SseParser::new();
    let events: Vec<SseEvent> = STREAM.iter().flat_map(|b| parser.push(&[*b])).collect();
    assert_eq!(events, stream_events());
}

#[test]
fn a_crlf_split_between_chunks_ends_one_line_not_two() {
    let mut parser = SseParser::new();
    let mut events = parser.push(b"data: a\r");
    events.extend(parser.push(b"\ndata: b\r"));
    events.extend(parser.push(b"\n\r"));
    events.extend(parser.push(b"\n"));
    assert_eq!(events, vec![ev(None, "a\nb")]);
}

#[test]
fn an_event_line_without_data_dispatches_nothing_and_does_not_leak_into_the_next() {
    assert_eq!(
        parse_whole(b"event: ping\n\ndata: x\n\n"),
        vec![ev(None, "x")]
    );
}

#[test]
fn only_one_space_after_the_colon_is_dropped() {
    assert_eq!(parse_whole(b"data:  two\n\n"), vec![ev(None, " two")]);
}

#[test]
fn a_leading_byte_order_mark_is_dropped() {
    assert_eq!(parse_whole(b"\xef\xbb\xbfdata: x\n\n"), vec![ev(None, "x")]);
}

#[test]
fn a_line_longer_than_the_limit_is_an_error_and_the_parser_stays_failed() {
    let mut parser = SseParser::with_limit(16);
    assert_eq!(parser.try_push(b"data: 0123456789"), Ok(vec![]));
    assert_eq!(parser.try_push(b"X"), Err(SseError { limit: 16 }));
    assert_eq!(parser.error(), Some(&SseError { limit: 16 }));
    assert_eq!(parser.try_push(b"\n\n"), Err(SseError { limit: 16 }));
    assert_eq!(parser.push(b"data: y\n\n"), vec![]);
}

#[test]
fn event_data_longer_than_the_limit_is_an_error_even_in_short_lines() {
    let mut parser = SseParser::with_limit(16);
    assert_eq!(
        parser.try_push(b"data: 12345\ndata: 12345\ndata: 12345\n"),
        Err(SseError { limit: 16 })
    );
}

#[test]
fn push_returns_events_completed_before_a_size_error() {
    let mut parser = SseParser::with_limit(16);
    assert_eq!(
        parser.push(b"data: ok\n\ndata: 0123456789abcdef\n\n"),
        vec![ev(None, "ok")]
    );
    assert_eq!(parser.error(), Some(&SseError { limit: 16 }));
}

#[test]
fn the_default_limit_is_eight_mebibytes() {
    let mut parser = SseParser::new();
    let big = vec![b'a'; SseParser::DEFAULT_LIMIT];
    assert_eq!(parser.try_push(&big), Ok(vec![]));
    assert_eq!(
        parser.try_push(b"a"),
        Err(SseError {
            limit: 8 * 1024 * 1024
        })
    );
}

#[test]
fn the_size_error_says_what_went_wrong() {
    assert_eq!(
        SseError { limit: 16 }.to_string(),
        "provider stream event larger than 16 bytes"
    );
}
