//! A parsed document that remembers where everything was.
//!
//! Both formats are read into the same tree of [`Node`]s, each with the
//! line and column it started at, so that one walk over the tree can check
//! the schema and say, for any mistake, exactly where it is — whichever
//! format the operator wrote.

use std::fmt;

/// A position in a file: line and column, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1 (in characters).
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A value and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What it is.
    pub value: Value,
    /// Where it starts.
    pub pos: Pos,
}

/// A mapping's key and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The key's text.
    pub name: String,
    /// Where it starts.
    pub pos: Pos,
}

/// The values both formats can hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null` (YAML: `~`, `null` or nothing).
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number with a fraction or an exponent.
    Float(f64),
    /// A string.
    Str(String),
    /// A list.
    Seq(Vec<Node>),
    /// A mapping, its keys in file order (duplicates are refused when read).
    Map(Vec<(Key, Node)>),
}

impl Value {
    /// What the value is, as an error message says it: "a string".
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "a whole number",
            Value::Float(_) => "a number with a fraction",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// Why a file could not be read as a tree at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the reader gave up.
    pub pos: Pos,
    /// What it found, and what it expected.
    pub message: String,
}

/// Deepest nesting accepted: a configuration has a few levels; a file
/// with hundreds is a mistake or an attack on the reader's stack.
pub const MAX_DEPTH: usize = 32;
