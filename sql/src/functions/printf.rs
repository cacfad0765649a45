//! `PRINTF(format, args...)`: Flink hands the format and its internal
//! values (Integer, Long, Double, `BinaryStringData`, `DecimalData`...)
//! to Java's `String.format`, and answers NULL when that throws. Only a
//! literal format is answered, parsed once at planning; the conversions
//! whose Java output is not reproduced here exactly are refused there.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

pub const NAME: &str = "printf";

/// Why a format cannot be answered as Flink answers it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("PRINTF is supported only with a literal, non-NULL format string")]
    NotLiteral,
    #[error(
        "PRINTF's %{0} is not supported: Runnel does not reproduce Java's String.format output for it exactly"
    )]
    Conversion(String),
    #[error("PRINTF's format {0} is not supported")]
    Form(&'static str),
    #[error(
        "PRINTF of a {0} argument is not supported: Flink formats its internal class for that type"
    )]
    ArgumentType(DataType),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conv {
    Boolean,
    Text,
    Char,
    Decimal,
    Octal,
    Hex,
    Float,
    Percent,
    Newline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Index {
    Ordinary,
    Explicit(usize),
    Previous,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Flags {
    left: bool,
    alternate: bool,
    plus: bool,
    space: bool,
    zero: bool,
    group: bool,
    parentheses: bool,
    upper: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    index: Index,
    flags: Flags,
    width: Option<usize>,
    precision: Option<usize>,
    conv: Conv,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Spec(Spec),
}

/// A format Java accepts, or one it throws on whatever the arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Pieces(Vec<Piece>),
    Throws,
}

impl Format {
    /// Whether some conversion prints an integer argument where Java's
    /// output depends on its class (Integer or Long), not only its value.
    pub fn depends_on_integer_class(&self) -> bool {
        match self {
            Format::Pieces(pieces) => pieces.iter().any(|p| {
                matches!(p, Piece::Spec(s) if matches!(s.conv, Conv::Char | Conv::Octal | Conv::Hex))
            }),
            Format::Throws => false,
        }
    }
}

/// What `Formatter.parse` and each `FormatSpecifier`'s checks make of
/// `format`: Java's pattern is
/// `%(\d+\$)?([-#+ 0,(\<]*)?(\d+)?(\.\d+)?([tT])?([a-zA-Z%])`.
pub fn parse(format: &str) -> std::result::Result<Format, Refusal> {
    let chars: Vec<char> = format.chars().collect();
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut refusal = None;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '%' {
            text.push(chars[i]);
            i += 1;
            continue;
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text)));
        }
        i += 1;
        let digits = |from: usize| {
            let mut to = from;
            while to < chars.len() && chars[to].is_ascii_digit() {
                to += 1;
            }
            to
        };
        let number = |from: usize, to: usize| -> Option<usize> {
            chars[from..to]
                .iter()
                .collect::<String>()
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= 100_000)
        };
        let mut index = Index::Ordinary;
        let end = digits(i);
        if end > i && chars.get(end) == Some(&'$') {
            match number(i, end) {
                Some(n) if n > 0 => index = Index::Explicit(n),
                _ => {
                    refusal = refusal.or(Some(Refusal::Form("with argument index 0 or a huge one")))
                }
            }
            i = end + 1;
        }
        let mut flags = Flags::default();
        let mut duplicate = false;
        while let Some(&c) = chars.get(i) {
            let flag = match c {
                '-' => &mut flags.left,
                '#' => &mut flags.alternate,
                '+' => &mut flags.plus,
                ' ' => &mut flags.space,
                '0' => &mut flags.zero,
                ',' => &mut flags.group,
                '(' => &mut flags.parentheses,
                '<' => {
                    if index == Index::Previous {
                        duplicate = true;
                    } else if index != Index::Ordinary {
                        refusal = refusal.or(Some(Refusal::Form("with both an index and '<'")));
                    }
                    index = Index::Previous;
                    i += 1;
                    continue;
                }
                _ => break,
            };
            duplicate |= *flag;
            *flag = true;
            i += 1;
        }
        let end = digits(i);
        let mut width = None;
        if end > i {
            match number(i, end) {
                Some(n) => width = Some(n),
                None => refusal = refusal.or(Some(Refusal::Form("with a huge width"))),
            }
            i = end;
        }
        let mut precision = None;
        if chars.get(i) == Some(&'.') {
            let end = digits(i + 1);
            if end == i + 1 {
                // '.' without digits ends Java's pattern: no conversion.
                return Ok(Format::Throws);
            }
            match number(i + 1, end) {
                Some(n) => precision = Some(n),
                None => refusal = refusal.or(Some(Refusal::Form("with a huge precision"))),
            }
            i = end;
        }
        let Some(&c) = chars.get(i) else {
            return Ok(Format::Throws);
        };
        i += 1;
        if matches!(c, 't' | 'T') {
            refusal = refusal.or(Some(Refusal::Conversion(c.to_string())));
            i += 1;
            continue;
        }
        let conv = match c {
            'b' | 'B' => Conv::Boolean,
            's' | 'S' => Conv::Text,
            'c' | 'C' => Conv::Char,
            'd' => Conv::Decimal,
            'o' => Conv::Octal,
            'x' | 'X' => Conv::Hex,
            'f' => Conv::Float,
            '%' => Conv::Percent,
            'n' => Conv::Newline,
            'h' | 'H' | 'e' | 'E' | 'g' | 'G' | 'a' | 'A' => {
                refusal = refusal.or(Some(Refusal::Conversion(c.to_string())));
                continue;
            }
            _ => return Ok(Format::Throws),
        };
        flags.upper = c.is_ascii_uppercase();
        if duplicate {
            return Ok(Format::Throws);
        }
        let spec = Spec {
            index,
            flags,
            width,
            precision,
            conv,
        };
        if !accepted(&spec) {
            return Ok(Format::Throws);
        }
        if matches!(conv, Conv::Percent | Conv::Newline) && index != Index::Ordinary {
            refusal = refusal.or(Some(Refusal::Form("with an index on %% or %n")));
        }
        pieces.push(Piece::Spec(spec));
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    match refusal {
        Some(refusal) => Err(refusal),
        None => Ok(Format::Pieces(pieces)),
    }
}

/// `FormatSpecifier`'s checks at parse time (checkGeneral, checkCharacter,
/// checkInteger, checkFloat, checkText), and printString's refusal of '#'
/// for any argument that is not `Formattable`, which none of Flink's is.
fn accepted(spec: &Spec) -> bool {
    let f = &spec.flags;
    let numeric = || {
        !((spec.width.is_none() && (f.left || f.zero)) || (f.plus && f.space) || (f.left && f.zero))
    };
    match spec.conv {
        Conv::Boolean | Conv::Text => {
            let missing_width = spec.width.is_none() && f.left;
            !(f.alternate
                || missing_width
                || f.plus
                || f.space
                || f.zero
                || f.group
                || f.parentheses)
        }
        Conv::Char => {
            spec.precision.is_none()
                && !(f.alternate || f.plus || f.space || f.zero || f.group || f.parentheses)
                && !(spec.width.is_none() && f.left)
        }
        Conv::Decimal => numeric() && spec.precision.is_none() && !f.alternate,
        Conv::Octal | Conv::Hex => numeric() && spec.precision.is_none() && !f.group,
        Conv::Float => numeric(),
        Conv::Percent => {
            spec.precision.is_none()
                && !(f.alternate || f.plus || f.space || f.zero || f.group || f.parentheses)
                && spec.index != Index::Previous
                && !(spec.width.is_none() && f.left)
        }
        Conv::Newline => {
            spec.precision.is_none()
                && spec.width.is_none()
                && *f == Flags::default()
                && spec.index != Index::Previous
        }
    }
}

/// Whether Flink hands a value of this type to Java as a class whose
/// formatting is reproduced here.
pub fn supported_argument(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Boolean
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Decimal128(_, _)
    )
}

/// Why one row gives no text.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// Java throws: Flink answers NULL.
    Java,
    /// Java would make a string with half a surrogate pair, which Runnel's
    /// strings cannot hold.
    Unrepresentable,
}

/// Flink's internal value, by the Java class it is formatted as.
enum Arg<'a> {
    Null,
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Float(f32),
    Double(f64),
    Bool(bool),
    Str(&'a str),
    Decimal(i128, i8),
}

fn arg(value: &ScalarValue) -> Result<Arg<'_>> {
    if value.is_null() {
        return Ok(Arg::Null);
    }
    Ok(match value {
        ScalarValue::Int8(Some(v)) => Arg::Byte(*v),
        ScalarValue::Int16(Some(v)) => Arg::Short(*v),
        ScalarValue::Int32(Some(v)) => Arg::Int(*v),
        ScalarValue::Int64(Some(v)) => Arg::Long(*v),
        ScalarValue::Float32(Some(v)) => Arg::Float(*v),
        ScalarValue::Float64(Some(v)) => Arg::Double(*v),
        ScalarValue::Boolean(Some(v)) => Arg::Bool(*v),
        ScalarValue::Utf8(Some(v))
        | ScalarValue::LargeUtf8(Some(v))
        | ScalarValue::Utf8View(Some(v)) => Arg::Str(v),
        ScalarValue::Decimal128(Some(v), _, scale) => Arg::Decimal(*v, *scale),
        other => return exec_err!("PRINTF of a {} argument", other.data_type()),
    })
}

/// `Formatter.format`'s walk over the pieces with `args`.
fn format(pieces: &[Piece], args: &[Arg<'_>]) -> std::result::Result<String, Failure> {
    let mut out = String::new();
    let mut last: Option<usize> = None;
    let mut ordinary: Option<usize> = None;
    for piece in pieces {
        let spec = match piece {
            Piece::Text(text) => {
                out.push_str(text);
                continue;
            }
            Piece::Spec(spec) => spec,
        };
        let value = match (spec.conv, spec.index) {
            (Conv::Percent | Conv::Newline, _) => &Arg::Null,
            (_, Index::Previous) => match last {
                Some(at) => args.get(at).ok_or(Failure::Java)?,
                None => return Err(Failure::Java),
            },
            (_, Index::Ordinary) => {
                let at = ordinary.map_or(0, |o| o + 1);
                ordinary = Some(at);
                last = Some(at);
                args.get(at).ok_or(Failure::Java)?
            }
            (_, Index::Explicit(n)) => {
                last = Some(n - 1);
                args.get(n - 1).ok_or(Failure::Java)?
            }
        };
        out.push_str(&print(spec, value)?);
    }
    Ok(out)
}

fn print(spec: &Spec, value: &Arg<'_>) -> std::result::Result<String, Failure> {
    let f = &spec.flags;
    match spec.conv {
        Conv::Percent => Ok(justify(spec, "%".to_string())),
        Conv::Newline => Ok("\n".to_string()),
        Conv::Boolean => {
            let text = match value {
                Arg::Null => "false",
                Arg::Bool(false) => "false",
                _ => "true",
            };
            print_text(spec, text)
        }
        Conv::Text => print_text(spec, &to_java_string(value)),
        Conv::Char => {
            let code = match value {
                Arg::Null => return print_text(spec, "null"),
                Arg::Byte(v) => i64::from(*v),
                Arg::Short(v) => i64::from(*v),
                Arg::Int(v) => i64::from(*v),
                _ => return Err(Failure::Java),
            };
            let code = u32::try_from(code)
                .ok()
                .filter(|c| *c <= 0x10FFFF)
                .ok_or(Failure::Java)?;
            let c = char::from_u32(code).ok_or(Failure::Unrepresentable)?;
            print_text(spec, &c.to_string())
        }
        Conv::Decimal | Conv::Octal | Conv::Hex => {
            let (v, bits) = match value {
                Arg::Null => return print_text(spec, "null"),
                Arg::Byte(v) => (i64::from(*v), 8),
                Arg::Short(v) => (i64::from(*v), 16),
                Arg::Int(v) => (i64::from(*v), 32),
                Arg::Long(v) => (*v, 64),
                _ => return Err(Failure::Java),
            };
            if spec.conv == Conv::Decimal {
                let neg = v < 0;
                let mut sb = String::new();
                leading_sign(&mut sb, f, neg);
                localized(&mut sb, &v.unsigned_abs().to_string(), f, adjust(spec, neg));
                trailing_sign(&mut sb, f, neg);
                return Ok(justify(spec, sb));
            }
            if f.parentheses || f.space || f.plus {
                return Err(Failure::Java);
            }
            // Java widens a negative Byte, Short or Integer by its own
            // width, so -1 is ffffffff as an Integer and ff as a Byte.
            let unsigned = if bits == 64 {
                v as u64
            } else if v < 0 {
                (v + (1i64 << bits)) as u64
            } else {
                v as u64
            };
            let (prefix, mut digits) = if spec.conv == Conv::Octal {
                ("0", format!("{unsigned:o}"))
            } else {
                (if f.upper { "0X" } else { "0x" }, format!("{unsigned:x}"))
            };
            let mut sb = String::new();
            let mut len = digits.len();
            if f.alternate {
                sb.push_str(prefix);
                len += prefix.len();
            }
            if f.zero {
                let width = spec.width.unwrap_or(0);
                sb.extend(std::iter::repeat_n('0', width.saturating_sub(len)));
            }
            if f.upper {
                digits = digits.to_ascii_uppercase();
            }
            sb.push_str(&digits);
            Ok(justify(spec, sb))
        }
        Conv::Float => {
            let v = match value {
                Arg::Null => return print_text(spec, "null"),
                Arg::Float(v) => f64::from(*v),
                Arg::Double(v) => *v,
                _ => return Err(Failure::Java),
            };
            let mut sb = String::new();
            if v.is_nan() {
                sb.push_str("NaN");
                return Ok(justify(spec, sb));
            }
            // Double.compare(-0.0, 0.0) is -1: negative zero is negative.
            let neg = v.is_sign_negative();
            leading_sign(&mut sb, f, neg);
            if v.is_infinite() {
                sb.push_str("Infinity");
            } else {
                let precision = spec.precision.unwrap_or(6);
                let mut mantissa = decimal_float(v.abs(), precision);
                if f.alternate && precision == 0 {
                    mantissa.push('.');
                }
                localized(&mut sb, &mantissa, f, adjust(spec, neg));
            }
            trailing_sign(&mut sb, f, neg);
            Ok(justify(spec, sb))
        }
    }
}

/// `arg.toString()` of Flink's internal class for the value.
fn to_java_string(value: &Arg<'_>) -> String {
    match value {
        Arg::Null => "null".to_string(),
        Arg::Byte(v) => v.to_string(),
        Arg::Short(v) => v.to_string(),
        Arg::Int(v) => v.to_string(),
        Arg::Long(v) => v.to_string(),
        Arg::Float(v) => crate::java_format::java_float(*v),
        Arg::Double(v) => crate::java_format::java_double(*v),
        Arg::Bool(v) => v.to_string(),
        Arg::Str(v) => (*v).to_string(),
        Arg::Decimal(v, scale) => plain_decimal(*v, *scale),
    }
}

/// `DecimalData.toString`, which is `BigDecimal.toPlainString`.
fn plain_decimal(unscaled: i128, scale: i8) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let sign = if unscaled < 0 { "-" } else { "" };
    if scale <= 0 {
        let zeros = "0".repeat(usize::from(scale.unsigned_abs()));
        return format!("{sign}{digits}{zeros}");
    }
    let scale = usize::from(scale.unsigned_abs());
    let digits = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
    } else {
        digits
    };
    let (int, fraction) = digits.split_at(digits.len() - scale);
    format!("{sign}{int}.{fraction}")
}

/// `%f`'s digits: Java rounds the shortest decimal that reads back as the
/// double (not its exact binary value) half up, so 0.15 gives 0.2.
fn decimal_float(v: f64, precision: usize) -> String {
    let text = format!("{v:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let mut digits: Vec<u8> = mantissa
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|d| d - b'0')
        .collect();
    // The value is 0.d1d2... times ten to the power of `point`.
    let mut point = exponent.parse::<i64>().unwrap_or(0) + 1;
    if digits.iter().all(|d| *d == 0) {
        digits.clear();
        point = 1;
    }
    let keep = point + precision as i64;
    if keep < 0 {
        digits.clear();
    } else if (keep as usize) < digits.len() {
        let keep = keep as usize;
        let up = digits[keep] >= 5;
        digits.truncate(keep);
        if up {
            let mut at = keep;
            loop {
                if at == 0 {
                    digits.insert(0, 1);
                    point += 1;
                    break;
                }
                at -= 1;
                if digits[at] == 9 {
                    digits[at] = 0;
                } else {
                    digits[at] += 1;
                    break;
                }
            }
        }
    }
    let digit = |i: i64| -> char {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i))
            .map_or('0', |d| char::from(b'0' + d))
    };
    let mut out = String::new();
    if point > 0 {
        out.extend((0..point).map(digit));
    } else {
        out.push('0');
    }
    if precision > 0 {
        out.push('.');
        out.extend((point..point + precision as i64).map(digit));
    }
    out
}

fn leading_sign(sb: &mut String, f: &Flags, neg: bool) {
    if !neg {
        if f.plus {
            sb.push('+');
        } else if f.space {
            sb.push(' ');
        }
    } else if f.parentheses {
        sb.push('(');
    } else {
        sb.push('-');
    }
}

fn trailing_sign(sb: &mut String, f: &Flags, neg: bool) {
    if neg && f.parentheses {
        sb.push(')');
    }
}

/// The width left for the number once a negative one's ')' is counted.
fn adjust(spec: &Spec, neg: bool) -> Option<usize> {
    spec.width.map(|w| {
        if neg && spec.flags.parentheses {
            w.saturating_sub(1)
        } else {
            w
        }
    })
}

/// `localizedMagnitude` for Locale.ROOT: ',' groups of three in the
/// integral part, then zeros after the sign up to the width.
fn localized(sb: &mut String, value: &str, f: &Flags, width: Option<usize>) {
    let begin = sb.len();
    let bytes = value.as_bytes();
    let dot = value.find('.').unwrap_or(bytes.len());
    for (j, &c) in bytes.iter().enumerate() {
        sb.push(char::from(c));
        if f.group && j + 1 < dot && (dot - j) % 3 == 1 {
            sb.push(',');
        }
    }
    if let (Some(width), true) = (width, f.zero) {
        let pad = width.saturating_sub(sb.len());
        sb.insert_str(begin, &"0".repeat(pad));
    }
}

/// `print(String)`: the precision cuts, then upper case, then the width.
fn print_text(spec: &Spec, text: &str) -> std::result::Result<String, Failure> {
    let mut text = text.to_string();
    if let Some(precision) = spec.precision {
        let mut units = 0;
        let mut end = text.len();
        for (at, c) in text.char_indices() {
            if units == precision {
                end = at;
                break;
            }
            units += c.len_utf16();
            if units > precision {
                return Err(Failure::Unrepresentable);
            }
        }
        text.truncate(end);
    }
    if spec.flags.upper {
        text = text.to_uppercase();
    }
    Ok(justify(spec, text))
}

/// `appendJustified`: the width counts UTF-16 units, as Java's length.
fn justify(spec: &Spec, text: String) -> String {
    let Some(width) = spec.width else {
        return text;
    };
    let pad = width.saturating_sub(text.encode_utf16().count());
    if pad == 0 {
        return text;
    }
    let spaces = " ".repeat(pad);
    if spec.flags.left {
        text + &spaces
    } else {
        spaces + &text
    }
}

/// The format of a call, when planning knows it.
fn literal_format(value: Option<&ScalarValue>) -> std::result::Result<Format, Refusal> {
    match value {
        Some(
            ScalarValue::Utf8(Some(f))
            | ScalarValue::LargeUtf8(Some(f))
            | ScalarValue::Utf8View(Some(f)),
        ) => parse(f),
        _ => Err(Refusal::NotLiteral),
    }
}

/// Planning's view of a call: the format it may answer, or why not.
pub fn check(
    format: Option<&ScalarValue>,
    args: &[DataType],
) -> std::result::Result<Format, Refusal> {
    let format = literal_format(format)?;
    if let Some(bad) = args.iter().find(|t| !supported_argument(t)) {
        return Err(Refusal::ArgumentType(bad.clone()));
    }
    Ok(format)
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Printf {
    signature: Signature,
}

impl ScalarUDFImpl for Printf {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        let format = args.scalar_arguments.first().copied().flatten();
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .skip(1)
            .map(|f| f.data_type().clone())
            .collect();
        if let Err(why) = check(format, &types) {
            return plan_err!("{why}");
        }
        Ok(Arc::new(Field::new(NAME, DataType::Utf8, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(ColumnarValue::Scalar(format_text)) = args.args.first() else {
            return exec_err!("{}", Refusal::NotLiteral);
        };
        let pieces = match literal_format(Some(format_text)) {
            Ok(Format::Pieces(pieces)) => pieces,
            Ok(Format::Throws) => {
                return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
            }
            Err(why) => return exec_err!("{why}"),
        };
        let rows = args.number_rows;
        let arrays = args.args[1..]
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(rows);
        let mut values = Vec::with_capacity(arrays.len());
        for row in 0..rows {
            values.clear();
            for array in &arrays {
                values.push(ScalarValue::try_from_array(array.as_ref(), row)?);
            }
            let java = values.iter().map(arg).collect::<Result<Vec<_>>>()?;
            out.push(match format(&pieces, &java) {
                Ok(text) => Some(text),
                Err(Failure::Java) => None,
                Err(Failure::Unrepresentable) => {
                    return exec_err!(
                        "PRINTF would cut a character in two (Java formats UTF-16 units)"
                    );
                }
            });
        }
        let array: datafusion::arrow::array::StringArray = out.into_iter().collect();
        Ok(ColumnarValue::Array(Arc::new(array)))
    }
}

pub fn udf() -> ScalarUDF {
    ScalarUDF::from(Printf {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(format_text: &str, args: &[Arg<'_>]) -> Option<String> {
        match parse(format_text).expect("supported") {
            Format::Pieces(pieces) => format(&pieces, args).ok(),
            Format::Throws => None,
        }
    }

    #[test]
    fn formats_as_java_does() {
        assert_eq!(
            run("%,d", &[Arg::Int(1234567)]).as_deref(),
            Some("1,234,567")
        );
        assert_eq!(run("%(d", &[Arg::Long(-12)]).as_deref(), Some("(12)"));
        assert_eq!(run("%x", &[Arg::Int(-1)]).as_deref(), Some("ffffffff"));
        assert_eq!(
            run("%x", &[Arg::Long(-12)]).as_deref(),
            Some("fffffffffffffff4")
        );
        assert_eq!(run("%#06x", &[Arg::Int(255)]).as_deref(), Some("0x00ff"));
        assert_eq!(
            run("%08.3f", &[Arg::Double(-2.5)]).as_deref(),
            Some("-002.500")
        );
        assert_eq!(run("%.1f", &[Arg::Double(0.15)]).as_deref(), Some("0.2"));
        assert_eq!(run("%.0f", &[Arg::Double(0.5)]).as_deref(), Some("1"));
        assert_eq!(run("%.2f", &[Arg::Double(0.0004)]).as_deref(), Some("0.00"));
        assert_eq!(run("%.2f", &[Arg::Double(9.999)]).as_deref(), Some("10.00"));
        assert_eq!(
            run("%,.2f", &[Arg::Double(1234567.891)]).as_deref(),
            Some("1,234,567.89")
        );
        assert_eq!(
            run("%(,010.1f", &[Arg::Double(-1234.56)]).as_deref(),
            Some("(01,234.6)")
        );
        assert_eq!(
            run("%f", &[Arg::Double(-0.0)]).as_deref(),
            Some("-0.000000")
        );
        assert_eq!(
            run("%5.1s|", &[Arg::Str("Hello")]).as_deref(),
            Some("    H|")
        );
        assert_eq!(run("%-6b|", &[Arg::Null]).as_deref(), Some("false |"));
        assert_eq!(run("%X", &[Arg::Null]).as_deref(), Some("NULL"));
        assert_eq!(
            run("%s", &[Arg::Decimal(1, 10)]).as_deref(),
            Some("0.0000000001")
        );
        assert_eq!(run("%s", &[Arg::Float(0.1)]).as_deref(), Some("0.1"));
        assert_eq!(
            run(
                "%s %s %1$s %s",
                &[Arg::Str("a"), Arg::Str("b"), Arg::Str("c")]
            )
            .as_deref(),
            Some("a b a c")
        );
        assert_eq!(run("%c", &[Arg::Long(65)]), None);
        assert_eq!(run("%c", &[Arg::Int(-1)]), None);
        assert_eq!(run("%+x", &[Arg::Int(1)]), None);
        assert_eq!(run("%+x", &[Arg::Null]).as_deref(), Some("null"));
        assert_eq!(run("%<s", &[Arg::Int(1)]), None);
        assert_eq!(run("%.s", &[Arg::Int(1)]), None);
        assert_eq!(run("%F", &[Arg::Double(1.0)]), None);
    }

    #[test]
    fn refuses_what_it_does_not_reproduce() {
        assert!(matches!(parse("%e"), Err(Refusal::Conversion(_))));
        assert!(matches!(parse("%tY"), Err(Refusal::Conversion(_))));
        assert!(matches!(parse("%0$s"), Err(Refusal::Form(_))));
        // A later specifier Java cannot parse makes the whole call NULL.
        assert_eq!(parse("%e %q"), Ok(Format::Throws));
    }
}
