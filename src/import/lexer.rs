//! A small streaming JSON lexer for ncdu exports: it reads through one fixed buffer, never holds
//! more than the current token, and knows where it is (line, column, byte offset) so that every
//! error names its position.
//!
//! Strings are byte strings: ncdu writes names as their raw bytes, so bytes that are not valid
//! UTF-8 pass through, and `\u` escapes become the UTF-8 of their code point (a surrogate pair
//! joined, a lone surrogate U+FFFD). Raw control characters are refused, as JSON says.

use std::io::{self, Read};

/// Where the lexer stands: 1-based line and column (in bytes), 0-based byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub column: u64,
    pub offset: u64,
}

/// Why the input is not a readable export, and where.
#[derive(Debug)]
pub enum LexError {
    Syntax { at: Position, what: String },
    Io(io::Error),
}

pub type Result<T> = std::result::Result<T, LexError>;

const BUF: usize = 256 * 1024;

/// Containers deeper than this inside a value we skip (an unknown field) are refused: no
/// export has them, and the skip counts them anyway without recursion.
const SKIP_DEPTH: u32 = 10_000;

/// The longest string kept (names are at most 255 bytes, a root path at most a few KiB): a
/// longer one is refused where it starts, so that a small compressed file cannot make the
/// reader hold gigabytes of one string. Skipped strings are not kept, so have no limit.
pub const MAX_STRING: usize = 64 * 1024;

pub struct Lexer<R> {
    src: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// Offset of `buf[0]` in the stream.
    base: u64,
    line: u64,
    /// Offset of the first byte of the current line.
    line_start: u64,
    eof: bool,
}

impl<R: Read> Lexer<R> {
    pub fn new(src: R) -> Lexer<R> {
        Lexer {
            src,
            buf: vec![0; BUF].into_boxed_slice(),
            pos: 0,
            end: 0,
            base: 0,
            line: 1,
            line_start: 0,
            eof: false,
        }
    }

    #[must_use]
    pub fn position(&self) -> Position {
        let offset = self.base + self.pos as u64;
        Position {
            line: self.line,
            column: offset - self.line_start + 1,
            offset,
        }
    }

    /// An error at the current position.
    pub fn error<T>(&self, what: impl Into<String>) -> Result<T> {
        Err(error_at(self.position(), what))
    }

    fn refill(&mut self) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        self.base += self.end as u64;
        self.pos = 0;
        self.end = 0;
        loop {
            match self.src.read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The decompressor says where in its own data it failed.
                Err(e) if super::source::ZstdError::inside(&e).is_some() => {
                    return Err(LexError::Io(e));
                }
                // A corrupt or cut stream otherwise: say how far its data went.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                    ) =>
                {
                    return self.error(e.to_string());
                }
                Err(e) => return Err(LexError::Io(e)),
            }
        }
    }

    /// The next byte, not consumed; `None` at the end of the input.
    #[inline]
    pub fn peek(&mut self) -> Result<Option<u8>> {
        if self.pos == self.end && !self.refill()? {
            return Ok(None);
        }
        Ok(Some(self.buf[self.pos]))
    }

    /// The next byte, consumed; the end of the input is an error.
    #[inline]
    fn next_byte(&mut self) -> Result<u8> {
        match self.peek()? {
            Some(b) => {
                self.pos += 1;
                Ok(b)
            }
            None => self.error("unexpected end of the file"),
        }
    }

    /// Skips whitespace; returns the next byte (not consumed), `None` at the end.
    #[inline]
    pub fn skip_ws(&mut self) -> Result<Option<u8>> {
        loop {
            while self.pos < self.end {
                match self.buf[self.pos] {
                    b' ' | b'\t' | b'\r' => self.pos += 1,
                    b'\n' => {
                        self.pos += 1;
                        self.line += 1;
                        self.line_start = self.base + self.pos as u64;
                    }
                    b => return Ok(Some(b)),
                }
            }
            if !self.refill()? {
                return Ok(None);
            }
        }
    }

    /// The next non-space byte, consumed; the end of the input is an error.
    #[inline]
    pub fn next_token(&mut self) -> Result<u8> {
        match self.skip_ws()? {
            Some(b) => {
                self.pos += 1;
                Ok(b)
            }
            None => self.error("unexpected end of the file"),
        }
    }

    /// Consumes `want` (after whitespace) or fails naming what was expected.
    #[inline]
    pub fn expect(&mut self, want: u8, what: &str) -> Result<()> {
        let at = self.skip_ws()?;
        match at {
            Some(b) if b == want => {
                self.pos += 1;
                Ok(())
            }
            Some(b) => self.error(format!("expected {what}, found {}", shown(b))),
            None => self.error(format!("unexpected end of the file (expected {what})")),
        }
    }

    /// A string's bytes into `out` (cleared first), after its opening quote was consumed; one
    /// longer than `MAX_STRING` is refused.
    pub fn string_into(&mut self, out: &mut Vec<u8>) -> Result<()> {
        self.string(out, true)
    }

    /// A string read through and dropped (`scratch` holds at most a buffer's worth at a time).
    fn skip_string(&mut self, scratch: &mut Vec<u8>) -> Result<()> {
        self.string(scratch, false)
    }

    fn string(&mut self, out: &mut Vec<u8>, keep: bool) -> Result<()> {
        out.clear();
        let at = self.position();
        loop {
            if out.len() > MAX_STRING {
                if keep {
                    return Err(error_at(
                        at,
                        format!("a string longer than {MAX_STRING} bytes"),
                    ));
                }
                out.clear();
            }
            // The fast path: a run of plain bytes straight from the buffer.
            let start = self.pos;
            let mut i = start;
            while i < self.end {
                let b = self.buf[i];
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                i += 1;
            }
            out.extend_from_slice(&self.buf[start..i]);
            self.pos = i;
            if i == self.end {
                if !self.refill()? {
                    return self.error("unexpected end of the file inside a string");
                }
                continue;
            }
            match self.buf[i] {
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                b'\\' => {
                    self.pos += 1;
                    self.escape(out)?;
                }
                _ => return self.error("a control character inside a string (it must be escaped)"),
            }
        }
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let at = self.position();
        let b = self.next_byte()?;
        let c = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let mut cp = u32::from(self.hex4()?);
                if (0xD800..0xDC00).contains(&cp) {
                    // A high surrogate: its low half should follow as another `\u`.
                    if self.peek()? == Some(b'\\') {
                        self.pos += 1;
                        if self.next_byte()? != b'u' {
                            return Err(error_at(at, "a surrogate escape not followed by \\u"));
                        }
                        let low = u32::from(self.hex4()?);
                        cp = if (0xDC00..0xE000).contains(&low) {
                            0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            0xFFFD
                        };
                    } else {
                        cp = 0xFFFD;
                    }
                } else if (0xDC00..0xE000).contains(&cp) {
                    cp = 0xFFFD;
                }
                let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut utf8).as_bytes());
                return Ok(());
            }
            other => {
                return Err(error_at(
                    at,
                    format!("an invalid escape \\{}", shown(other)),
                ));
            }
        };
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u16> {
        let mut v = 0u16;
        for _ in 0..4 {
            let at = self.position();
            let b = self.next_byte()?;
            let d = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return Err(error_at(at, "a \\u escape needs four hex digits")),
            };
            v = v << 4 | u16::from(d);
        }
        Ok(v)
    }

    /// An integer (after whitespace): `-`? digits, nothing after them that makes it a fraction
    /// or exponent. Returned as i128 so that both u64 and i64 fields check their own range.
    pub fn integer(&mut self) -> Result<i128> {
        self.skip_ws()?;
        let at = self.position();
        let neg = self.peek()? == Some(b'-');
        if neg {
            self.pos += 1;
        }
        // Digits straight from the buffer (a number may straddle two reads).
        let mut v: u64 = 0;
        let mut too_large = false;
        let mut digits = 0usize;
        loop {
            let start = self.pos;
            let mut i = start;
            while i < self.end {
                let d = self.buf[i].wrapping_sub(b'0');
                if d > 9 {
                    break;
                }
                match v.checked_mul(10).and_then(|x| x.checked_add(u64::from(d))) {
                    Some(x) => v = x,
                    None => too_large = true,
                }
                i += 1;
            }
            digits += i - start;
            self.pos = i;
            if i < self.end || !self.refill()? {
                break;
            }
        }
        if digits == 0 {
            return Err(error_at(at, "expected a number"));
        }
        if let Some(b'.' | b'e' | b'E') = self.peek()? {
            return Err(error_at(at, "expected a whole number"));
        }
        if too_large {
            return Err(error_at(at, "a number too large"));
        }
        let v = i128::from(v);
        Ok(if neg { -v } else { v })
    }

    /// An unsigned integer that fits `max`.
    pub fn unsigned(&mut self, max: u64) -> Result<u64> {
        self.skip_ws()?;
        let at = self.position();
        let v = self.integer()?;
        if v < 0 {
            return Err(error_at(
                at,
                "a negative number where a size or count belongs",
            ));
        }
        u64::try_from(v)
            .ok()
            .filter(|&v| v <= max)
            .ok_or_else(|| error_at(at, "a number too large"))
    }

    /// `true` or `false` (after whitespace).
    pub fn boolean(&mut self) -> Result<bool> {
        self.skip_ws()?;
        let at = self.position();
        match self.next_byte()? {
            b't' => self.literal(b"rue", at).map(|()| true),
            b'f' => self.literal(b"alse", at).map(|()| false),
            _ => Err(error_at(at, "expected true or false")),
        }
    }

    fn literal(&mut self, rest: &[u8], at: Position) -> Result<()> {
        for &want in rest {
            if self.next_byte()? != want {
                return Err(error_at(at, "an invalid literal"));
            }
        }
        Ok(())
    }

    /// Skips one value of any kind (after whitespace), nested containers included, without
    /// recursion.
    pub fn skip_value(&mut self, scratch: &mut Vec<u8>) -> Result<()> {
        // The closing byte of each open container.
        let mut open: Vec<u8> = Vec::new();
        loop {
            self.skip_ws()?;
            let at = self.position();
            match self.next_byte()? {
                c @ (b'{' | b'[') => {
                    let close = if c == b'{' { b'}' } else { b']' };
                    if self.skip_ws()? == Some(close) {
                        self.pos += 1;
                    } else {
                        if open.len() as u32 >= SKIP_DEPTH {
                            return Err(error_at(at, "nested too deeply"));
                        }
                        open.push(close);
                        if close == b'}' {
                            self.member_key(scratch)?;
                        }
                        continue;
                    }
                }
                b'"' => self.skip_string(scratch)?,
                b't' => self.literal(b"rue", at)?,
                b'f' => self.literal(b"alse", at)?,
                b'n' => self.literal(b"ull", at)?,
                b'-' | b'0'..=b'9' => {
                    while let Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') = self.peek()? {
                        self.pos += 1;
                    }
                }
                b => {
                    return Err(error_at(
                        at,
                        format!("expected a value, found {}", shown(b)),
                    ));
                }
            }
            // After a value: its container goes on or closes (maybe several at once).
            loop {
                let Some(&close) = open.last() else {
                    return Ok(());
                };
                let at = self.position();
                match self.next_token()? {
                    b',' => {
                        if close == b'}' {
                            self.member_key(scratch)?;
                        }
                        break;
                    }
                    b if b == close => {
                        open.pop();
                    }
                    b => {
                        return Err(error_at(
                            at,
                            format!("expected ',' or {}, found {}", shown(close), shown(b)),
                        ));
                    }
                }
            }
        }
    }

    /// After `{`: a member's key and its colon.
    fn member_key(&mut self, scratch: &mut Vec<u8>) -> Result<()> {
        self.expect(b'"', "a member name")?;
        self.skip_string(scratch)?;
        self.expect(b':', "':'")
    }
}

/// A syntax error at `at`.
#[must_use]
pub fn error_at(at: Position, what: impl Into<String>) -> LexError {
    LexError::Syntax {
        at,
        what: what.into(),
    }
}

/// A byte as an error message shows it.
#[must_use]
pub fn shown(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", char::from(b))
    } else {
        format!("byte 0x{b:02x}")
    }
}
