//! The frame reader on its own: detection, both framings, oversized and malformed input,
//! with input arriving in every possible split.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use super::framing::{Frame, FrameReader, Framing};

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
    let input =
        b"\r\n CONTENT-length: 7\r\nContent-Type: x\r\n\r\n{\"a\":1}\r\ncontent-length:2\n\n{}";
    let got = frames_in_every_split(input, 100).await;
    assert_eq!(
        got,
        (
            Some(Framing::ContentLength),
            vec![message("{\"a\":1}"), message("{}")]
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

#[tokio::test]
async fn malformed_header_blocks_are_reported_and_skipped_to_their_blank_line() {
    let input = b"Content-Length: 2\r\n\r\n{}Content-Length: x\r\n\r\nno colon here\r\nContent-Length: 2\r\n\r\nContent-Type: a\r\n\r\nContent-Length: 2\r\n\r\n[]";
    let got = frames_in_every_split(input, 100).await;
    assert_eq!(
        got,
        (
            Some(Framing::ContentLength),
            vec![
                message("{}"),
                Got::BadHeader("Content-Length is not a number"),
                Got::BadHeader("header line without a colon"),
                Got::BadHeader("missing Content-Length header"),
                message("[]"),
            ]
        )
    );
}

#[tokio::test]
async fn a_header_block_without_end_is_cut_off_and_skipped_to_the_next_blank_line() {
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
