//! Finds the top-level `id`, `method` and `error` members of a JSON-RPC message by scanning its
//! bytes once, without building a value: the load generator must cost far less per message than
//! the fastest server it measures.

/// What the load generator needs to know about one message from the server.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scanned<'a> {
    /// The `id` as written (a number, a quoted string or `null`), if there is one.
    pub raw_id: Option<&'a [u8]>,
    /// A top-level `method`: a request or notification from the server, not an answer.
    pub has_method: bool,
    /// A top-level `error`: an error answer.
    pub has_error: bool,
}

impl Scanned<'_> {
    /// The id as an integer, when it is one.
    pub fn numeric_id(&self) -> Option<u64> {
        std::str::from_utf8(self.raw_id?).ok()?.parse().ok()
    }
}

/// Scans one message body. Malformed input gives a partial answer, never a panic.
pub fn scan(body: &[u8]) -> Scanned<'_> {
    let mut found = Scanned::default();
    let mut depth = 0usize;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                let key_start = i + 1;
                i = string_end(body, key_start);
                if depth == 1 {
                    let after = skip_ws(body, i + 1);
                    if body.get(after) == Some(&b':') {
                        let key = &body[key_start..i.min(body.len())];
                        match key {
                            b"id" => {
                                let value_start = skip_ws(body, after + 1);
                                let value_end = value_end(body, value_start);
                                found.raw_id = Some(&body[value_start..value_end]);
                                i = value_end;
                                continue;
                            }
                            b"method" => found.has_method = true,
                            b"error" => found.has_error = true,
                            _ => {}
                        }
                    }
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    found
}

/// Index of the closing quote of a string whose contents start at `i` (or the end).
fn string_end(body: &[u8], mut i: usize) -> usize {
    while i < body.len() {
        match body[i] {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    body.len()
}

fn skip_ws(body: &[u8], mut i: usize) -> usize {
    while i < body.len() && body[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// End of a scalar value (number, string, literal) starting at `i`.
fn value_end(body: &[u8], i: usize) -> usize {
    if body.get(i) == Some(&b'"') {
        return (string_end(body, i + 1) + 1).min(body.len());
    }
    let mut end = i;
    while end < body.len()
        && !matches!(body[end], b',' | b'}' | b']')
        && !body[end].is_ascii_whitespace()
    {
        end += 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_gives_its_top_level_id_and_not_a_nested_one() {
        let body =
            br#"{"jsonrpc":"2.0","result":{"account":{"id":"acct"},"x":[1,{"id":9}]},"id":42}"#;
        assert_eq!(
            scan(body),
            Scanned {
                raw_id: Some(b"42"),
                has_method: false,
                has_error: false
            }
        );
        assert_eq!(scan(body).numeric_id(), Some(42));
    }

    #[test]
    fn a_server_request_is_told_apart_from_an_answer() {
        let body =
            br#"{"id":"r-1","method":"account/chatgptAuthTokens/refresh","params":{"id":3}}"#;
        assert_eq!(
            scan(body),
            Scanned {
                raw_id: Some(b"\"r-1\""),
                has_method: true,
                has_error: false
            }
        );
    }

    #[test]
    fn an_error_answer_with_spaces_and_escapes_is_scanned() {
        let body = br#"{ "error" : {"code":-32600,"message":"bad \"id\": here"}, "id" : 7 }"#;
        assert_eq!(
            scan(body),
            Scanned {
                raw_id: Some(b"7"),
                has_method: false,
                has_error: true
            }
        );
    }
}
