//! # Lab 2 — a calculator server (reference solution)
//!
//! The task is in `src/labs/lab_2_calculator.rs`.

use std::io;
use std::net::TcpStream;

use super::CalcError;
use crate::io::write_all;
use crate::lines::{BoundedLines, Line};

/// Evaluates one request line (without its newline).
pub fn evaluate(line: &str) -> Result<i64, CalcError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let [op, a, b] = words[..] else {
        return Err(CalcError::Usage);
    };
    let operation: fn(i64, i64) -> Option<i64> = match op.to_ascii_uppercase().as_str() {
        "ADD" => i64::checked_add,
        "SUB" => i64::checked_sub,
        "MUL" => i64::checked_mul,
        "DIV" => i64::checked_div,
        _ => return Err(CalcError::UnknownOperation(op.to_string())),
    };
    let parse = |w: &str| w.parse::<i64>().map_err(|_| CalcError::NotANumber(w.to_string()));
    let (a, b) = (parse(a)?, parse(b)?);
    if op.eq_ignore_ascii_case("DIV") && b == 0 {
        return Err(CalcError::DivisionByZero);
    }
    operation(a, b).ok_or(CalcError::Overflow)
}

/// The full reply line for one raw request line.
pub fn respond(line: &[u8]) -> String {
    let result = std::str::from_utf8(line).map_err(|_| CalcError::Usage).and_then(evaluate);
    match result {
        Ok(n) => format!("{n}\n"),
        Err(e) => format!("ERR {e}\n"),
    }
}

/// Serves one calculator client.
pub fn handle_client(stream: TcpStream) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut lines = BoundedLines::new(stream, super::MAX_LINE);
    loop {
        let reply = match lines.read_line()? {
            Line::Text(text) => respond(&text),
            Line::TooLong => "ERR line too long\n".to_string(),
            Line::Eof => return Ok(()),
        };
        write_all(&mut writer, reply.as_bytes())?;
    }
}
