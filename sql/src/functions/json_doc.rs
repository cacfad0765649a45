//! JSON text read as Flink's JSON functions read it (Jackson into Java
//! objects): an integer is an `Integer`, a `Long` or a `BigInteger` by its
//! size, a number with a fraction or an exponent a `BigDecimal` (Flink
//! reads with `USE_BIG_DECIMAL_FOR_FLOATS`: `1e2` is written `1E+2`), and
//! values are written back as Jackson writes them, object keys sorted.
//! serde_json's `Value` keeps neither a number's scale nor its size.

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// An integer that fits 64 bits.
    Long(i64),
    /// A `BigInteger`: its digits, as JSON wrote them (no leading zeros).
    Big(String),
    /// A `BigDecimal`: sign, unscaled digits (no leading zeros) and scale.
    Decimal {
        negative: bool,
        digits: String,
        scale: i64,
    },
    Str(String),
    Array(Vec<Json>),
    /// Keys in their order of first appearance; a repeated key's last
    /// value wins, as in Jackson's `LinkedHashMap`.
    Object(Vec<(String, Json)>),
}

impl Json {
    pub fn is_scalar(&self) -> bool {
        !matches!(self, Json::Array(_) | Json::Object(_))
    }

    /// Java's `String.valueOf` of the scalar, for JSON_VALUE.
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            Json::Bool(b) => Some(b.to_string()),
            Json::Long(n) => Some(n.to_string()),
            Json::Big(digits) => Some(digits.clone()),
            Json::Decimal {
                negative,
                digits,
                scale,
            } => Some(big_decimal_text(*negative, digits, *scale)),
            Json::Str(s) => Some(s.clone()),
            Json::Null | Json::Array(_) | Json::Object(_) => None,
        }
    }

    /// Compact JSON text as Jackson's `ObjectMapper` writes it.
    pub fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Str(s) => write_string(s, out),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(fields) => {
                // Jackson's ORDER_MAP_ENTRIES_BY_KEYS: Java's String order,
                // by UTF-16 code units.
                let mut fields: Vec<&(String, Json)> = fields.iter().collect();
                fields.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
                out.push('{');
                for (i, (key, value)) in fields.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(key, out);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
            scalar => out.push_str(&scalar.scalar_text().unwrap_or_default()),
        }
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }
}

/// Java's `BigDecimal.toString`: plain unless the scale is negative or
/// the number is below 1e-6, then scientific with `E+n`/`E-n`.
fn big_decimal_text(negative: bool, digits: &str, scale: i64) -> String {
    let sign = if negative && digits != "0" { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let len = digits.len() as i64;
    let adjusted = -scale + (len - 1);
    if scale > 0 && adjusted >= -6 {
        let point = len - scale;
        return if point > 0 {
            let (int, frac) = digits.split_at(point as usize);
            format!("{sign}{int}.{frac}")
        } else {
            format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
        };
    }
    let (first, rest) = digits.split_at(1);
    let rest = if rest.is_empty() {
        String::new()
    } else {
        format!(".{rest}")
    };
    let exponent = match adjusted {
        0 => String::new(),
        a if a > 0 => format!("E+{a}"),
        a => format!("E{a}"),
    };
    format!("{sign}{first}{rest}{exponent}")
}

/// Jackson escapes quotes, backslashes and control characters (the usual
/// five by letter, the rest as upper-case `\u00XX`), nothing else.
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The document, or `None` for text Jackson would not read. Jackson
/// reads the first value and ignores what follows it (Flink's
/// `JSON_VALUE('{"a": 1} x', '$.a')` is 1), but a number or a word at the
/// root must end in whitespace or the end of the text.
pub fn parse(text: &str) -> Option<Json> {
    let mut reader = Reader {
        bytes: text.as_bytes(),
        at: 0,
        depth: 0,
    };
    let value = reader.value()?;
    let bare = matches!(
        value,
        Json::Null | Json::Bool(_) | Json::Long(_) | Json::Big(_) | Json::Decimal { .. }
    );
    let ends = matches!(reader.peek(), None | Some(b' ' | b'\t' | b'\n' | b'\r'));
    (!bare || ends).then_some(value)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    depth: usize,
}

/// Deeper documents are refused rather than risking the stack.
const MAX_DEPTH: usize = 512;

impl Reader<'_> {
    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.space();
        let found = self.peek() == Some(byte);
        if found {
            self.at += 1;
        }
        found
    }

    fn literal(&mut self, word: &str, value: Json) -> Option<Json> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end) == Some(word.as_bytes())).then(|| {
            self.at = end;
            value
        })
    }

    fn value(&mut self) -> Option<Json> {
        self.space();
        match self.peek()? {
            b'{' => self.nested(Self::object),
            b'[' => self.nested(Self::array),
            b'"' => self.string().map(Json::Str),
            b't' => self.literal("true", Json::Bool(true)),
            b'f' => self.literal("false", Json::Bool(false)),
            b'n' => self.literal("null", Json::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn nested(&mut self, read: fn(&mut Self) -> Option<Json>) -> Option<Json> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let value = read(self);
        self.depth -= 1;
        value
    }

    fn object(&mut self) -> Option<Json> {
        self.at += 1;
        let mut fields: Vec<(String, Json)> = Vec::new();
        if self.eat(b'}') {
            return Some(Json::Object(fields));
        }
        loop {
            self.space();
            let key = self.string()?;
            if !self.eat(b':') {
                return None;
            }
            let value = self.value()?;
            match fields.iter_mut().find(|(k, _)| *k == key) {
                Some(field) => field.1 = value,
                None => fields.push((key, value)),
            }
            if self.eat(b'}') {
                return Some(Json::Object(fields));
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn array(&mut self) -> Option<Json> {
        self.at += 1;
        let mut items = Vec::new();
        if self.eat(b']') {
            return Some(Json::Array(items));
        }
        loop {
            items.push(self.value()?);
            if self.eat(b']') {
                return Some(Json::Array(items));
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        if self.peek() != Some(b'"') {
            return None;
        }
        self.at += 1;
        let mut out = String::new();
        loop {
            let start = self.at;
            while !matches!(self.peek()?, b'"' | b'\\' | 0..=0x1f) {
                self.at += 1;
            }
            out.push_str(std::str::from_utf8(&self.bytes[start..self.at]).ok()?);
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(out);
                }
                b'\\' => {
                    self.at += 1;
                    let escaped = self.peek()?;
                    self.at += 1;
                    out.push(match escaped {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode()?,
                        _ => return None,
                    });
                }
                // Jackson refuses unescaped control characters.
                _ => return None,
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = std::str::from_utf8(self.bytes.get(self.at..self.at + 4)?).ok()?;
        let unit = u32::from_str_radix(digits, 16).ok()?;
        self.at += 4;
        Some(unit)
    }

    /// A `\u` escape; a surrogate pair makes one character. A lone
    /// surrogate, which Java keeps and Rust cannot, is refused.
    fn unicode(&mut self) -> Option<char> {
        let high = self.hex4()?;
        if (0xD800..0xDC00).contains(&high) {
            if self.bytes.get(self.at..self.at + 2) != Some(b"\\u") {
                return None;
            }
            self.at += 2;
            let low = self.hex4()?;
            if !(0xDC00..0xE000).contains(&low) {
                return None;
            }
            return char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00));
        }
        char::from_u32(high)
    }

    fn number(&mut self) -> Option<Json> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let digits = self.digits();
        // JSON has no leading zeros, and Jackson refuses them.
        if digits == 0 || (digits > 1 && self.bytes[self.at - digits] == b'0') {
            return None;
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return None;
            }
            float = true;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return None;
            }
            float = true;
        }
        let text = std::str::from_utf8(&self.bytes[start..self.at]).ok()?;
        if float {
            return decimal(text);
        }
        Some(match text.parse::<i64>() {
            Ok(n) => Json::Long(n),
            Err(_) => Json::Big(text.to_string()),
        })
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }
}

/// A JSON number with a fraction or an exponent as `new BigDecimal(text)`
/// reads it; `None` where its scale overflows Java's int, as Java refuses.
fn decimal(text: &str) -> Option<Json> {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(e) => (&text[..e], text[e + 1..].parse::<i64>().ok()?),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all = format!("{int}{frac}");
    let trimmed = all.trim_start_matches('0');
    let digits = if trimmed.is_empty() { "0" } else { trimmed };
    let scale = frac.len() as i64 - exponent;
    i32::try_from(scale).ok()?;
    Some(Json::Decimal {
        negative,
        digits: digits.to_string(),
        scale,
    })
}

impl Json {
    /// A `BigDecimal`'s `doubleValue()`: the nearest double, zero unsigned.
    pub fn decimal_value(&self) -> Option<f64> {
        let Json::Decimal {
            negative,
            digits,
            scale,
        } = self
        else {
            return None;
        };
        let value: f64 = format!("{digits}e{}", -scale).parse().ok()?;
        Some(if *negative && value != 0.0 {
            -value
        } else {
            value
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_javas_classes_and_text() {
        let doc = parse(
            r#"[3, -0, 3000000000, 123456789012345678901234, 1e2, 1.0, -0.0, 0.0001, 1.5e-7, 1.50, 12.5e1, 0e2]"#,
        );
        let Some(Json::Array(items)) = doc else {
            panic!("not read: {doc:?}")
        };
        let texts: Vec<String> = items.iter().map(Json::text).collect();
        assert_eq!(
            texts,
            [
                "3",
                "0",
                "3000000000",
                "123456789012345678901234",
                "1E+2",
                "1.0",
                "0.0",
                "0.0001",
                "1.5E-7",
                "1.50",
                "125",
                "0E+2"
            ]
        );
    }

    #[test]
    fn text_jackson_refuses_is_refused() {
        for bad in [
            "not json",
            "",
            "01",
            "+1",
            ".5",
            "1.",
            "[1,]",
            "{'a': 1}",
            "\"a\u{1}\"",
            "1x",
            "truex",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn escapes_are_read() {
        let doc = parse(r#"{"a": "\u00e9\n"}"#).expect("read");
        assert_eq!(
            doc,
            Json::Object(vec![("a".into(), Json::Str("é\n".into()))])
        );
    }

    #[test]
    fn what_follows_a_document_is_ignored() {
        assert_eq!(parse("[1] x"), Some(Json::Array(vec![Json::Long(1)])));
        assert_eq!(parse("1 x"), Some(Json::Long(1)));
    }

    #[test]
    fn strings_are_written_as_jackson_writes_them() {
        let doc = parse(r#"{"b": "x/é\ty\u0001", "a": [true, null], "b": 2}"#).expect("read");
        assert_eq!(doc.text(), r#"{"a":[true,null],"b":2}"#);
        assert_eq!(
            Json::Str("x/é\ty\u{1}\"".into()).text(),
            r#""x/é\ty\u0001\"""#
        );
    }
}
