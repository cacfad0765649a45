//! `/v1/jobs`: Runnel's own job API (as Flink's REST `/jobs` is to Flink),
//! beside the Kinesis Analytics API over the same jobs.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::describe::job_json;
use super::manager::{JobManager, ManagerError, Refusal};

pub fn routes(manager: Arc<JobManager>) -> Router {
    Router::new()
        .route("/v1/jobs", post(submit).get(list))
        .route("/v1/jobs/{id}", get(describe).delete(remove))
        .route("/v1/jobs/{id}/stop", post(stop))
        .route("/v1/jobs/{id}/savepoints", post(savepoint))
        .route("/v1/jobs/{id}/results", get(results))
        .route("/v1/savepoints", get(list_savepoints))
        .route(
            "/v1/savepoints/{name}",
            axum::routing::delete(delete_savepoint),
        )
        .with_state(manager)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitRequest {
    sql: String,
    name: Option<String>,
    parallelism: Option<usize>,
    /// A savepoint's name: the job starts from its state.
    from_savepoint: Option<String>,
    #[serde(default)]
    allow_non_restored_state: bool,
}

/// `POST /v1/jobs/{id}/stop` and `/savepoints`: with a savepoint, the job
/// stops at it without draining.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SavepointRequest {
    /// `true`, or the savepoint's name.
    savepoint: Option<Value>,
    name: Option<String>,
}

impl SavepointRequest {
    /// A malformed body's answer is a 400 with this message.
    fn parse(body: &[u8]) -> Result<Self, String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(SavepointRequest::default());
        }
        serde_json::from_slice(body).map_err(|e| {
            format!(
                "the body must be {{\"savepoint\": true | \"NAME\"}} or {{\"name\": \"NAME\"}}: {e}"
            )
        })
    }

    /// Whether a savepoint is asked for, and its name if given.
    fn wanted(&self) -> (bool, Option<String>) {
        match &self.savepoint {
            Some(Value::String(name)) => (true, Some(name.clone())),
            Some(Value::Bool(wanted)) => (*wanted, self.name.clone()),
            _ => (false, self.name.clone()),
        }
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"message": message.into()}))).into_response()
}

fn refused(refusal: Refusal) -> Response {
    let mut body = json!({"message": refusal.message});
    if let (Some(line), Some(column)) = (refusal.line, refusal.column) {
        body["line"] = json!(line);
        body["column"] = json!(column);
    }
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

fn manager_error(error: ManagerError) -> Response {
    let status = match error {
        ManagerError::NotFound(_) => StatusCode::NOT_FOUND,
        ManagerError::WrongStatus { .. } => StatusCode::CONFLICT,
        ManagerError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error_response(status, error)
}

fn error_response(status: StatusCode, problem: impl std::fmt::Display) -> Response {
    error(status, problem.to_string())
}

async fn submit(State(manager): State<Arc<JobManager>>, body: axum::body::Bytes) -> Response {
    let request: SubmitRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body must be {{\"sql\": \"...\", \"name\": \"...\", \"parallelism\": N}}: {e}"
                ),
            );
        }
    };
    if request.parallelism == Some(0) {
        return error(StatusCode::BAD_REQUEST, "parallelism must be at least 1");
    }
    let restore = super::manager::StartOptions {
        savepoint: request.from_savepoint,
        allow_non_restored_state: request.allow_non_restored_state,
        settings: Default::default(),
    };
    match manager
        .submit(request.sql, request.name, request.parallelism, restore)
        .await
    {
        Ok(job) => (StatusCode::CREATED, Json(job_json(&job, true))).into_response(),
        Err(refusal) => refused(refusal),
    }
}

async fn list(State(manager): State<Arc<JobManager>>) -> Response {
    let jobs: Vec<Value> = manager.list().iter().map(|j| job_json(j, false)).collect();
    Json(json!({"jobs": jobs})).into_response()
}

async fn describe(State(manager): State<Arc<JobManager>>, Path(id): Path<String>) -> Response {
    match manager.get(&id) {
        Ok(job) => Json(job_json(&job, true)).into_response(),
        Err(e) => manager_error(e),
    }
}

async fn stop(
    State(manager): State<Arc<JobManager>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let request = match SavepointRequest::parse(&body) {
        Ok(request) => request,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match request.wanted() {
        (true, name) => match manager.stop_with_savepoint(&id, name).await {
            Ok((job, savepoint)) => {
                let mut value = job_json(&job, true);
                value["savepoint"] = json!(savepoint);
                (StatusCode::ACCEPTED, Json(value)).into_response()
            }
            Err(e) => manager_error(e),
        },
        (false, _) => match manager.stop(&id) {
            Ok(job) => (StatusCode::ACCEPTED, Json(job_json(&job, true))).into_response(),
            Err(e) => manager_error(e),
        },
    }
}

async fn savepoint(
    State(manager): State<Arc<JobManager>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let request = match SavepointRequest::parse(&body) {
        Ok(request) => request,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match manager.savepoint(&id, request.wanted().1).await {
        Ok(savepoint) => (StatusCode::CREATED, Json(json!(savepoint))).into_response(),
        Err(e) => manager_error(e),
    }
}

async fn list_savepoints(State(manager): State<Arc<JobManager>>) -> Response {
    match manager.savepoints().list("") {
        Ok(savepoints) => Json(json!({"savepoints": savepoints})).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn delete_savepoint(
    State(manager): State<Arc<JobManager>>,
    Path(name): Path<String>,
) -> Response {
    match manager.savepoints().delete(&name) {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            format!("savepoint '{name}' not found"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn remove(State(manager): State<Arc<JobManager>>, Path(id): Path<String>) -> Response {
    match manager.delete(&id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => manager_error(e),
    }
}

/// Server-sent events: `row` events with `{"op": "+I", "row": {...}}`, a
/// `missed` event with the number of rows a slow follower lost, and `end`
/// when the job has ended.
async fn results(State(manager): State<Arc<JobManager>>, Path(id): Path<String>) -> Response {
    let job = match manager.get(&id) {
        Ok(job) => job,
        Err(e) => return manager_error(e),
    };
    let receiver = job.follow();
    let events = futures_util::stream::unfold(
        (receiver, job, false),
        |(mut receiver, job, ended)| async move {
            if ended {
                return None;
            }
            loop {
                let next = tokio::time::timeout(Duration::from_millis(500), receiver.recv()).await;
                let event = match next {
                    Ok(Ok(row)) => Event::default()
                        .event("row")
                        .data(serde_json::to_string(&*row).unwrap_or_default()),
                    Ok(Err(RecvError::Lagged(missed))) => Event::default()
                        .event("missed")
                        .data(json!({"rows": missed}).to_string()),
                    Ok(Err(RecvError::Closed)) => {
                        let status = job.snapshot().definition.status;
                        let event = Event::default()
                            .event("end")
                            .data(json!({"status": status.as_str()}).to_string());
                        return Some((Ok::<_, Infallible>(event), (receiver, job, true)));
                    }
                    Err(_) => {
                        let status = job.snapshot().definition.status;
                        if status.is_final() && receiver.is_empty() {
                            let event = Event::default()
                                .event("end")
                                .data(json!({"status": status.as_str()}).to_string());
                            return Some((Ok(event), (receiver, job, true)));
                        }
                        continue;
                    }
                };
                return Some((Ok(event), (receiver, job, false)));
            }
        },
    );
    sse(events)
}

fn sse(events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static) -> Response {
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
