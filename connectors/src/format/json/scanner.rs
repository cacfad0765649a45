//! The scanner: one pass over a line's bytes, values handed to their
//! columns as they are read, fields looked up at their expected position.

use runnel_engine::connector::KeepOnly;

use super::columns::*;
use super::lines::{GiveBack, Step};
use super::timestamp::timestamp;

pub(super) struct Input<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) at: usize,
}

impl Input<'_> {
    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    pub(super) fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.peek() {
            self.at += 1;
        }
    }

    /// Spaces, then the end of the line: one object per line.
    pub(super) fn end_of_line(&mut self) -> Step {
        while let Some(byte) = self.peek() {
            match byte {
                b' ' | b'\t' | b'\r' => self.at += 1,
                b'\n' => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(GiveBack),
            }
        }
        Ok(())
    }

    pub(super) fn expect(&mut self, byte: u8) -> Step {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(GiveBack)
        }
    }

    pub(super) fn literal(&mut self, word: &[u8]) -> Step {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(GiveBack)
        }
    }

    /// Steps over `"name"` if that is what comes next: the field expected
    /// next is matched in place, without searching for the closing quote.
    /// A name with a quote or backslash is never matched this way (its key
    /// would be escaped in the JSON).
    pub(super) fn quoted_is(&mut self, name: Option<&Name>) -> bool {
        let Some(name) = name else {
            return false;
        };
        let rest = &self.bytes[self.at..];
        let width = name.bytes.len() + 2;
        let matched = match (name.quoted, rest.first_chunk::<16>()) {
            (Some((pattern, mask)), Some(window)) => u128::from_le_bytes(*window) & mask == pattern,
            _ => {
                rest.len() > width - 1
                    && rest[0] == b'"'
                    && rest[1..width - 1] == *name.bytes
                    && rest[width - 1] == b'"'
                    && !name.bytes.iter().any(|&b| b == b'"' || b == b'\\')
            }
        };
        if matched {
            self.at += width;
        }
        matched
    }

    /// A key's bytes; keys with escapes are given back.
    pub(super) fn key(&mut self) -> Step<&[u8]> {
        self.expect(b'"')?;
        let start = self.at;
        let end = start + memchr::memchr2(b'"', b'\\', &self.bytes[start..]).ok_or(GiveBack)?;
        if self.bytes[end] != b'"' {
            return Err(GiveBack);
        }
        self.at = end + 1;
        Ok(&self.bytes[start..end])
    }

    /// A string's contents appended to `out`, escapes decoded.
    pub(super) fn string_into(&mut self, out: &mut Vec<u8>) -> Step {
        self.expect(b'"')?;
        loop {
            let rest = &self.bytes[self.at..];
            let stop = memchr::memchr2(b'"', b'\\', rest).ok_or(GiveBack)?;
            // Raw control characters pass, as arrow-json lets them.
            out.extend_from_slice(&rest[..stop]);
            self.at += stop + 1;
            if rest[stop] == b'"' {
                return Ok(());
            }
            self.escape_into(out)?;
        }
    }

    /// A string checked as `string_into` checks it, copied nowhere.
    pub(super) fn skip_string(&mut self) -> Step {
        self.expect(b'"')?;
        // Only an escape is decoded, to check it; most strings have none.
        let mut escape = Vec::new();
        loop {
            let rest = &self.bytes[self.at..];
            let stop = memchr::memchr2(b'"', b'\\', rest).ok_or(GiveBack)?;
            self.at += stop + 1;
            if rest[stop] == b'"' {
                return Ok(());
            }
            escape.clear();
            self.escape_into(&mut escape)?;
        }
    }

    pub(super) fn escape_into(&mut self, out: &mut Vec<u8>) -> Step {
        let byte = self.peek().ok_or(GiveBack)?;
        self.at += 1;
        let simple = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let high = self.hex4()?;
                let code = if (0xD800..0xDC00).contains(&high) {
                    self.literal(b"\\u")?;
                    let low = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(GiveBack);
                    }
                    0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    high
                };
                let c = char::from_u32(code).ok_or(GiveBack)?;
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                return Ok(());
            }
            _ => return Err(GiveBack),
        };
        out.push(simple);
        Ok(())
    }

    pub(super) fn hex4(&mut self) -> Step<u32> {
        let digits = self.bytes.get(self.at..self.at + 4).ok_or(GiveBack)?;
        let text = std::str::from_utf8(digits).map_err(|_| GiveBack)?;
        let value = u32::from_str_radix(text, 16).map_err(|_| GiveBack)?;
        self.at += 4;
        Ok(value)
    }

    /// An integer without fraction or exponent (those are given back).
    pub(super) fn integer(&mut self) -> Step<i64> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let start = self.at;
        let mut value: i64 = 0;
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            let digit = i64::from(digit - b'0');
            value = value
                .checked_mul(10)
                .and_then(|v| {
                    if negative {
                        v.checked_sub(digit)
                    } else {
                        v.checked_add(digit)
                    }
                })
                .ok_or(GiveBack)?;
            self.at += 1;
        }
        let digits = self.at - start;
        // JSON has no leading zeros.
        if digits == 0 || (digits > 1 && self.bytes[start] == b'0') {
            return Err(GiveBack);
        }
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return Err(GiveBack);
        }
        Ok(value)
    }

    pub(super) fn number_text(&mut self) -> Step<&str> {
        let start = self.at;
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.peek() {
            self.at += 1;
        }
        let text = &self.bytes[start..self.at];
        if !valid_json_number(text) {
            return Err(GiveBack);
        }
        std::str::from_utf8(text).map_err(|_| GiveBack)
    }

    /// A value of a field the schema does not have.
    pub(super) fn skip_value(&mut self) -> Step {
        match self.peek().ok_or(GiveBack)? {
            b'"' => self.skip_string(),
            b'{' => {
                self.at += 1;
                self.skip_space();
                if self.peek() == Some(b'}') {
                    self.at += 1;
                    return Ok(());
                }
                loop {
                    self.skip_space();
                    self.key()?;
                    self.skip_space();
                    self.expect(b':')?;
                    self.skip_space();
                    self.skip_value()?;
                    self.skip_space();
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b'}') => {
                            self.at += 1;
                            return Ok(());
                        }
                        _ => return Err(GiveBack),
                    }
                }
            }
            b'[' => {
                self.at += 1;
                self.skip_space();
                if self.peek() == Some(b']') {
                    self.at += 1;
                    return Ok(());
                }
                loop {
                    self.skip_space();
                    self.skip_value()?;
                    self.skip_space();
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b']') => {
                            self.at += 1;
                            return Ok(());
                        }
                        _ => return Err(GiveBack),
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number_text().map(|_| ()),
        }
    }
}

/// JSON's number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
pub(super) fn valid_json_number(text: &[u8]) -> bool {
    let mut at = 0;
    let digits = |at: &mut usize| {
        let start = *at;
        while text.get(*at).is_some_and(u8::is_ascii_digit) {
            *at += 1;
        }
        *at - start
    };
    if text.first() == Some(&b'-') {
        at += 1;
    }
    let whole_start = at;
    let whole = digits(&mut at);
    if whole == 0 || (whole > 1 && text[whole_start] == b'0') {
        return false;
    }
    if text.get(at) == Some(&b'.') {
        at += 1;
        if digits(&mut at) == 0 {
            return false;
        }
    }
    if let Some(b'e' | b'E') = text.get(at) {
        at += 1;
        if let Some(b'+' | b'-') = text.get(at) {
            at += 1;
        }
        if digits(&mut at) == 0 {
            return false;
        }
    }
    at == text.len()
}

/// One object's fields into `columns`, nulls where a field is absent;
/// `false` as soon as the object turns out not to be one `keep` keeps. With
/// `keep.time_columns`, such an object is read on, but only those columns
/// (the rest come out NULL), and kept for its event time.
pub(super) fn parse_object(
    input: &mut Input<'_>,
    names: &[Name],
    columns: &mut [Column],
    keep: Option<&KeepOnly>,
) -> Step<bool> {
    let row = columns.first().map_or(0, Column::len);
    // Once the row is known not to be kept: the columns still to read.
    let mut only: Option<&[usize]> = None;
    input.expect(b'{')?;
    input.skip_space();
    if input.peek() == Some(b'}') {
        input.at += 1;
    } else {
        let mut expected = 0;
        loop {
            input.skip_space();
            let position = if input.quoted_is(names.get(expected)) {
                Some(expected)
            } else {
                let key = input.key()?;
                names.iter().position(|n| *n.bytes == *key)
            };
            input.skip_space();
            input.expect(b':')?;
            input.skip_space();
            match position {
                Some(i) if only.is_none_or(|only| only.contains(&i)) => {
                    // A key given twice: arrow-json decides which wins.
                    if columns[i].len() != row {
                        return Err(GiveBack);
                    }
                    parse_value(input, &mut columns[i])?;
                    if let Some(k) = keep
                        && k.column == i
                        && !columns[i].holds_last(&k.values)
                    {
                        match &k.time_columns {
                            None => return Ok(false),
                            Some(time_columns) => only = Some(time_columns),
                        }
                    }
                    expected = i + 1;
                }
                Some(i) => {
                    if columns[i].len() != row {
                        return Err(GiveBack);
                    }
                    input.skip_value()?;
                    expected = i + 1;
                }
                None => input.skip_value()?,
            }
            input.skip_space();
            match input.peek() {
                Some(b',') => input.at += 1,
                Some(b'}') => {
                    input.at += 1;
                    break;
                }
                _ => return Err(GiveBack),
            }
        }
    }
    for column in columns.iter_mut() {
        if column.len() == row {
            column.push_null()?;
        }
    }
    // An absent (NULL) column equals nothing.
    Ok(keep.is_none_or(|k| k.time_columns.is_some() || columns[k.column].holds_last(&k.values)))
}

pub(super) fn parse_value(input: &mut Input<'_>, column: &mut Column) -> Step {
    if input.peek() == Some(b'n') {
        input.literal(b"null")?;
        return column.push_null();
    }
    match &mut column.kind {
        Kind::Skipped => {
            input.skip_value()?;
            column.valid.push(false);
            return Ok(());
        }
        Kind::Int { values, min, max } => {
            let value = input.integer()?;
            if value < *min || value > *max {
                return Err(GiveBack);
            }
            values.push(value);
        }
        Kind::Float32(values) => {
            let value = input.number_text()?.parse().map_err(|_| GiveBack)?;
            values.push(value);
        }
        Kind::Float64(values) => {
            let value = input.number_text()?.parse().map_err(|_| GiveBack)?;
            values.push(value);
        }
        Kind::Bool(values) => match input.peek() {
            Some(b't') => {
                input.literal(b"true")?;
                values.push(true);
            }
            _ => {
                input.literal(b"false")?;
                values.push(false);
            }
        },
        Kind::Utf8 { offsets, data } => {
            input.string_into(data)?;
            offsets.push(offset(data)?);
        }
        Kind::Timestamp { values, unit } => {
            let value = if input.peek() == Some(b'"') {
                input.at += 1;
                let end =
                    input.at + memchr::memchr(b'"', &input.bytes[input.at..]).ok_or(GiveBack)?;
                let value = timestamp(&input.bytes[input.at..end], *unit)?;
                input.at = end + 1;
                value
            } else {
                input.integer()?
            };
            values.push(value);
        }
        Kind::Struct { names, children } => {
            let row = column.valid.len();
            children.iter_mut().for_each(|child| child.pad_to(row));
            parse_object(input, names, children, None)?;
        }
    }
    column.valid.push(true);
    Ok(())
}
