//! The Redshift destination, on PostgreSQL: each object is staged in the
//! `S3Configuration` bucket as Firehose stages it, then loaded into the
//! table with `COPY ... FROM STDIN` as `CopyCommand` says (`json 'auto'`
//! rows mapped to `DataTableColumns` by key, or delimited text / CSV
//! passed through). A COPY is one transaction: a load counts whole or not
//! at all, and is retried for `RetryOptions`.

use serde_json::Value;

use crate::error::{FirehoseError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Format {
    /// `json 'auto'`: one JSON object per record, columns by key.
    JsonAuto,
    Csv(u8),
    Text(u8),
}

#[derive(Debug, Clone)]
pub struct RedshiftSettings {
    /// libpq key/value connection string (from `ClusterJDBCURL`).
    conninfo: String,
    table: String,
    columns: Vec<String>,
    format: Format,
    pub retry_ms: u64,
}

fn invalid(message: impl Into<String>) -> FirehoseError {
    FirehoseError::InvalidArgument(message.into())
}

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A SQL identifier, quoted unless it is plain (`schema.table` kept).
fn identifier(name: &str) -> Result<String> {
    let plain = |part: &str| {
        !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if name.split('.').all(plain) {
        Ok(name.to_string())
    } else {
        Err(invalid(format!(
            "'{name}' is not a table or column name Runnel can COPY into."
        )))
    }
}

impl RedshiftSettings {
    pub fn parse(config: &Value) -> Result<RedshiftSettings> {
        let text = |field: &str| config.get(field).and_then(Value::as_str);
        let url = text("ClusterJDBCURL").ok_or_else(|| invalid("ClusterJDBCURL must be given."))?;
        let rest = url
            .strip_prefix("jdbc:redshift://")
            .or_else(|| url.strip_prefix("jdbc:postgresql://"))
            .ok_or_else(|| {
                invalid(format!(
                    "ClusterJDBCURL '{url}' is not jdbc:redshift://host:port/database."
                ))
            })?;
        let (authority, database) = rest
            .split_once('/')
            .ok_or_else(|| invalid(format!("ClusterJDBCURL '{url}' names no database.")))?;
        let database = database.split('?').next().unwrap_or(database);
        let (host, port) = authority.rsplit_once(':').unwrap_or((authority, "5439"));
        let user = text("Username").ok_or_else(|| invalid("Username must be given."))?;
        let password = text("Password").unwrap_or("");
        let conninfo = format!(
            "host={} port={} dbname={} user={} password={} connect_timeout=10",
            quoted(host),
            quoted(port),
            quoted(database),
            quoted(user),
            quoted(password)
        );
        let copy = config
            .get("CopyCommand")
            .ok_or_else(|| invalid("CopyCommand must be given."))?;
        let table = identifier(
            copy.get("DataTableName")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("CopyCommand.DataTableName must be given."))?,
        )?;
        let columns = copy
            .get("DataTableColumns")
            .and_then(Value::as_str)
            .map(|list| {
                list.split(',')
                    .map(|c| identifier(c.trim()))
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?
            .unwrap_or_default();
        let options = copy
            .get("CopyOptions")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        let delimiter = options
            .split_once("delimiter")
            .and_then(|(_, rest)| rest.trim().strip_prefix('\''))
            .and_then(|rest| rest.bytes().next());
        let format = if options.contains("json") {
            if !options.contains("'auto'") {
                return Err(invalid(format!(
                    "CopyOptions '{options}': only json 'auto' is supported for JSON (no JSONPaths file)."
                )));
            }
            if columns.is_empty() {
                return Err(invalid(
                    "CopyCommand.DataTableColumns must be given with json 'auto'.",
                ));
            }
            Format::JsonAuto
        } else if options.contains("csv") {
            Format::Csv(delimiter.unwrap_or(b','))
        } else {
            Format::Text(delimiter.unwrap_or(b'|'))
        };
        for word in ["gzip", "lzop", "bzip2", "zstd", "manifest", "jsonpaths"] {
            if options.contains(word) {
                return Err(invalid(format!(
                    "CopyOptions '{options}': {word} is not supported by this Runnel version."
                )));
            }
        }
        let retry_seconds = config
            .get("RetryOptions")
            .and_then(|r| r.get("DurationInSeconds"))
            .and_then(Value::as_u64)
            .unwrap_or(3600);
        Ok(RedshiftSettings {
            conninfo,
            table,
            columns,
            format,
            retry_ms: retry_seconds * 1000,
        })
    }

    /// The COPY statement and the bytes it reads.
    fn copy(&self, records: &[Vec<u8>]) -> std::result::Result<(String, Vec<u8>), String> {
        let columns = if self.columns.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.columns.join(", "))
        };
        match self.format {
            Format::Text(delimiter) => Ok((
                format!(
                    "COPY {}{columns} FROM STDIN WITH (FORMAT text, DELIMITER E'\\x{delimiter:02x}')",
                    self.table
                ),
                records.concat(),
            )),
            Format::Csv(delimiter) => Ok((
                format!(
                    "COPY {}{columns} FROM STDIN WITH (FORMAT csv, DELIMITER E'\\x{delimiter:02x}')",
                    self.table
                ),
                records.concat(),
            )),
            Format::JsonAuto => {
                let mut csv = Vec::new();
                for record in records {
                    let row: Value = serde_json::from_slice(record)
                        .map_err(|e| format!("a record is not JSON: {e}"))?;
                    let object = row.as_object().ok_or("a record is not a JSON object")?;
                    for (i, column) in self.columns.iter().enumerate() {
                        if i > 0 {
                            csv.push(b',');
                        }
                        let value = object
                            .iter()
                            .find(|(key, _)| key.eq_ignore_ascii_case(column))
                            .map(|(_, value)| value);
                        match value {
                            None | Some(Value::Null) => {}
                            Some(Value::String(text)) => {
                                csv.push(b'"');
                                csv.extend_from_slice(text.replace('"', "\"\"").as_bytes());
                                csv.push(b'"');
                            }
                            Some(other) => {
                                let text = other.to_string();
                                if matches!(other, Value::Array(_) | Value::Object(_)) {
                                    csv.push(b'"');
                                    csv.extend_from_slice(text.replace('"', "\"\"").as_bytes());
                                    csv.push(b'"');
                                } else {
                                    csv.extend_from_slice(text.as_bytes());
                                }
                            }
                        }
                    }
                    csv.push(b'\n');
                }
                Ok((
                    format!("COPY {}{columns} FROM STDIN WITH (FORMAT csv)", self.table),
                    csv,
                ))
            }
        }
    }
}

/// Loads `records` in one COPY; the rows loaded, or why not.
pub async fn load(
    settings: &RedshiftSettings,
    records: &[Vec<u8>],
) -> std::result::Result<u64, String> {
    use futures_util::SinkExt;
    let (statement, bytes) = settings.copy(records)?;
    let (client, connection) = tokio_postgres::connect(&settings.conninfo, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    let connection = tokio::spawn(connection);
    let result = async {
        let sink = client
            .copy_in::<_, bytes::Bytes>(statement.as_str())
            .await
            .map_err(|e| format!("{statement}: {e}"))?;
        let mut sink = std::pin::pin!(sink);
        sink.send(bytes::Bytes::from(bytes))
            .await
            .map_err(|e| format!("{statement}: {e}"))?;
        sink.as_mut()
            .finish()
            .await
            .map_err(|e| format!("{statement}: {e}"))
    }
    .await;
    drop(client);
    let _ = connection.await;
    result
}
