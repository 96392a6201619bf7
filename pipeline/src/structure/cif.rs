//! Tokenizer for CIF 1.1 / STAR syntax as mmCIF uses it: bare and quoted values, `;` text fields,
//! comments, `data_`, `loop_` and tags. It yields borrowed tokens with their line numbers.

use super::error::LineError;

/// One CIF token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub text: &'a [u8],
    /// 1 for quoted values and text fields (always values, even when they look like keywords),
    /// 0 for bare ones; read through [`Token::is_quoted`]. A whole word, not a bool: the
    /// readers' loops copy tokens word by word, and a flag stored as one byte then loaded as
    /// eight stalls the store forward on every token (a third of mmCIF parsing time).
    quoted: usize,
    pub line: usize,
}

impl Token<'_> {
    pub fn is_quoted(&self) -> bool {
        self.quoted != 0
    }

    pub fn is_tag(&self) -> bool {
        !self.is_quoted() && self.text.first() == Some(&b'_')
    }

    pub fn is_loop(&self) -> bool {
        !self.is_quoted() && self.text.eq_ignore_ascii_case(b"loop_")
    }

    pub fn is_data(&self) -> bool {
        !self.is_quoted() && self.text.len() >= 5 && self.text[..5].eq_ignore_ascii_case(b"data_")
    }

    /// `?` (unknown) and `.` (inapplicable) when not quoted.
    pub fn is_null(&self) -> bool {
        !self.is_quoted() && (self.text == b"?" || self.text == b".")
    }

    /// The value as text; CIF is ASCII, anything else is replaced.
    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.text)
    }
}

/// Streaming tokenizer over the whole file.
#[derive(Debug)]
pub(crate) struct Tokenizer<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Tokenizer<'a> {
    pub fn new(text: &'a [u8]) -> Self {
        Self {
            text,
            pos: 0,
            line: 1,
        }
    }

    /// The next token, `Ok(None)` at the end. Inlined into the readers' loops: a bare value
    /// (most tokens) is a whitespace skip and a scan; quotes and text fields go out of line.
    ///
    /// # Errors
    /// An unterminated quote or text field, with the line it started on.
    #[inline(always)]
    pub fn next_token(&mut self) -> Result<Option<Token<'a>>, (usize, LineError)> {
        let t = self.text;
        let mut pos = self.pos;
        loop {
            let Some(&c) = t.get(pos) else {
                self.pos = pos;
                return Ok(None);
            };
            match c {
                b'\n' => {
                    self.line += 1;
                    pos += 1;
                }
                // Every ASCII whitespace separates tokens (form feeds do occur), as in the bare-token scan below.
                c if c.is_ascii_whitespace() => pos += 1,
                b'#' => pos = memchr::memchr(b'\n', &t[pos..]).map_or(t.len(), |o| pos + o),
                _ => break,
            }
        }
        self.pos = pos;
        match t[pos] {
            b';' if pos == 0 || t[pos - 1] == b'\n' => self.text_field(),
            b'\'' | b'"' => self.quoted(),
            _ => {
                // t[pos] is not whitespace (skipped above), so the token has at least one byte.
                let start = pos;
                pos = bare_end(t, pos + 1);
                self.pos = pos;
                Ok(Some(Token {
                    text: &t[start..pos],
                    quoted: 0,
                    line: self.line,
                }))
            }
        }
    }

    /// The next `n` tokens appended to `row`, if they are all bare values that are neither
    /// tags nor keywords: exactly what `n` calls of [`Tokenizer::next_token`] would give, without
    /// handing each token back through a `Result`. Otherwise (a quoted value, a text field, a
    /// comment, a tag, `loop_` or `data_`, the end of the text) nothing is consumed, `row` is
    /// left as it was, and the result is `false`: the caller goes on token by token.
    #[inline(never)]
    pub fn bare_values(&mut self, n: usize, row: &mut Vec<Token<'a>>) -> bool {
        let t = self.text;
        let (mut pos, mut line, kept) = (self.pos, self.line, row.len());
        for _ in 0..n {
            // Comparisons, not a `match`: a match on the byte compiles to a jump table, one
            // indirect jump per byte.
            while pos < t.len() {
                let c = t[pos];
                if c == b'\n' {
                    line += 1;
                } else if !c.is_ascii_whitespace() {
                    break;
                }
                pos += 1;
            }
            let Some(&first) = t.get(pos) else {
                row.truncate(kept);
                return false;
            };
            let special = first == b'#'
                || first == b'\''
                || first == b'"'
                || first == b'_'
                || (first == b';' && (pos == 0 || t[pos - 1] == b'\n'));
            if special {
                row.truncate(kept);
                return false;
            }
            let start = pos;
            pos = bare_end(t, pos + 1);
            let token = Token {
                text: &t[start..pos],
                quoted: 0,
                line,
            };
            if matches!(first | 0x20, b'l' | b'd') && (token.is_loop() || token.is_data()) {
                row.truncate(kept);
                return false;
            }
            row.push(token);
        }
        (self.pos, self.line) = (pos, line);
        true
    }

    /// A `;` text field starting at `self.pos`: up to a line that starts with `;`.
    #[inline(never)]
    fn text_field(&mut self) -> Result<Option<Token<'a>>, (usize, LineError)> {
        let (t, start, line) = (self.text, self.pos, self.line);
        let mut i = start + 1;
        loop {
            match memchr_newline(&t[i..]) {
                None => {
                    return Err((
                        line,
                        LineError::Unterminated {
                            what: "text field (;)",
                        },
                    ));
                }
                Some(off) => {
                    i += off + 1;
                    self.line += 1;
                    if t.get(i) == Some(&b';') {
                        let mut body = &t[start + 1..i - 1];
                        body = body.strip_suffix(b"\r").unwrap_or(body);
                        self.pos = i + 1;
                        return Ok(Some(Token {
                            text: body,
                            quoted: 1,
                            line,
                        }));
                    }
                }
            }
        }
    }

    /// A quoted value starting at `self.pos`: a quote closes only when followed by whitespace
    /// or the end (CIF 1.1).
    #[inline(never)]
    fn quoted(&mut self) -> Result<Option<Token<'a>>, (usize, LineError)> {
        let (t, start, line) = (self.text, self.pos, self.line);
        let q = t[start];
        let mut i = start + 1;
        loop {
            match t.get(i) {
                None | Some(b'\n') => {
                    return Err((
                        line,
                        LineError::Unterminated {
                            what: "quoted value",
                        },
                    ));
                }
                Some(&c) if c == q => {
                    let next = t.get(i + 1);
                    if next.is_none_or(|n| n.is_ascii_whitespace()) {
                        self.pos = i + 1;
                        return Ok(Some(Token {
                            text: &t[start + 1..i],
                            quoted: 1,
                            line,
                        }));
                    }
                    i += 1;
                }
                Some(_) => i += 1,
            }
        }
    }
}

/// Where a bare value that goes on at `pos` ends: the first whitespace from there, or the end.
#[inline(always)]
fn bare_end(t: &[u8], mut pos: usize) -> usize {
    while pos < t.len() && !t[pos].is_ascii_whitespace() {
        pos += 1;
    }
    pos
}

fn memchr_newline(s: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<(String, bool, usize)> {
        let mut t = Tokenizer::new(text.as_bytes());
        let mut out = Vec::new();
        while let Some(tok) = t.next_token().expect("valid CIF") {
            out.push((tok.as_str().into_owned(), tok.is_quoted(), tok.line));
        }
        out
    }

    #[test]
    fn reads_bare_quoted_and_text_field_values_with_line_numbers() {
        let got =
            tokens("data_x\n_a.b 'it''s ok' # comment\n_c.d\n;line one\nline two\n;\n_e.f \"q\"\n");
        assert_eq!(
            got,
            [
                ("data_x".into(), false, 1),
                ("_a.b".into(), false, 2),
                ("it''s ok".into(), true, 2),
                ("_c.d".into(), false, 3),
                ("line one\nline two".into(), true, 4),
                ("_e.f".into(), false, 7),
                ("q".into(), true, 7),
            ]
        );
    }

    #[test]
    fn unterminated_quote_names_its_line() {
        let mut t = Tokenizer::new(b"data_x\n_a.b 'open\n");
        t.next_token().expect("data_");
        t.next_token().expect("tag");
        let (line, err) = t.next_token().expect_err("unterminated");
        assert_eq!(line, 2);
        assert_eq!(err.to_string(), "unterminated quoted value");
    }

    #[test]
    fn issue_3_form_feed_separates_tokens_instead_of_looping_forever() {
        // Found by scripts/fuzz (mmcif target): a form feed inside a loop row.
        assert_eq!(
            tokens("_a.b 79\x0c82 x\n"),
            [
                ("_a.b".into(), false, 1),
                ("79".into(), false, 1),
                ("82".into(), false, 1),
                ("x".into(), false, 1)
            ]
        );
    }

    #[test]
    fn bare_values_gives_what_next_token_gives_or_consumes_nothing() {
        // Random texts from an alphabet of every byte the tokenizer treats specially (vertical
        // tab included: not whitespace), read in rows of 1 to 5 values through bare_values, each
        // row checked against next_token from the same place.
        let alphabet = b" \t\r\n\x0b\x0c#'\";_dl.?aop";
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut random = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut rows, mut refused) = (0, 0);
        for case in 0..20_000 {
            let len = (random() % 120) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| {
                    let r = random();
                    match r % 4 {
                        0 | 1 => b"abxy"[(r >> 8) as usize % 4],
                        2 => b' ',
                        _ => alphabet[(r >> 8) as usize % alphabet.len()],
                    }
                })
                .collect();
            let n = 1 + (random() % 5) as usize;
            let mut fast = Tokenizer::new(&text);
            let mut slow = Tokenizer::new(&text);
            let mut row = vec![Token {
                text: b"kept",
                quoted: 0,
                line: 0,
            }];
            loop {
                let before = (fast.pos, fast.line);
                if !fast.bare_values(n, &mut row) {
                    refused += 1;
                    assert_eq!((fast.pos, fast.line), before, "case {case}");
                    assert_eq!(row.len(), 1, "case {case}");
                    break;
                }
                rows += 1;
                let expected: Vec<Token<'_>> = (0..n)
                    .map(|_| slow.next_token().expect("valid").expect("a token"))
                    .collect();
                assert!(
                    expected
                        .iter()
                        .all(|t| !(t.is_quoted() || t.is_tag() || t.is_loop() || t.is_data()))
                );
                assert_eq!(
                    &row[1..],
                    &expected[..],
                    "case {case}: {:?}",
                    String::from_utf8_lossy(&text)
                );
                assert_eq!((fast.pos, fast.line), (slow.pos, slow.line), "case {case}");
                row.truncate(1);
            }
        }
        assert!(rows > 10_000 && refused == 20_000, "{rows} rows");
    }

    #[test]
    fn unterminated_text_field_is_an_error() {
        let mut t = Tokenizer::new(b"_a.b\n;never closed\n");
        t.next_token().expect("tag");
        assert!(t.next_token().is_err());
    }
}
