//! `SHOW TABLES`, `SHOW VIEWS`, `SHOW FUNCTIONS`, `SHOW CREATE TABLE` and
//! `DESCRIBE`/`DESC`, answered from the session's catalog as text lines
//! (printed as EXPLAIN's are), in the shape Flink's SQL client shows.

use datafusion::arrow::datatypes::{DataType, TimeUnit};

use crate::catalog::{Catalog, quoted};
use crate::error::{Position, SqlError};
use crate::front::ddl::TableDef;

/// Tables and views (`views_only`: views), sorted, one name a line.
pub fn show(catalog: &Catalog, views_only: bool) -> String {
    let mut names: Vec<&str> = catalog.views.iter().map(|v| v.name.as_str()).collect();
    if !views_only {
        names.extend(catalog.tables.keys().map(String::as_str));
    }
    names.sort_unstable();
    names.join("\n")
}

/// Every function a query can call, sorted, one name a line.
pub fn show_functions(context: &datafusion::prelude::SessionContext) -> String {
    let state = context.state();
    let mut names: Vec<&str> = state
        .scalar_functions()
        .keys()
        .chain(state.aggregate_functions().keys())
        .chain(state.window_functions().keys())
        .map(String::as_str)
        // Runnel's own placeholders are not for queries to call.
        .filter(|name| !name.starts_with("__"))
        .collect();
    names.sort_unstable();
    names.dedup();
    names.join("\n")
}

/// The table's definition as a CREATE TABLE statement, as Flink prints it.
pub fn show_create_table(table: &TableDef) -> String {
    let mut entries: Vec<String> = table
        .physical
        .iter()
        .map(|field| {
            let mut entry = format!("`{}` {}", field.name(), flink_type(field.data_type()));
            // A primary key's columns are NOT NULL, as Flink makes them.
            if !field.is_nullable() || table.primary_key.contains(field.name()) {
                entry.push_str(" NOT NULL");
            }
            if let Some(metadata) = table.metadata.iter().find(|m| &m.column == field.name()) {
                entry.push_str(&format!(" METADATA FROM '{}'", metadata.key));
                if metadata.is_virtual {
                    entry.push_str(" VIRTUAL");
                }
            }
            entry
        })
        .collect();
    entries.extend(
        table
            .computed
            .iter()
            .map(|(name, expr)| format!("`{name}` AS {expr}")),
    );
    if let Some(watermark) = &table.watermark {
        let ms = watermark.max_out_of_orderness;
        let interval = if ms % 1000 == 0 {
            format!("'{}' SECOND", ms / 1000)
        } else {
            format!("'{}.{:03}' SECOND", ms / 1000, ms % 1000)
        };
        entries.push(match ms {
            0 => format!("WATERMARK FOR `{0}` AS `{0}`", watermark.column),
            _ => format!(
                "WATERMARK FOR `{0}` AS `{0}` - INTERVAL {interval}",
                watermark.column
            ),
        });
    }
    if !table.primary_key.is_empty() {
        entries.push(format!(
            "CONSTRAINT `PK_{}` PRIMARY KEY ({}) NOT ENFORCED",
            table.primary_key.join("_"),
            backquoted(&table.primary_key)
        ));
    }
    let mut text = format!(
        "CREATE TABLE `default_catalog`.`default_database`.`{}` (\n  {}\n)",
        table.name,
        entries.join(",\n  ")
    );
    if !table.partition_keys.is_empty() {
        text.push_str(&format!(
            "\nPARTITIONED BY ({})",
            backquoted(&table.partition_keys)
        ));
    }
    let options: Vec<String> = table
        .options
        .iter()
        .map(|(k, v)| {
            format!(
                "  '{}' = '{}'",
                k.replace('\'', "''"),
                v.replace('\'', "''")
            )
        })
        .collect();
    text.push_str(&format!(" WITH (\n{}\n)", options.join(",\n")));
    text
}

fn backquoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line per column: name, type, null, key, extras, watermark.
pub async fn describe(catalog: &Catalog, name: &str, at: Position) -> Result<String, SqlError> {
    let context = catalog.session(&[]).await?;
    let table = context
        .table(quoted(name))
        .await
        .map_err(|_| SqlError::at(format!("Object '{name}' not found"), at))?;
    let definition = catalog.tables.get(name);
    let lines: Vec<String> = table
        .schema()
        .fields()
        .iter()
        .map(|field| {
            let column = field.name();
            let watermark = definition
                .and_then(|t| t.watermark.as_ref())
                .filter(|w| &w.column == column);
            let mut type_name = flink_type(field.data_type());
            if watermark.is_some() {
                type_name.push_str(" *ROWTIME*");
            }
            let key = definition
                .filter(|t| t.primary_key.contains(column))
                .map_or("", |_| "PRI");
            let extras = definition
                .and_then(|t| {
                    t.computed
                        .iter()
                        .find(|(c, _)| c == column)
                        .map(|(_, expr)| format!("AS {expr}"))
                        .or_else(|| {
                            t.metadata
                                .iter()
                                .find(|m| &m.column == column)
                                .map(|m| format!("METADATA FROM '{}'", m.key))
                        })
                })
                .unwrap_or_default();
            let watermark = watermark
                .map(|w| {
                    format!(
                        "`{}` - INTERVAL '{}' MILLISECOND",
                        w.column, w.max_out_of_orderness
                    )
                })
                .unwrap_or_default();
            // A primary key's columns are NOT NULL, as Flink makes them.
            let null = if field.is_nullable() && key.is_empty() {
                "TRUE"
            } else {
                "FALSE"
            };
            format!("{column}, {type_name}, {null}, {key}, {extras}, {watermark}")
        })
        .collect();
    Ok(lines.join("\n"))
}

/// A column's type as Flink names it.
pub fn flink_type(data_type: &DataType) -> String {
    match data_type {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BYTES".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(unit) => format!("TIME({})", crate::front::types::time_precision(unit)),
        DataType::Timestamp(unit, zone) => {
            let precision = match unit {
                TimeUnit::Second => 0,
                TimeUnit::Millisecond => 3,
                TimeUnit::Microsecond => 6,
                TimeUnit::Nanosecond => 9,
            };
            match zone {
                None => format!("TIMESTAMP({precision})"),
                Some(_) => format!("TIMESTAMP_LTZ({precision})"),
            }
        }
        DataType::List(item) | DataType::LargeList(item) => {
            format!("ARRAY<{}>", flink_type(item.data_type()))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "MAP<{}, {}>",
                flink_type(kv[0].data_type()),
                flink_type(kv[1].data_type())
            ),
            other => other.to_string(),
        },
        DataType::Struct(fields) => format!(
            "ROW<{}>",
            fields
                .iter()
                .map(|f| format!("`{}` {}", f.name(), flink_type(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}
