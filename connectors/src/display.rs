//! Values as Flink's print connector shows them (Java's `toString`).

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Time32MillisecondType,
    Time32SecondType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::arrow::util::display::array_value_to_string;

pub fn value(array: &dyn Array, row: usize) -> String {
    if array.is_null(row) {
        return "null".to_string();
    }
    match array.data_type() {
        DataType::Float64 => java_double(array.as_primitive::<Float64Type>().value(row)),
        DataType::Float32 => java_float(array.as_primitive::<Float32Type>().value(row)),
        DataType::Decimal128(_, scale) => {
            runnel_timefmt::java_decimal(array.as_primitive::<Decimal128Type>().value(row), *scale)
        }
        DataType::Timestamp(unit, zone) => {
            let value = timestamp_value(array, row, unit);
            match zone {
                None => local_date_time(value, unit),
                // A TIMESTAMP_LTZ prints as Java's Instant: UTC, seconds always.
                Some(_) => instant(value, unit),
            }
        }
        DataType::Time32(_) => {
            runnel_timefmt::time_of_day::java_local_time(time_millis(array, row).unwrap_or(0))
        }
        // BYTES as Java's Arrays.toString of a byte[]: signed, `[97, -1]`.
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            let bytes: &[u8] = match array.data_type() {
                DataType::Binary => array.as_binary::<i32>().value(row),
                DataType::LargeBinary => array.as_binary::<i64>().value(row),
                _ => array.as_binary_view().value(row),
            };
            let values: Vec<String> = bytes.iter().map(|&b| (b as i8).to_string()).collect();
            format!("[{}]", values.join(", "))
        }
        // Java's List and array toString: `[1, null, 3]`.
        DataType::List(_) => {
            let list = array.as_list::<i32>().value(row);
            elements(list.as_ref())
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>().value(row);
            elements(list.as_ref())
        }
        // Java's Map toString, `{a=1, b=2}`, in the order a Java HashMap
        // holds the entries (Flink prints a map as one).
        DataType::Map(_, _) => {
            let entries = array.as_map().value(row);
            let keys = entries.column(0);
            let values = entries.column(1);
            let pairs: Vec<String> = hash_map_order(keys.as_ref())
                .into_iter()
                .map(|i| format!("{}={}", value(keys, i), value(values, i)))
                .collect();
            format!("{{{}}}", pairs.join(", "))
        }
        // A nested ROW prints as Flink's Row does.
        DataType::Struct(_) => {
            let fields = array.as_struct();
            let values: Vec<String> = fields
                .columns()
                .iter()
                .map(|c| value(c.as_ref(), row))
                .collect();
            format!("+I[{}]", values.join(", "))
        }
        _ => array_value_to_string(array, row).unwrap_or_else(|e| format!("<{e}>")),
    }
}

/// The order in which a `java.util.HashMap` that had `keys` put in order
/// (into its default table of 16, doubled past three quarters full) gives
/// them back: by bucket of the key's Java `hashCode`, spread as HashMap
/// spreads it, then in the order put. Keys of a type whose Java hash is
/// not computed here keep their order.
pub fn hash_map_order(keys: &dyn Array) -> Vec<usize> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    let Some(hashes) = (0..keys.len())
        .map(|i| java_hash(keys, i))
        .collect::<Option<Vec<i32>>>()
    else {
        return order;
    };
    let mut capacity = 16usize;
    while keys.len() * 4 > capacity * 3 {
        capacity *= 2;
    }
    let bucket = |h: i32| {
        let h = h as u32;
        ((h ^ (h >> 16)) as usize) & (capacity - 1)
    };
    order.sort_by_key(|&i| bucket(hashes[i]));
    order
}

/// Java's `hashCode` of the boxed key: String, Integer (and narrower),
/// Long, Boolean, Double, Float, BigDecimal, LocalDate, LocalTime,
/// LocalDateTime, Instant; `None` for other types.
fn java_hash(array: &dyn Array, row: usize) -> Option<i32> {
    use datafusion::arrow::datatypes::{Int8Type, Int16Type, Int32Type, Int64Type};
    if array.is_null(row) {
        return Some(0);
    }
    let long = |v: i64| (v ^ ((v as u64) >> 32) as i64) as i32;
    Some(match array.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let text = match array.data_type() {
                DataType::Utf8 => array.as_string::<i32>().value(row),
                DataType::LargeUtf8 => array.as_string::<i64>().value(row),
                _ => array.as_string_view().value(row),
            };
            text.encode_utf16().fold(0i32, |h, unit| {
                h.wrapping_mul(31).wrapping_add(i32::from(unit))
            })
        }
        DataType::Int8 => i32::from(array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => i32::from(array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row),
        DataType::Int64 => long(array.as_primitive::<Int64Type>().value(row)),
        DataType::Boolean => {
            if array.as_boolean().value(row) {
                1231
            } else {
                1237
            }
        }
        DataType::Float64 => {
            let v = array.as_primitive::<Float64Type>().value(row);
            // Double.hashCode hashes doubleToLongBits: one NaN.
            let bits = if v.is_nan() {
                f64::NAN.to_bits()
            } else {
                v.to_bits()
            };
            long(bits as i64)
        }
        DataType::Float32 => {
            let v = array.as_primitive::<Float32Type>().value(row);
            let bits = if v.is_nan() {
                f32::NAN.to_bits()
            } else {
                v.to_bits()
            };
            bits as i32
        }
        DataType::Date32 => {
            local_date_hash(i64::from(array.as_primitive::<Date32Type>().value(row)))
        }
        DataType::Time32(_) => local_time_hash(time_millis(array, row)? * 1_000_000),
        DataType::Timestamp(unit, zone) => {
            let per_second = match unit {
                TimeUnit::Second => 1_000_000_000,
                TimeUnit::Millisecond => 1_000_000,
                TimeUnit::Microsecond => 1_000,
                TimeUnit::Nanosecond => 1,
            };
            let nanos = timestamp_value(array, row, unit).checked_mul(per_second)?;
            let (seconds, nanos) = (
                nanos.div_euclid(1_000_000_000),
                nanos.rem_euclid(1_000_000_000),
            );
            match zone {
                // Instant.hashCode.
                Some(_) => long(seconds).wrapping_add(51i32.wrapping_mul(nanos as i32)),
                // LocalDateTime.hashCode: its date's and its time's.
                None => {
                    local_date_hash(seconds.div_euclid(86_400))
                        ^ local_time_hash(seconds.rem_euclid(86_400) * 1_000_000_000 + nanos)
                }
            }
        }
        DataType::Decimal128(_, scale) => {
            big_decimal_hash(array.as_primitive::<Decimal128Type>().value(row), *scale)
        }
        _ => return None,
    })
}

/// A timestamp column's value, in its unit.
fn timestamp_value(array: &dyn Array, row: usize, unit: &TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(row),
        TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().value(row),
        TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(row),
        TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(row),
    }
}

/// A TIME column's value in milliseconds of the day (a TIME(0) holds
/// seconds); `None` for another column or a NULL.
pub(crate) fn time_millis(array: &dyn Array, row: usize) -> Option<i64> {
    if array.is_null(row) {
        return None;
    }
    match array.data_type() {
        DataType::Time32(TimeUnit::Second) => {
            Some(i64::from(array.as_primitive::<Time32SecondType>().value(row)) * 1000)
        }
        DataType::Time32(_) => Some(i64::from(
            array.as_primitive::<Time32MillisecondType>().value(row),
        )),
        _ => None,
    }
}

/// `LocalDate.hashCode` of the day `days` after 1970-01-01.
fn local_date_hash(days: i64) -> i32 {
    use chrono::Datelike;
    let Some(date) = chrono::NaiveDate::from_num_days_from_ce_opt(
        i32::try_from(days + 719_163).unwrap_or(i32::MAX),
    ) else {
        return 0;
    };
    let (year, month, day) = (date.year(), date.month() as i32, date.day() as i32);
    (year & 0xFFFF_F800u32 as i32) ^ year.wrapping_shl(11).wrapping_add((month << 6) + day)
}

/// `LocalTime.hashCode` of the time `nanos` into its day.
fn local_time_hash(nanos: i64) -> i32 {
    (nanos ^ ((nanos as u64) >> 32) as i64) as i32
}

/// `BigDecimal.hashCode` of `unscaled` × 10^-`scale`: its unscaled
/// magnitude's 32-bit words hashed as `BigInteger` hashes them, the sign,
/// then the scale.
fn big_decimal_hash(unscaled: i128, scale: i8) -> i32 {
    let magnitude = unscaled.unsigned_abs();
    let words = [
        (magnitude >> 96) as u32,
        (magnitude >> 64) as u32,
        (magnitude >> 32) as u32,
        magnitude as u32,
    ];
    let hash = words
        .iter()
        .skip_while(|w| **w == 0)
        .fold(0i32, |h, w| h.wrapping_mul(31).wrapping_add(*w as i32));
    let signed = if unscaled < 0 {
        hash.wrapping_neg()
    } else {
        hash
    };
    signed.wrapping_mul(31).wrapping_add(i32::from(scale))
}

fn elements(list: &dyn Array) -> String {
    let values: Vec<String> = (0..list.len()).map(|i| value(list, i)).collect();
    format!("[{}]", values.join(", "))
}

pub use runnel_timefmt::{java_double, java_float};

/// Java's `Instant.toString`: `2020-04-15T08:05:30Z`, `...30.123Z`.
fn instant(value: i64, unit: &TimeUnit) -> String {
    let text = local_date_time(value, unit);
    // LocalDateTime leaves out zero seconds; Instant always has them.
    if text.len() == "1970-01-01T00:00".len() {
        format!("{text}:00Z")
    } else {
        format!("{text}Z")
    }
}

/// Java's `LocalDateTime.toString`: seconds only when there is a second or
/// a fraction, the fraction in groups of three digits as needed.
fn local_date_time(value: i64, unit: &TimeUnit) -> String {
    let (per_second, digits) = match unit {
        TimeUnit::Second => (1, 0),
        TimeUnit::Millisecond => (1_000, 3),
        TimeUnit::Microsecond => (1_000_000, 6),
        TimeUnit::Nanosecond => (1_000_000_000, 9),
    };
    let seconds = value.div_euclid(per_second);
    let fraction = value.rem_euclid(per_second);
    let nanos = fraction * (1_000_000_000 / per_second);
    let Some(time) = chrono::DateTime::from_timestamp(seconds, nanos as u32) else {
        return value.to_string();
    };
    let time = time.naive_utc();
    use chrono::Timelike;
    let mut text = time.format("%Y-%m-%dT%H:%M").to_string();
    if time.second() != 0 || nanos != 0 {
        text.push_str(&format!(":{:02}", time.second()));
    }
    if nanos != 0 && digits > 0 {
        let shown = if nanos % 1_000_000 == 0 {
            3
        } else if nanos % 1_000 == 0 {
            6
        } else {
            9
        };
        text.push_str(&format!(".{:09}", nanos)[..=shown]);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        BooleanArray, Float64Array, Int32Array, Int64Array, StringArray,
    };

    /// Orders Flink 2.3 printed these maps' keys in (`functions.sql`).
    #[test]
    fn map_keys_come_back_in_java_hash_map_order() {
        let strings = |keys: &[&str]| {
            let array = StringArray::from(keys.to_vec());
            hash_map_order(&array)
                .into_iter()
                .map(|i| keys[i].to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(strings(&["b", "a"]), ["a", "b"]);
        assert_eq!(strings(&["e", "c", "a"]), ["a", "c", "e"]);
        assert_eq!(strings(&["q", "a"]), ["q", "a"]);
        assert_eq!(
            strings(&["Hello", "World", "flink", "runnel"]),
            ["flink", "Hello", "runnel", "World"]
        );
        assert_eq!(
            strings(&["Hello World", "", "zz"]),
            ["", "zz", "Hello World"]
        );
        let fourteen: Vec<String> = (1..=14).map(|i| format!("k{i:02}")).collect();
        let fourteen: Vec<&str> = fourteen.iter().map(String::as_str).collect();
        assert_eq!(
            strings(&fourteen),
            [
                "k11", "k10", "k02", "k13", "k01", "k12", "k04", "k03", "k14", "k06", "k05", "k08",
                "k07", "k09"
            ]
        );
        assert_eq!(hash_map_order(&Int32Array::from(vec![17, 1, 2])), [0, 1, 2]);
        assert_eq!(
            hash_map_order(&Int64Array::from(vec![5_000_000_000, 1, -1])),
            [2, 1, 0]
        );
        assert_eq!(
            hash_map_order(&BooleanArray::from(vec![true, false])),
            [1, 0]
        );
        assert_eq!(
            hash_map_order(&Float64Array::from(vec![1.5, 2.5, 4.0, 0.5])),
            [2, 3, 1, 0]
        );
    }

    #[test]
    fn hash_codes_are_javas() {
        // LocalDate.of(2020, 1, 1).hashCode(), new BigDecimal("1.5").hashCode(),
        // LocalTime.of(0, 0, 1).hashCode().
        assert_eq!(local_date_hash(18_262), 4_137_025);
        assert_eq!(big_decimal_hash(15, 1), 466);
        assert_eq!(big_decimal_hash(-15, 1), -464);
        assert_eq!(local_time_hash(1_000_000_000), 1_000_000_000);
    }

    #[test]
    fn timestamps_print_like_java_local_date_time() {
        let ms = &TimeUnit::Millisecond;
        assert_eq!(local_date_time(0, ms), "1970-01-01T00:00");
        assert_eq!(local_date_time(5_000, ms), "1970-01-01T00:00:05");
        assert_eq!(local_date_time(5_120, ms), "1970-01-01T00:00:05.120");
        assert_eq!(
            local_date_time(5_000_120_000, &TimeUnit::Nanosecond),
            "1970-01-01T00:00:05.000120"
        );
        assert_eq!(local_date_time(-1, ms), "1969-12-31T23:59:59.999");
    }

    #[test]
    fn doubles_print_like_java() {
        assert_eq!(java_double(2.0), "2.0");
        assert_eq!(java_double(2.5), "2.5");
        assert_eq!(java_double(1e10), "1.0E10");
        assert_eq!(java_double(1.5e-4), "1.5E-4");
        assert_eq!(java_double(1234567.5), "1234567.5");
        assert_eq!(java_double(12345678.5), "1.23456785E7");
        assert_eq!(java_double(0.001), "0.001");
    }
}
