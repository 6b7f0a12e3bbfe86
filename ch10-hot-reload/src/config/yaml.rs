//! YAML read into [`Node`]s, through `yaml-rust2`'s event parser.
//!
//! The parser says what it meets (a mapping starts, a scalar, a sequence
//! ends) and where; this module builds the same tree as the JSON reader
//! from those events. Plain scalars are typed the YAML 1.2 core schema
//! way (`null`, `~`, `true`, `false`, whole numbers, numbers with a
//! fraction); anything quoted is a string, so `port: "8080"` is a string
//! and the schema will say so. Anchors and aliases are refused: a
//! configuration has no need of them, and they are how a small file
//! expands into a huge one.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::node::{Key, MAX_DEPTH, Node, Pos, SyntaxError, Value};

/// Reads one YAML document (an empty file is an empty mapping).
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    let loaded = parser.load(&mut builder, true);
    if let Some(e) = builder.error {
        return Err(e);
    }
    if let Err(e) = loaded {
        return Err(SyntaxError { pos: pos(*e.marker()), message: e.info().to_string() });
    }
    match (builder.documents, builder.root) {
        (0, _) | (_, None) => Ok(Node { value: Value::Map(Vec::new()), pos: Pos { line: 1, col: 1 } }),
        (1, Some(root)) => Ok(root),
        (_, Some(root)) => {
            Err(SyntaxError { pos: root.pos, message: "more than one document (`---`) in the file".into() })
        }
    }
}

fn pos(m: Marker) -> Pos {
    // yaml-rust2 counts lines from 1 and columns from 0.
    Pos { line: m.line().max(1), col: m.col() + 1 }
}

/// A container being filled.
enum Open {
    Seq(Vec<Node>, Pos),
    /// A mapping, and its key when the value has not come yet.
    Map(Vec<(Key, Node)>, Pos, Option<Key>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    root: Option<Node>,
    documents: usize,
    /// The first problem met; later events are ignored.
    error: Option<SyntaxError>,
}

impl Builder {
    fn fail(&mut self, at: Pos, message: String) {
        if self.error.is_none() {
            self.error = Some(SyntaxError { pos: at, message });
        }
    }

    /// A finished node goes into its parent, or becomes the root.
    fn place(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => {
                self.documents += 1;
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Open::Seq(items, _)) => items.push(node),
            Some(Open::Map(entries, _, pending)) => match pending.take() {
                Some(key) => {
                    if let Some((first, _)) = entries.iter().find(|(k, _)| k.name == key.name) {
                        let message = format!("duplicate key `{}` (first at {})", key.name, first.pos);
                        let at = key.pos;
                        self.fail(at, message);
                        return;
                    }
                    entries.push((key, node));
                }
                None => match node.value {
                    Value::Str(name) => *pending = Some(Key { name, pos: node.pos }),
                    Value::Null => *pending = Some(Key { name: String::new(), pos: node.pos }),
                    Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
                        // `80: x` — a key that YAML reads as a number; keys are names here.
                        let at = node.pos;
                        self.fail(at, "a key must be a name, not a number or a boolean (quote it)".into());
                    }
                    Value::Seq(_) | Value::Map(_) => {
                        let at = node.pos;
                        self.fail(at, "a key must be a name, not a list or a mapping".into());
                    }
                },
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let at = pos(mark);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return self.fail(at, "anchors and tags are not supported in a configuration".into());
                }
                self.place(Node { value: scalar(&text, style), pos: at });
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) if anchor != 0 || tag.is_some() => {
                self.fail(at, "anchors and tags are not supported in a configuration".into());
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if self.stack.len() >= MAX_DEPTH => {
                self.fail(at, format!("nested more than {MAX_DEPTH} levels deep"));
            }
            Event::SequenceStart(..) => self.stack.push(Open::Seq(Vec::new(), at)),
            Event::MappingStart(..) => self.stack.push(Open::Map(Vec::new(), at, None)),
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Open::Seq(items, start)) => self.place(Node { value: Value::Seq(items), pos: start }),
                Some(Open::Map(entries, start, _)) => {
                    // A block mapping's event comes after its first key has
                    // been read; the key is where the reader sees it begin.
                    let start = entries.first().map_or(start, |(k, _)| k.pos.min(start));
                    self.place(Node { value: Value::Map(entries), pos: start })
                }
                None => self.fail(at, "a container closed that was never opened".into()),
            },
            Event::Alias(_) => self.fail(at, "aliases (`*name`) are not supported in a configuration".into()),
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart | Event::DocumentEnd => {}
        }
    }
}

// ANCHOR: scalar
/// A scalar's value: typed when plain, a string when quoted or a block.
fn scalar(text: &str, style: TScalarStyle) -> Value {
    if style != TScalarStyle::Plain {
        return Value::Str(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => {
            let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(n) = text.parse::<i64>() {
                    return Value::Int(n);
                }
            }
            let numeric = digits.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
            match text.parse::<f64>() {
                Ok(f) if numeric && digits.bytes().any(|b| b.is_ascii_digit()) && f.is_finite() => Value::Float(f),
                _ => Value::Str(text.to_string()),
            }
        }
    }
}
// ANCHOR_END: scalar

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_tree_as_json_with_positions() {
        let doc =
            parse("listen:\n  port: 8080\nbackends:\n  - host: a\n    port: \"9001\"\nratio: 0.5\non: true\n").unwrap();
        let Value::Map(top) = doc.value else { panic!("a map") };
        assert_eq!(top[0].0, Key { name: "listen".into(), pos: Pos { line: 1, col: 1 } });
        let Value::Map(listen) = &top[0].1.value else { panic!() };
        assert_eq!(listen[0].1, Node { value: Value::Int(8080), pos: Pos { line: 2, col: 9 } });
        let Value::Seq(backends) = &top[1].1.value else { panic!() };
        let Value::Map(b) = &backends[0].value else { panic!() };
        assert_eq!(b[1].1.value, Value::Str("9001".into()), "quoted: a string");
        assert_eq!(top[2].1.value, Value::Float(0.5));
        assert_eq!(top[3].1.value, Value::Bool(true));
        assert_eq!(parse("").unwrap().value, Value::Map(Vec::new()));
        assert_eq!(scalar("10s", TScalarStyle::Plain), Value::Str("10s".into()));
        assert_eq!(scalar("-3", TScalarStyle::Plain), Value::Int(-3));
        assert_eq!(scalar("1e3", TScalarStyle::Plain), Value::Float(1000.0));
        assert_eq!(scalar("inf", TScalarStyle::Plain), Value::Str("inf".into()));
    }

    #[test]
    fn mistakes_are_placed() {
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!((e.pos, e.message.as_str()), (Pos { line: 3, col: 1 }, "duplicate key `a` (first at 1:1)"));
        let e = parse("base: &b {x: 1}\nother: *b\n").unwrap_err();
        assert!(e.message.contains("not supported"), "{}", e.message);
        let e = parse("a: [1, 2\n").unwrap_err();
        assert_eq!(e.pos.line, 2, "{e:?}");
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(e.message.contains("more than one document"));
        assert!(parse(&format!("{}1{}", "[".repeat(40), "]".repeat(40))).is_err());
    }
}
