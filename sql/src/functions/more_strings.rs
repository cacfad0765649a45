//! Flink's string functions DataFusion lacks: `LOCATE`, `INSTR`, `SPLIT_INDEX`,
//! `ELT`, `REGEXP`, `REGEXP_SUBSTR`, `STARTSWITH`/`ENDSWITH`, `PARSE_URL`,
//! `URL_ENCODE`/`URL_DECODE`, `TO_BASE64`/`FROM_BASE64`, `HEX`, `BIN`,
//! `IS_ALPHA`/`IS_DECIMAL`/`IS_DIGIT`, `SHA2`.

use base64::Engine as _;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility};

use super::row_fn::{RowFn, exact, integer, string, text};

fn text_result(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Utf8)
}

fn boolean_result(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Boolean)
}

fn int_result(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Int32)
}

fn texts(args: &[ScalarValue]) -> Option<Vec<&str>> {
    args.iter().map(text).collect()
}

/// `LOCATE(sub, s [, from])`: 1-based, 0 when not found; a `from` below 1
/// is 1.
pub fn locate() -> ScalarUDF {
    RowFn::udf(
        "locate",
        exact(vec![
            vec![DataType::Utf8, DataType::Utf8],
            vec![DataType::Utf8, DataType::Utf8, DataType::Int64],
        ]),
        int_result,
        |args, _| {
            let (Some(sub), Some(s)) = (text(&args[0]), text(&args[1])) else {
                return Ok(ScalarValue::Int32(None));
            };
            let from = match args.get(2) {
                None => 1,
                Some(v) => match integer(v) {
                    Some(v) => v,
                    None => return Ok(ScalarValue::Int32(None)),
                },
            };
            // A start before the first character is the first.
            let skip = (from.max(1) - 1) as usize;
            let Some((byte, _)) = s
                .char_indices()
                .nth(skip)
                .or_else(|| (s.chars().count() == skip).then_some((s.len(), ' ')))
            else {
                return Ok(ScalarValue::Int32(Some(0)));
            };
            Ok(ScalarValue::Int32(Some(match s[byte..].find(sub) {
                Some(at) => (skip + s[byte..byte + at].chars().count() + 1) as i32,
                None => 0,
            })))
        },
    )
}

/// `INSTR(s, sub [, start [, nth]])`: the 1-based character position of
/// the `nth` appearance of `sub` at or after `start` (appearances may
/// overlap), 0 when there is none; a negative `start` counts from the end
/// and searches backwards, 0 finds nothing, as Flink's (Hive's) does.
pub fn instr() -> ScalarUDF {
    RowFn::udf(
        "instr",
        exact(vec![
            vec![DataType::Utf8, DataType::Utf8],
            vec![DataType::Utf8, DataType::Utf8, DataType::Int64],
            vec![
                DataType::Utf8,
                DataType::Utf8,
                DataType::Int64,
                DataType::Int64,
            ],
        ]),
        int_result,
        |args, _| {
            let (Some(s), Some(sub)) = (text(&args[0]), text(&args[1])) else {
                return Ok(ScalarValue::Int32(None));
            };
            let mut numbers = [1, 1];
            for (number, arg) in numbers.iter_mut().zip(&args[2..]) {
                match integer(arg) {
                    Some(n) => *number = n,
                    None => return Ok(ScalarValue::Int32(None)),
                }
            }
            let [start, nth] = numbers;
            if nth <= 0 {
                return datafusion::common::exec_err!("nthAppearance must be positive!");
            }
            let s: Vec<char> = s.chars().collect();
            let sub: Vec<char> = sub.chars().collect();
            Ok(ScalarValue::Int32(Some(
                appearance(&s, &sub, start, nth) as i32
            )))
        },
    )
}

fn appearance(s: &[char], sub: &[char], start: i64, nth: i64) -> i64 {
    if start < 0 {
        let reversed = |chars: &[char]| chars.iter().rev().copied().collect::<Vec<_>>();
        return match appearance(&reversed(s), &reversed(sub), -start, nth) {
            0 => 0,
            at => s.len() as i64 + 2 - at - sub.len() as i64,
        };
    }
    if start == 0 {
        return 0;
    }
    let mut from = start;
    let mut at = 0;
    for _ in 0..nth {
        at = index_of(s, sub, from - 1) + 1;
        if at == 0 {
            return 0;
        }
        from = at + 1;
    }
    at
}

/// Flink's `BinaryStringData.indexOf`: 0-based, -1 when absent; an empty
/// `sub` is at 0 wherever the search starts.
fn index_of(s: &[char], sub: &[char], from: i64) -> i64 {
    if sub.is_empty() {
        return 0;
    }
    let from = from.max(0) as usize;
    if from + sub.len() > s.len() {
        return -1;
    }
    (from..=s.len() - sub.len())
        .find(|&i| s[i..i + sub.len()] == *sub)
        .map_or(-1, |i| i as i64)
}

/// `SPLIT_INDEX(s, separator, index)`: the 0-based `index`th part, NULL
/// when there is none.
pub fn split_index() -> ScalarUDF {
    RowFn::udf(
        "split_index",
        exact(vec![vec![DataType::Utf8, DataType::Utf8, DataType::Int64]]),
        text_result,
        |args, _| {
            let (Some(s), Some(separator), Some(index)) =
                (text(&args[0]), text(&args[1]), integer(&args[2]))
            else {
                return Ok(string(None));
            };
            let Ok(index) = usize::try_from(index) else {
                return Ok(string(None));
            };
            if separator.is_empty() {
                return Ok(string((index == 0).then(|| s.to_string())));
            }
            Ok(string(s.split(separator).nth(index).map(str::to_string)))
        },
    )
}

/// `ELT(n, e1, e2, ...)`: the `n`th expression, NULL past the last.
pub fn elt() -> ScalarUDF {
    RowFn::udf(
        "elt",
        Signature::variadic_any(Volatility::Immutable),
        |args| match args.split_first() {
            Some((n, rest)) if n.is_integer() && !rest.is_empty() => Ok(rest[0].clone()),
            _ => plan_err!("ELT takes an index and expressions, not {args:?}"),
        },
        |args, returns| {
            let picked = integer(&args[0])
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n >= 1)
                .and_then(|n| args.get(n));
            match picked {
                Some(value) => value.cast_to(returns),
                None => ScalarValue::try_from(returns),
            }
        },
    )
}

/// `REGEXP(s, regex)`: whether the expression matches anywhere in `s`;
/// FALSE for an expression that is not valid.
pub fn regexp() -> ScalarUDF {
    RowFn::udf(
        "regexp",
        exact(vec![vec![DataType::Utf8, DataType::Utf8]]),
        boolean_result,
        |args, _| {
            let (Some(s), Some(pattern)) = (text(&args[0]), text(&args[1])) else {
                return Ok(ScalarValue::Boolean(None));
            };
            // An expression that is not valid matches nothing.
            Ok(ScalarValue::Boolean(Some(super::regexp::with_regex(
                pattern,
                |regex| regex.is_some_and(|r| r.is_match(s)),
            ))))
        },
    )
}

/// `REGEXP_SUBSTR(s, regex)`: the first match, NULL without one.
pub fn regexp_substr() -> ScalarUDF {
    RowFn::udf(
        "regexp_substr",
        exact(vec![vec![DataType::Utf8, DataType::Utf8]]),
        text_result,
        |args, _| {
            let (Some(s), Some(pattern)) = (text(&args[0]), text(&args[1])) else {
                return Ok(string(None));
            };
            Ok(string(super::regexp::with_regex(pattern, |regex| {
                regex
                    .and_then(|r| r.find(s))
                    .map(|m| m.as_str().to_string())
            })))
        },
    )
}

fn affix<const START: bool>(args: &[ScalarValue], _: &DataType) -> Result<ScalarValue> {
    Ok(ScalarValue::Boolean(
        match (text(&args[0]), text(&args[1])) {
            (Some(s), Some(affix)) => Some(if START {
                s.starts_with(affix)
            } else {
                s.ends_with(affix)
            }),
            _ => None,
        },
    ))
}

pub fn startswith() -> ScalarUDF {
    RowFn::udf(
        "startswith",
        exact(vec![vec![DataType::Utf8, DataType::Utf8]]),
        boolean_result,
        affix::<true>,
    )
}

pub fn endswith() -> ScalarUDF {
    RowFn::udf(
        "endswith",
        exact(vec![vec![DataType::Utf8, DataType::Utf8]]),
        boolean_result,
        affix::<false>,
    )
}

/// `PARSE_URL(url, part [, key])`: HOST, PATH, QUERY (or one key of it),
/// REF, PROTOCOL, FILE, AUTHORITY, USERINFO, as Java's `URL` splits them.
pub fn parse_url() -> ScalarUDF {
    RowFn::udf(
        "parse_url",
        exact(vec![
            vec![DataType::Utf8, DataType::Utf8],
            vec![DataType::Utf8, DataType::Utf8, DataType::Utf8],
        ]),
        text_result,
        |args, _| {
            let Some(parts) = texts(args) else {
                return Ok(string(None));
            };
            let Ok(url) = url::Url::parse(parts[0]) else {
                return Ok(string(None));
            };
            let query = url.query();
            let value = match parts[1] {
                "HOST" => url.host_str().map(str::to_string),
                "PATH" => Some(url.path().to_string()),
                "QUERY" => match parts.get(2) {
                    None => query.map(str::to_string),
                    Some(key) => query.and_then(|q| {
                        q.split('&').find_map(|pair| {
                            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                            (k == *key).then(|| v.to_string())
                        })
                    }),
                },
                "REF" => url.fragment().map(str::to_string),
                "PROTOCOL" => Some(url.scheme().to_string()),
                "FILE" => Some(match query {
                    Some(q) => format!("{}?{q}", url.path()),
                    None => url.path().to_string(),
                }),
                "AUTHORITY" => url.host_str().map(|host| match url.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_string(),
                }),
                "USERINFO" => (!url.username().is_empty()).then(|| match url.password() {
                    Some(password) => format!("{}:{password}", url.username()),
                    None => url.username().to_string(),
                }),
                _ => None,
            };
            Ok(string(value))
        },
    )
}

/// `URL_ENCODE(s)`: `application/x-www-form-urlencoded`, as Java's
/// `URLEncoder` writes it (a space is `+`).
pub fn url_encode() -> ScalarUDF {
    RowFn::udf(
        "url_encode",
        exact(vec![vec![DataType::Utf8]]),
        text_result,
        |args, _| {
            Ok(string(text(&args[0]).map(|s| {
                url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
            })))
        },
    )
}

/// `URL_DECODE(s)`: NULL for text that is not well encoded.
pub fn url_decode() -> ScalarUDF {
    RowFn::udf(
        "url_decode",
        exact(vec![vec![DataType::Utf8]]),
        text_result,
        |args, _| {
            Ok(string(text(&args[0]).and_then(|s| {
                // Java's URLDecoder refuses a `%` without two hex digits.
                let bytes = s.as_bytes();
                let well_escaped = bytes.iter().enumerate().all(|(i, &b)| {
                    b != b'%'
                        || bytes
                            .get(i + 1..i + 3)
                            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
                });
                if !well_escaped {
                    return None;
                }
                let plus_as_space = s.replace('+', " ");
                percent_encoding::percent_decode_str(&plus_as_space)
                    .decode_utf8()
                    .ok()
                    .map(|s| s.into_owned())
            })))
        },
    )
}

pub fn to_base64() -> ScalarUDF {
    RowFn::udf(
        "to_base64",
        exact(vec![vec![DataType::Utf8]]),
        text_result,
        |args, _| {
            Ok(string(text(&args[0]).map(|s| {
                base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
            })))
        },
    )
}

/// `FROM_BASE64(s)`: the decoded text; NULL when it is not UTF-8, an error
/// (as Flink's) when it is not base64.
pub fn from_base64() -> ScalarUDF {
    RowFn::udf(
        "from_base64",
        exact(vec![vec![DataType::Utf8]]),
        text_result,
        |args, _| {
            let Some(s) = text(&args[0]) else {
                return Ok(string(None));
            };
            match base64::engine::general_purpose::STANDARD.decode(s) {
                Ok(bytes) => Ok(string(String::from_utf8(bytes).ok())),
                Err(error) => datafusion::common::exec_err!("FROM_BASE64: {error}"),
            }
        },
    )
}

/// `HEX(n)` is a BIGINT in hexadecimal (two's complement when negative),
/// `HEX(s)` the UTF-8 bytes of a string; upper case.
pub fn hex() -> ScalarUDF {
    RowFn::udf(
        "hex",
        Signature::any(1, Volatility::Immutable),
        |args| match args.first() {
            Some(t) if t.is_integer() || super::is_text(t) => Ok(DataType::Utf8),
            _ => plan_err!("HEX takes an integer or a string, not {args:?}"),
        },
        |args, _| {
            Ok(string(match (integer(&args[0]), text(&args[0])) {
                (Some(n), _) => Some(format!("{n:X}")),
                (None, Some(s)) => Some(s.bytes().map(|b| format!("{b:02X}")).collect()),
                _ => None,
            }))
        },
    )
}

/// `BIN(n)`: a BIGINT in binary, two's complement when negative.
pub fn bin() -> ScalarUDF {
    RowFn::udf(
        "bin",
        exact(vec![vec![DataType::Int64]]),
        text_result,
        |args, _| Ok(string(integer(&args[0]).map(|n| format!("{n:b}")))),
    )
}

/// `IS_ALPHA`, `IS_DIGIT`, `IS_DECIMAL`: FALSE for NULL.
fn test_chars<const KIND: u8>(args: &[ScalarValue], _: &DataType) -> Result<ScalarValue> {
    Ok(ScalarValue::Boolean(Some(text(&args[0]).is_some_and(
        |s| match KIND {
            b'a' => !s.is_empty() && s.chars().all(char::is_alphabetic),
            b'd' => !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()),
            // A number as Java's BigDecimal reads one.
            _ => {
                let t = s.trim();
                !t.is_empty()
                    && t.parse::<f64>().is_ok()
                    && t.chars()
                        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
            }
        },
    ))))
}

pub fn is_alpha() -> ScalarUDF {
    RowFn::udf(
        "is_alpha",
        exact(vec![vec![DataType::Utf8]]),
        boolean_result,
        test_chars::<b'a'>,
    )
}

pub fn is_digit() -> ScalarUDF {
    RowFn::udf(
        "is_digit",
        exact(vec![vec![DataType::Utf8]]),
        boolean_result,
        test_chars::<b'd'>,
    )
}

pub fn is_decimal() -> ScalarUDF {
    RowFn::udf(
        "is_decimal",
        exact(vec![vec![DataType::Utf8]]),
        boolean_result,
        test_chars::<b'n'>,
    )
}

/// `SHA2(s, bits)`: SHA-224, -256, -384 or -512 in lower-case hexadecimal;
/// another length is an error, as in Flink.
pub fn sha2() -> ScalarUDF {
    RowFn::udf(
        "sha2",
        Signature::one_of(
            vec![TypeSignature::Exact(vec![DataType::Utf8, DataType::Int64])],
            Volatility::Immutable,
        ),
        text_result,
        |args, _| {
            use sha2::Digest;
            let (Some(s), Some(bits)) = (text(&args[0]), integer(&args[1])) else {
                return Ok(string(None));
            };
            let bytes = s.as_bytes();
            let digest: Option<Vec<u8>> = match bits {
                224 => Some(sha2::Sha224::digest(bytes).to_vec()),
                256 | 0 => Some(sha2::Sha256::digest(bytes).to_vec()),
                384 => Some(sha2::Sha384::digest(bytes).to_vec()),
                512 => Some(sha2::Sha512::digest(bytes).to_vec()),
                other => {
                    return datafusion::common::exec_err!(
                        "SHA2: {other} bits is not 224, 256, 384 or 512"
                    );
                }
            };
            Ok(string(digest.map(|d| super::collections::hex(&d))))
        },
    )
}

/// `SIGN(x)`: -1, 0 or 1 in `x`'s type.
pub fn sign() -> ScalarUDF {
    RowFn::udf(
        "sign",
        Signature::any(1, Volatility::Immutable),
        |args| match args.first() {
            Some(t) if t.is_numeric() => Ok(t.clone()),
            _ => plan_err!("SIGN takes a number, not {args:?}"),
        },
        |args, returns| {
            let sign = match &args[0] {
                ScalarValue::Float64(v) => v.map(|v| if v == 0.0 { 0.0 } else { v.signum() }),
                ScalarValue::Float32(v) => {
                    v.map(|v| if v == 0.0 { 0.0 } else { f64::from(v.signum()) })
                }
                ScalarValue::Decimal128(v, _, _) => v.map(|v| v.signum() as f64),
                other => integer(other).map(|v| v.signum() as f64),
            };
            match sign {
                Some(sign) => ScalarValue::Float64(Some(sign)).cast_to(returns),
                None => ScalarValue::try_from(returns),
            }
        },
    )
}

/// `E()`: Euler's number.
pub fn e() -> ScalarUDF {
    RowFn::udf(
        "e",
        Signature::exact(vec![], Volatility::Immutable),
        |_| Ok(DataType::Float64),
        |_, _| Ok(ScalarValue::Float64(Some(std::f64::consts::E))),
    )
}
