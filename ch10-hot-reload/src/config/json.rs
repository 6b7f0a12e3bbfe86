//! JSON (RFC 8259) read into [`Node`]s, by hand: a recursive-descent
//! reader that counts lines and columns as it goes, so that every value,
//! and every mistake, has a position.
//!
//! Strict JSON: no comments, no trailing commas, no single quotes, no
//! duplicate keys in one object (RFC 8259 only says they "should" be
//! unique; a configuration where the second `port` silently wins is a
//! trap, so it is an error here).

use super::node::{Key, MAX_DEPTH, Node, Pos, SyntaxError, Value};

// ANCHOR: reader
/// Reads one JSON document.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut r = Reader { chars: text.chars().peekable(), pos: Pos { line: 1, col: 1 } };
    r.skip_space();
    let node = r.value(0)?;
    r.skip_space();
    match r.chars.peek().copied() {
        None => Ok(node),
        Some(c) => Err(r.error(format!("unexpected {} after the document", show(c)))),
    }
}

struct Reader<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    /// The position of the next character.
    pos: Pos,
}
// ANCHOR_END: reader

fn show(c: char) -> String {
    if c.is_control() { format!("character U+{:04X}", c as u32) } else { format!("`{c}`") }
}

impl Reader<'_> {
    fn error(&self, message: String) -> SyntaxError {
        SyntaxError { pos: self.pos, message }
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.pos = Pos { line: self.pos.line + 1, col: 1 };
        } else {
            self.pos.col += 1;
        }
        Some(c)
    }

    fn skip_space(&mut self) {
        while matches!(self.chars.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.next();
        }
    }

    fn expect_word(&mut self, word: &str, value: Value) -> Result<Node, SyntaxError> {
        let pos = self.pos;
        for want in word.chars() {
            match self.next() {
                Some(c) if c == want => {}
                _ => return Err(SyntaxError { pos, message: format!("expected `{word}`") }),
            }
        }
        Ok(Node { value, pos })
    }

    // ANCHOR: value
    fn value(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("nested more than {MAX_DEPTH} levels deep")));
        }
        match self.chars.peek().copied() {
            Some('{') => self.object(depth),
            Some('[') => self.array(depth),
            Some('"') => {
                let pos = self.pos;
                Ok(Node { value: Value::Str(self.string()?), pos })
            }
            Some('t') => self.expect_word("true", Value::Bool(true)),
            Some('f') => self.expect_word("false", Value::Bool(false)),
            Some('n') => self.expect_word("null", Value::Null),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            Some(c) => Err(self.error(format!("expected a value, found {}", show(c)))),
            None => Err(self.error("expected a value, found the end of the file".into())),
        }
    }
    // ANCHOR_END: value

    fn object(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        let pos = self.pos;
        self.next();
        let mut entries: Vec<(Key, Node)> = Vec::new();
        self.skip_space();
        if self.chars.peek() == Some(&'}') {
            self.next();
            return Ok(Node { value: Value::Map(entries), pos });
        }
        loop {
            self.skip_space();
            let key_pos = self.pos;
            if self.chars.peek() != Some(&'"') {
                return Err(self.error("expected a key in double quotes".into()));
            }
            let name = self.string()?;
            if let Some((first, _)) = entries.iter().find(|(k, _)| k.name == name) {
                return Err(SyntaxError {
                    pos: key_pos,
                    message: format!("duplicate key `{name}` (first at {})", first.pos),
                });
            }
            self.skip_space();
            if self.next() != Some(':') {
                return Err(self.error(format!("expected `:` after the key `{name}`")));
            }
            self.skip_space();
            let value = self.value(depth + 1)?;
            entries.push((Key { name, pos: key_pos }, value));
            self.skip_space();
            match self.next() {
                Some(',') => {}
                Some('}') => return Ok(Node { value: Value::Map(entries), pos }),
                _ => return Err(self.error("expected `,` or `}` in an object".into())),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        let pos = self.pos;
        self.next();
        let mut items = Vec::new();
        self.skip_space();
        if self.chars.peek() == Some(&']') {
            self.next();
            return Ok(Node { value: Value::Seq(items), pos });
        }
        loop {
            self.skip_space();
            items.push(self.value(depth + 1)?);
            self.skip_space();
            match self.next() {
                Some(',') => {}
                Some(']') => return Ok(Node { value: Value::Seq(items), pos }),
                _ => return Err(self.error("expected `,` or `]` in an array".into())),
            }
        }
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        self.next(); // the opening quote
        let mut out = String::new();
        loop {
            let at = self.pos;
            match self.next() {
                None => return Err(self.error("a string that never ends".into())),
                Some('"') => return Ok(out),
                Some('\\') => match self.next() {
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some('/') => out.push('/'),
                    Some('b') => out.push('\u{8}'),
                    Some('f') => out.push('\u{c}'),
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some('t') => out.push('\t'),
                    Some('u') => out.push(self.unicode_escape(at)?),
                    _ => return Err(SyntaxError { pos: at, message: "an unknown escape in a string".into() }),
                },
                Some(c) if (c as u32) < 0x20 => {
                    return Err(SyntaxError {
                        pos: at,
                        message: format!("{} inside a string (write it as an escape)", show(c)),
                    });
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn hex4(&mut self, at: Pos) -> Result<u32, SyntaxError> {
        let mut v = 0;
        for _ in 0..4 {
            let digit = self.next().and_then(|c| c.to_digit(16));
            let Some(d) = digit else {
                return Err(SyntaxError { pos: at, message: "`\\u` must be followed by four hex digits".into() });
            };
            v = v * 16 + d;
        }
        Ok(v)
    }

    /// `\uXXXX`, and a UTF-16 surrogate pair as two of them.
    fn unicode_escape(&mut self, at: Pos) -> Result<char, SyntaxError> {
        let first = self.hex4(at)?;
        let bad = || SyntaxError { pos: at, message: "a `\\u` escape that is not a whole character".into() };
        if (0xD800..0xDC00).contains(&first) {
            if self.next() != Some('\\') || self.next() != Some('u') {
                return Err(bad());
            }
            let second = self.hex4(at)?;
            if !(0xDC00..0xE000).contains(&second) {
                return Err(bad());
            }
            let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
            return char::from_u32(code).ok_or_else(bad);
        }
        char::from_u32(first).ok_or_else(bad)
    }

    fn number(&mut self) -> Result<Node, SyntaxError> {
        let pos = self.pos;
        let mut text = String::new();
        while let Some(&c) = self.chars.peek() {
            if c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E') {
                text.push(c);
                self.next();
            } else {
                break;
            }
        }
        if !valid_number(&text) {
            return Err(SyntaxError { pos, message: format!("`{text}` is not a JSON number") });
        }
        let value = match text.parse::<i64>() {
            Ok(n) => Value::Int(n),
            Err(_) => match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Value::Float(f),
                _ => return Err(SyntaxError { pos, message: format!("`{text}` is out of range") }),
            },
        };
        Ok(Node { value, pos })
    }
}

/// RFC 8259's number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn valid_number(text: &str) -> bool {
    let rest = text.strip_prefix('-').unwrap_or(text);
    let (int, rest) = split_digits(rest);
    if int.is_empty() || (int.len() > 1 && int.starts_with('0')) {
        return false;
    }
    let rest = match rest.strip_prefix('.') {
        Some(frac) => {
            let (digits, rest) = split_digits(frac);
            if digits.is_empty() {
                return false;
            }
            rest
        }
        None => rest,
    };
    match rest.strip_prefix(['e', 'E']) {
        Some(exp) => {
            let (digits, rest) = split_digits(exp.strip_prefix(['+', '-']).unwrap_or(exp));
            !digits.is_empty() && rest.is_empty()
        }
        None => rest.is_empty(),
    }
}

fn split_digits(s: &str) -> (&str, &str) {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    // ASCII digits are one byte each: `n` is a character boundary.
    (s.get(..n).unwrap_or(""), s.get(n..).unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> (usize, usize, String) {
        let e = parse(text).unwrap_err();
        (e.pos.line, e.pos.col, e.message)
    }

    #[test]
    fn values_and_positions() {
        let doc = parse("{\n  \"a\": [1, -2.5e1, \"x\\u00e9\\ud83d\\ude00\"],\n  \"b\": {\"c\": null, \"d\": true}\n}")
            .unwrap();
        let Value::Map(entries) = doc.value else { panic!("a map") };
        assert_eq!(entries[0].0, Key { name: "a".into(), pos: Pos { line: 2, col: 3 } });
        let Value::Seq(items) = &entries[0].1.value else { panic!("a list") };
        assert_eq!(items[0], Node { value: Value::Int(1), pos: Pos { line: 2, col: 9 } });
        assert_eq!(items[1].value, Value::Float(-25.0));
        assert_eq!(items[2].value, Value::Str("xé😀".into()));
        assert_eq!(entries[1].1.pos, Pos { line: 3, col: 8 });
    }

    #[test]
    fn mistakes_are_placed() {
        assert_eq!(err("{\"a\": 1,}").0, 1);
        assert_eq!(err("{\"a\": 1, \"a\": 2}"), (1, 10, "duplicate key `a` (first at 1:2)".into()));
        assert_eq!(err("[1 2]").2, "expected `,` or `]` in an array");
        assert_eq!(err("{\n  'a': 1}"), (2, 3, "expected a key in double quotes".into()));
        assert_eq!(err("01").2, "`01` is not a JSON number");
        assert_eq!(err("\"a\nb\"").2, "character U+000A inside a string (write it as an escape)");
        assert_eq!(err("tru"), (1, 1, "expected `true`".into()));
        assert_eq!(err("{} x").2, "unexpected `x` after the document");
        assert_eq!(err("").2, "expected a value, found the end of the file");
        assert!(err(&"[".repeat(100)).2.starts_with("nested more than"));
        assert!(parse("\"\\ud800\"").is_err(), "a lone surrogate");
        for good in ["0", "-0", "1.5", "1e9", "1E+2", "-3.25e-2", "[]", "{}", "\"\""] {
            assert!(parse(good).is_ok(), "{good}");
        }
        for bad in ["+1", "1.", ".5", "1e", "--1", "0x10", "NaN"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
