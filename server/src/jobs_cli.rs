//! `runnel jobs ...`: a running server's `/v1/jobs` API from the shell.

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::cli::{JobsArgs, JobsCommand};

struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let text = body.map(|body| body.to_string());
        let content_type: &[(&str, &str)] = if text.is_some() {
            &[("content-type", "application/json")]
        } else {
            &[]
        };
        let signature = crate::cli_http::signature_headers(
            method,
            &url,
            "runnel",
            content_type,
            text.as_deref().unwrap_or_default().as_bytes(),
        )?;
        let with_signature = |request| crate::cli_http::with_headers(request, &signature);
        let response = match (method, text) {
            ("POST", Some(text)) => with_signature(self.agent.post(&url))
                .header("Content-Type", "application/json")
                .send(text),
            ("POST", None) => with_signature(self.agent.post(&url)).send_empty(),
            ("DELETE", _) => {
                crate::cli_http::with_headers(self.agent.delete(&url), &signature).call()
            }
            _ => crate::cli_http::with_headers(self.agent.get(&url), &signature).call(),
        }
        .with_context(|| format!("cannot reach {}", self.base))?;
        let (status, text, value) = crate::cli_http::read(response)?;
        if !(200..300).contains(&status) {
            let message = value["message"].as_str().unwrap_or(&text);
            bail!("{message}");
        }
        Ok(value)
    }
}

pub fn run(args: JobsArgs) -> anyhow::Result<()> {
    let client = Client {
        agent: crate::cli_http::agent(Duration::from_secs(120)),
        base: args.endpoint.trim_end_matches('/').to_string(),
    };
    let mut out = std::io::stdout().lock();
    match args.command {
        JobsCommand::Submit {
            file,
            name,
            parallelism,
            from_savepoint,
            allow_non_restored_state,
        } => {
            let sql = if file.as_os_str() == "-" {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text)?;
                text
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?
            };
            let name = name.or_else(|| {
                file.file_stem()
                    .filter(|_| file.as_os_str() != "-")
                    .map(|s| s.to_string_lossy().into_owned())
            });
            let mut body = json!({"sql": sql});
            if let Some(name) = name {
                body["name"] = json!(name);
            }
            if let Some(parallelism) = parallelism {
                body["parallelism"] = json!(parallelism);
            }
            if let Some(savepoint) = from_savepoint {
                body["from_savepoint"] = json!(savepoint);
                body["allow_non_restored_state"] = json!(allow_non_restored_state);
            }
            let job = client
                .send("POST", "/v1/jobs", Some(body))
                .with_context(|| format!("{} was refused", file.display()))?;
            writeln!(out, "{}", job["id"].as_str().unwrap_or_default())?;
        }
        JobsCommand::List => {
            let jobs = client.send("GET", "/v1/jobs", None)?;
            writeln!(out, "{:<34} {:<10} {:<24} NAME", "ID", "STATUS", "STARTED")?;
            for job in jobs["jobs"].as_array().into_iter().flatten() {
                writeln!(
                    out,
                    "{:<34} {:<10} {:<24} {}",
                    job["id"].as_str().unwrap_or_default(),
                    job["status"].as_str().unwrap_or_default(),
                    job["started"].as_str().unwrap_or("-"),
                    job["name"].as_str().unwrap_or_default()
                )?;
            }
        }
        JobsCommand::Describe { id } => {
            let job = client.send("GET", &format!("/v1/jobs/{id}"), None)?;
            writeln!(out, "{}", serde_json::to_string_pretty(&job)?)?;
        }
        JobsCommand::Stop {
            id,
            savepoint: None,
        } => {
            client.send("POST", &format!("/v1/jobs/{id}/stop"), None)?;
            writeln!(out, "stopping {id}")?;
        }
        JobsCommand::Stop {
            id,
            savepoint: Some(name),
        } => {
            let body = if name.is_empty() {
                json!({"savepoint": true})
            } else {
                json!({"savepoint": name})
            };
            let job = client.send("POST", &format!("/v1/jobs/{id}/stop"), Some(body))?;
            writeln!(
                out,
                "stopping {id} at savepoint {}",
                job["savepoint"]["name"].as_str().unwrap_or_default()
            )?;
        }
        JobsCommand::Savepoint { id, name } => {
            let body = json!({"name": name});
            let savepoint =
                client.send("POST", &format!("/v1/jobs/{id}/savepoints"), Some(body))?;
            writeln!(out, "{}", savepoint["name"].as_str().unwrap_or_default())?;
        }
        JobsCommand::Savepoints => {
            let listed = client.send("GET", "/v1/savepoints", None)?;
            writeln!(
                out,
                "{:<40} {:<34} {:>12} CHECKPOINT",
                "NAME", "JOB", "BYTES"
            )?;
            for savepoint in listed["savepoints"].as_array().into_iter().flatten() {
                writeln!(
                    out,
                    "{:<40} {:<34} {:>12} {}",
                    savepoint["name"].as_str().unwrap_or_default(),
                    savepoint["job_id"].as_str().unwrap_or_default(),
                    savepoint["bytes"],
                    savepoint["checkpoint_id"]
                )?;
            }
        }
        JobsCommand::DeleteSavepoint { name } => {
            client.send("DELETE", &format!("/v1/savepoints/{name}"), None)?;
            writeln!(out, "deleted savepoint {name}")?;
        }
        JobsCommand::Delete { id } => {
            client.send("DELETE", &format!("/v1/jobs/{id}"), None)?;
            writeln!(out, "deleted {id}")?;
        }
        JobsCommand::Results { id } => follow(&client, &id, &mut out)?,
    }
    Ok(())
}

/// Reads the server-sent events of a job's results until the job ends.
fn follow(client: &Client, id: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let url = format!("{}/v1/jobs/{id}/results", client.base);
    // No overall timeout: the rows come for as long as the job runs.
    let agent = crate::cli_http::agent(None);
    let mut request = agent.get(&url);
    for (name, value) in crate::cli_http::signature_headers("GET", &url, "runnel", &[], b"")? {
        request = request.header(name, value);
    }
    let response = request
        .call()
        .with_context(|| format!("cannot reach {}", client.base))?;
    if response.status() != 200 {
        let (_, text, value) = crate::cli_http::read(response)?;
        bail!("{}", value["message"].as_str().unwrap_or(&text));
    }
    let reader = BufReader::new(response.into_body().into_reader());
    let mut event = String::new();
    for line in reader.lines() {
        let line = line.context("reading the results")?;
        if let Some(name) = line.strip_prefix("event:") {
            event = name.trim().to_string();
        } else if let Some(data) = line.strip_prefix("data:") {
            let value: Value = serde_json::from_str(data.trim()).unwrap_or(Value::Null);
            match event.as_str() {
                "row" => {
                    let values: Vec<String> = value["row"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(render)
                        .collect();
                    writeln!(
                        out,
                        "{}[{}]",
                        value["op"].as_str().unwrap_or("+I"),
                        values.join(", ")
                    )?;
                    out.flush()?;
                }
                "missed" => eprintln!("({} rows missed: this reader fell behind)", value["rows"]),
                "end" => {
                    eprintln!("job {id} {}", value["status"].as_str().unwrap_or("ended"));
                    return Ok(());
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn render(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "NULL".to_string(),
        other => other.to_string(),
    }
}
