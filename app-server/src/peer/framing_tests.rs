//! The framing on its own: the frame reader (detection, both framings, oversized and
//! malformed input, with input arriving in every possible split) and the encoder.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use super::framing::{encode, encode_with, Frame, FrameReader, Framing};

/// Hands out its bytes at most `step` at a time.
struct Trickle {
    bytes: Vec<u8>,
    at: usize,
    step: usize,
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self
            .step
            .min(buf.remaining())
            .min(self.bytes.len() - self.at);
        let at = self.at;
        buf.put_slice(&self.bytes[at..at + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

/// What a frame reader makes of `input` delivered `step` bytes at a time.
#[derive(Debug, PartialEq)]
enum Got {
    Message(String),
    TooLarge,
    BadHeader(&'static str),
}

async fn frames(input: &[u8], step: usize, max: usize) -> (Option<Framing>, Vec<Got>) {
    let trickle = Trickle {
        bytes: input.to_vec(),
        at: 0,
        step,
    };
    let mut reader = FrameReader::new(trickle, max);
    let mut got = Vec::new();
    loop {
        while let Some(frame) = reader.next_frame() {
            got.push(match frame {
                Frame::Message(bytes) => Got::Message(String::from_utf8_lossy(bytes).into_owned()),
                Frame::TooLarge => Got::TooLarge,
                Frame::BadHeader(why) => Got::BadHeader(why),
            });
        }
        if !reader.fill().await.unwrap() {
            while let Some(frame) = reader.next_frame() {
                if let Frame::Message(bytes) = frame {
                    got.push(Got::Message(String::from_utf8_lossy(bytes).into_owned()));
                } else {
                    panic!("unexpected frame at end of input: {frame:?}");
                }
            }
            return (reader.framing(), got);
        }
    }
}

/// Runs `frames` for every read size from 1 to 7 and one large size; all must agree.
async fn frames_in_every_split(input: &[u8], max: usize) -> (Option<Framing>, Vec<Got>) {
    let whole = frames(input, 1 << 20, max).await;
    for step in 1..8 {
        assert_eq!(frames(input, step, max).await, whole, "read size {step}");
    }
    whole
}

fn message(text: &str) -> Got {
    Got::Message(text.to_string())
}

#[tokio::test]
async fn lines_are_split_on_newlines_with_crlf_and_blank_lines_skipped() {
    let got = frames_in_every_split(b"\n  \r\n{\"a\":1}\r\n\n{\"b\":2}\n  \n{\"c\":3}", 100).await;
    assert_eq!(
        got,
        (
            Some(Framing::Lines),
            vec![
                message("{\"a\":1}"),
                message("{\"b\":2}"),
                message("{\"c\":3}")
            ]
        )
    );
}

#[tokio::test]
async fn an_oversized_line_is_reported_once_and_skipped_to_its_newline() {
    let input = format!("{}\n{{\"ok\":1}}\n{}\n", "x".repeat(50), "y".repeat(11));
    let got = frames_in_every_split(input.as_bytes(), 10).await;
    assert_eq!(
        got,
        (
            Some(Framing::Lines),
            vec![Got::TooLarge, message("{\"ok\":1}"), Got::TooLarge]
        )
    );
}

#[tokio::test]
async fn content_length_is_detected_in_any_case_and_other_headers_are_ignored() {
    let input = b"\r\n CONTENT-length: 7\r\nContent-Type: x\r\n\r\n{\"a\":1}\r\ncontent-length:2\n\n{}Content-Length : 2\r\n\r\n[]";
    let got = frames_in_every_split(input, 100).await;
    assert_eq!(
        got,
        (
            Some(Framing::ContentLength),
            vec![message("{\"a\":1}"), message("{}"), message("[]")]
        )
    );
}

#[tokio::test]
async fn text_that_merely_starts_like_the_header_is_a_line() {
    let got = frames_in_every_split(b"content-len\n", 100).await;
    assert_eq!(got, (Some(Framing::Lines), vec![message("content-len")]));
}

#[tokio::test]
async fn an_oversized_body_is_skipped_by_exactly_its_length() {
    let input = b"Content-Length: 12\r\n\r\n\nContent-Len\nContent-Length: 2\r\n\r\n{}";
    let got = frames_in_every_split(input, 5).await;
    assert_eq!(
        got,
        (
            Some(Framing::ContentLength),
            vec![Got::TooLarge, message("{}")]
        )
    );
}

fn framed(body: &str) -> String {
    format!("Content-Length: {}\r\n\r\n{body}", body.len())
}

#[tokio::test]
async fn after_a_malformed_header_block_the_next_content_length_is_served() {
    let input = [
        framed("{}"),
        "Content-Length: x\r\n\r\n{\"a\":1}".to_string(),
        framed("[1]"),
        "Content-Length: -1\r\n\r\n{\"b\":2}".to_string(),
        framed("[2]"),
        "Content-Length: 7\r\nno colon here\r\n\r\n{\"c\":3}".to_string(),
        framed("[3]"),
        "Content-Type: a\r\n\r\n{\"d\":4}".to_string(),
        framed("[4]"),
        "Content-Length: 7\r\n{bad}: x\r\n\r\n{\"e\":5}".to_string(),
        framed("[5]"),
    ]
    .concat();
    let got = frames_in_every_split(input.as_bytes(), 100).await;
    assert_eq!(
        got,
        (
            Some(Framing::ContentLength),
            vec![
                message("{}"),
                Got::BadHeader("Content-Length is not a non-negative integer"),
                message("[1]"),
                Got::BadHeader("Content-Length is not a non-negative integer"),
                message("[2]"),
                Got::BadHeader("header line without a colon"),
                message("[3]"),
                Got::BadHeader("missing Content-Length header"),
                message("[4]"),
                Got::BadHeader("malformed header name"),
                message("[5]"),
            ]
        )
    );
}

#[tokio::test]
async fn a_header_line_that_holds_the_next_header_resynchronises_there() {
    // No blank line after the first header: the "header" that follows is the body run
    // into the next message's header line.
    let input = format!("Content-Length: 2\r\n{{}}{}", framed("[1]"));
    let got = frames_in_every_split(input.as_bytes(), 100).await;
    assert_eq!(
        got,
        (
            Some(Framing::ContentLength),
            vec![Got::BadHeader("malformed header name"), message("[1]")]
        )
    );
}

#[tokio::test]
async fn junk_where_a_header_is_expected_is_one_error_then_the_next_header_is_served() {
    let input = format!("{}hello there\r\n{}", framed("[0]"), framed("[1]"));
    let got = frames_in_every_split(input.as_bytes(), 100).await;
    assert_eq!(
        got,
        (
            Some(Framing::ContentLength),
            vec![
                message("[0]"),
                Got::BadHeader("expected a Content-Length header"),
                message("[1]")
            ]
        )
    );
}

#[tokio::test]
async fn a_bare_json_line_where_a_header_is_expected_is_cut_out_as_a_message() {
    let input = format!(
        "{}\r\n{{\"id\":5}}\r\n{}[6]\n{}",
        framed("[0]"),
        framed("[1]"),
        framed("[2]")
    );
    let got = frames_in_every_split(input.as_bytes(), 100).await;
    assert_eq!(
        got,
        (
            Some(Framing::ContentLength),
            vec![
                message("[0]"),
                message("{\"id\":5}"),
                message("[1]"),
                message("[6]"),
                message("[2]"),
            ]
        )
    );
}

/// Like `frames`, but every body that is not JSON is reported back as the connection
/// does.
async fn frames_rejecting_bad_bodies(input: &[u8], step: usize) -> Vec<Got> {
    let trickle = Trickle {
        bytes: input.to_vec(),
        at: 0,
        step,
    };
    let mut reader = FrameReader::new(trickle, 1000);
    let mut got = Vec::new();
    loop {
        while let Some(frame) = reader.next_frame() {
            let item = match frame {
                Frame::Message(bytes) => {
                    let text = String::from_utf8_lossy(bytes).into_owned();
                    let json = serde_json::from_slice::<serde_json::Value>(bytes).is_ok();
                    if !json {
                        reader.reject_body();
                    }
                    Got::Message(text)
                }
                Frame::TooLarge => Got::TooLarge,
                Frame::BadHeader(why) => Got::BadHeader(why),
            };
            got.push(item);
        }
        if !reader.fill().await.unwrap() {
            return got;
        }
    }
}

#[tokio::test]
async fn the_tail_of_a_body_counted_in_characters_costs_no_second_error() {
    let body = "{\"s\":\"héé\"}";
    let chars = body.chars().count();
    let short = format!("Content-Length: {chars}\r\n\r\n{body}");
    let input = format!("{short}{}", framed("[1]"));
    let cut = String::from_utf8_lossy(&body.as_bytes()[..chars]).into_owned();
    for step in [1, 2, 3, 5, 1 << 20] {
        let got = frames_rejecting_bad_bodies(input.as_bytes(), step).await;
        assert_eq!(
            got,
            vec![Got::Message(cut.clone()), message("[1]")],
            "read size {step}"
        );
    }
}

#[tokio::test]
async fn a_leading_byte_order_mark_is_ignored_in_both_framings() {
    let mut input = b"\xEF\xBB\xBF".to_vec();
    input.extend(framed("{}").as_bytes());
    let got = frames_in_every_split(&input, 100).await;
    assert_eq!(got, (Some(Framing::ContentLength), vec![message("{}")]));
    let got = frames_in_every_split(b"\xEF\xBB\xBF{\"a\":1}\n", 100).await;
    assert_eq!(got, (Some(Framing::Lines), vec![message("{\"a\":1}")]));
}

#[tokio::test]
async fn a_header_block_without_end_is_cut_off_and_skipped_to_the_next_content_length() {
    let mut input = b"Content-Length: 2\r\nX: ".to_vec();
    input.extend(std::iter::repeat_n(b'a', 20_000));
    input.extend(b"\r\n\r\nContent-Length: 2\r\n\r\n{}");
    let got = frames_in_every_split(&input, 100).await;
    assert_eq!(
        got,
        (
            Some(Framing::ContentLength),
            vec![Got::BadHeader("header block too long"), message("{}")]
        )
    );
}

#[tokio::test]
async fn a_truncated_body_at_end_of_input_yields_nothing() {
    let got = frames_in_every_split(b"Content-Length: 10\r\n\r\n{}", 100).await;
    assert_eq!(got, (Some(Framing::ContentLength), vec![]));
}

#[test]
fn encode_wraps_the_bytes_of_a_message_in_either_framing() {
    let mut out = b"before".to_vec();
    encode(&mut out, Framing::Lines, b"{\"a\":1}");
    encode(&mut out, Framing::ContentLength, "[\"é\"]".as_bytes());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "before{\"a\":1}\nContent-Length: 6\r\n\r\n[\"é\"]"
    );
}

#[test]
fn encode_with_writes_the_same_bytes_as_encode_whatever_its_scratch_held() {
    for framing in [Framing::Lines, Framing::ContentLength] {
        let mut expected = b"before".to_vec();
        encode(&mut expected, framing, b"{\"a\":1}");
        encode(&mut expected, framing, b"{\"bb\":22}");
        let (mut out, mut scratch) = (b"before".to_vec(), b"stale".to_vec());
        encode_with(&mut out, &mut scratch, framing, |body| {
            body.extend_from_slice(b"{\"a\":1}")
        });
        encode_with(&mut out, &mut scratch, framing, |body| {
            body.extend_from_slice(b"{\"bb\":22}")
        });
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(expected).unwrap(),
            "{framing:?}"
        );
    }
}

#[tokio::test]
async fn the_reader_cuts_out_exactly_the_bodies_that_encode_framed() {
    let bodies = ["{\"a\":1}", "[\"é\"]", "{}"];
    for framing in [Framing::Lines, Framing::ContentLength] {
        let mut input = Vec::new();
        for body in bodies {
            encode(&mut input, framing, body.as_bytes());
        }
        let got = frames_in_every_split(&input, 100).await;
        assert_eq!(got, (Some(framing), Vec::from(bodies.map(message))));
    }
}
