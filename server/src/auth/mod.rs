//! Who may call: every request but the health check and the console's
//! static pages proves it holds an access key (a SigV4 signature in the
//! header or a presigned URL, or a console session), and the key's policy,
//! with a stream's resource policy, must allow what it asks for. With no
//! keys configured (a loopback server, as the emulators users know) any
//! request passes.
//!
//! One layer in front of the whole router, so no service can forget it:
//! it reads the body it must hash and hands it on unchanged; PutMedia's
//! body, which never ends while a camera sends, is signed as unsigned.

mod actions;
mod audit;
pub mod header;
mod keys;
pub mod policy;
mod sessions;
pub mod sigv4;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header as http_header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http_body_util::BodyExt;
use runnel_streams::Streams;
use runnel_video::Video;
use serde_json::json;

pub use actions::Scope;
use actions::{Operation, Service};
use audit::{AuditLog, Entry};
pub use keys::{AccessKey, AuthFile, AuthSettings};
use policy::{Decision, Policy};
use sessions::Sessions;

use crate::aws::budget::MAX_REQUEST_BYTES;
use crate::aws::{AwsError, Protocol};
use crate::listener::OverTls;

pub struct Auth {
    keys: HashMap<String, AccessKey>,
    scope: Scope,
    audit: Option<AuditLog>,
    sessions: Sessions,
    rest_paths: HashSet<String>,
    streams: Arc<Streams>,
    video: Arc<Video>,
}

/// What kind of request, which decides how it proves itself and how a
/// refusal is spelled.
enum Kind {
    /// `POST /` with `X-Amz-Target`.
    Target(Protocol),
    /// A Kinesis Video REST path; `streaming` for PutMedia's endless body.
    Video { streaming: bool },
    /// `/v1/...` and `/metrics`.
    Runnel,
}

/// A refusal, in AWS's exception names.
enum Refusal {
    Missing,
    Unrecognized,
    Incomplete(String),
    Invalid(String),
    Denied(String),
    TooLarge,
}

const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

impl Auth {
    pub fn new(
        settings: &AuthSettings,
        data_dir: &Path,
        scope: Scope,
        rest_paths: impl IntoIterator<Item = String>,
        streams: Arc<Streams>,
        video: Arc<Video>,
    ) -> std::io::Result<Auth> {
        let enabled = !settings.keys.is_empty();
        let audit = if enabled {
            let path = settings
                .audit_log
                .clone()
                .unwrap_or_else(|| data_dir.join("audit.log"));
            Some(AuditLog::open(&path)?)
        } else {
            None
        };
        Ok(Auth {
            keys: settings
                .keys
                .iter()
                .map(|key| (key.access_key_id.clone(), key.clone()))
                .collect(),
            scope,
            audit,
            sessions: Sessions::default(),
            rest_paths: rest_paths.into_iter().collect(),
            streams,
            video,
        })
    }

    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    pub fn audit_path(&self) -> Option<&Path> {
        self.audit.as_ref().map(AuditLog::path)
    }

    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// None: a request anyone may make (health, the console's pages,
    /// playback URLs that carry their own session token, CORS preflights).
    fn kind(&self, parts: &Parts) -> Option<Kind> {
        let path = parts.uri.path();
        let read = parts.method == Method::GET || parts.method == Method::HEAD;
        if parts.method == Method::OPTIONS
            || path == "/v1/health"
            || path.starts_with("/hls/")
            || path.starts_with("/dash/")
            || (read && (path == "/" || path.starts_with("/console/")))
        {
            return None;
        }
        if parts.method == Method::POST && path == "/" {
            return Some(Kind::Target(Protocol::from_headers(&parts.headers)));
        }
        if parts.method == Method::POST && self.rest_paths.contains(path) {
            return Some(Kind::Video {
                streaming: path == "/putMedia",
            });
        }
        Some(Kind::Runnel)
    }

    /// The key a request proves it holds, and the signature to check if
    /// that is how it proves it.
    fn identify(
        &self,
        parts: &Parts,
        kind: &Kind,
    ) -> Result<(&AccessKey, Option<header::Signed>), Refusal> {
        let authorization = parts
            .headers
            .get(http_header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let signed = match authorization {
            Some(value) if value.starts_with("Basic ") => {
                return self.basic(value, parts, kind);
            }
            Some(value) => {
                let date = ["x-amz-date", "date"]
                    .iter()
                    .find_map(|name| parts.headers.get(*name).and_then(|v| v.to_str().ok()));
                Some(header::from_header(value, date).map_err(|e| Refusal::Incomplete(e.0))?)
            }
            None => header::from_query(parts.uri.query().unwrap_or_default())
                .map_err(|e| Refusal::Incomplete(e.0))?,
        };
        if let Some(signed) = signed {
            let key = self
                .keys
                .get(&signed.access_key_id)
                .ok_or(Refusal::Unrecognized)?;
            return Ok((key, Some(signed)));
        }
        let token = sessions::token_of(&parts.headers).ok_or(Refusal::Missing)?;
        let key_id = self.sessions.key_of(&token).ok_or(Refusal::Unrecognized)?;
        let key = self.keys.get(&key_id).ok_or(Refusal::Unrecognized)?;
        Ok((key, None))
    }

    /// HTTP Basic with the key id and secret: for `/metrics` only, which a
    /// Prometheus scraper reads and cannot sign.
    fn basic(
        &self,
        value: &str,
        parts: &Parts,
        kind: &Kind,
    ) -> Result<(&AccessKey, Option<header::Signed>), Refusal> {
        if !matches!(kind, Kind::Runnel) || parts.uri.path() != "/metrics" {
            return Err(Refusal::Incomplete(
                "Basic authentication is accepted for /metrics only; sign requests with SigV4"
                    .into(),
            ));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value.trim_start_matches("Basic ").trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(Refusal::Unrecognized)?;
        let (id, secret) = decoded.split_once(':').ok_or(Refusal::Unrecognized)?;
        let key = self.keys.get(id).ok_or(Refusal::Unrecognized)?;
        if !sigv4::same(&key.secret_access_key, secret) {
            return Err(Refusal::Unrecognized);
        }
        Ok((key, None))
    }

    fn verify(
        &self,
        parts: &Parts,
        kind: &Kind,
        key: &AccessKey,
        signed: &header::Signed,
        body: Option<&Bytes>,
    ) -> Result<(), Refusal> {
        if signed.region != self.scope.region {
            return Err(Refusal::Invalid(
                "Credential should be scoped to a valid region. ".into(),
            ));
        }
        let service = self.service_of(kind, parts);
        if !service.accepts_scope(&signed.service) {
            return Err(Refusal::Invalid(format!(
                "Credential should be scoped to correct service: '{}'. ",
                service.name()
            )));
        }
        sigv4::check_date(signed, chrono::Utc::now()).map_err(Refusal::Invalid)?;
        let declared = parts
            .headers
            .get("x-amz-content-sha256")
            .and_then(|v| v.to_str().ok());
        let actual = body.map(|b| sigv4::sha256_hex(b));
        let mut candidates: Vec<String> = Vec::new();
        match (declared, &actual) {
            (Some(declared), Some(actual))
                if !declared.starts_with("UNSIGNED") && !declared.starts_with("STREAMING") =>
            {
                if declared != actual {
                    return Err(Refusal::Invalid(
                        "The provided 'x-amz-content-sha256' header does not match what was computed."
                            .into(),
                    ));
                }
                candidates.push(actual.clone());
            }
            (Some(declared), _) => candidates.push(declared.to_string()),
            (None, Some(actual)) => {
                candidates.push(actual.clone());
                if signed.expires_seconds.is_some() {
                    candidates.push(sigv4::UNSIGNED_PAYLOAD.into());
                }
            }
            // A streamed body that declares nothing was signed as empty,
            // as the Kinesis Video producer SDK signs PutMedia.
            (None, None) => {
                candidates.push(sigv4::sha256_hex(b""));
                candidates.push(sigv4::UNSIGNED_PAYLOAD.into());
            }
        }
        let arrived = sigv4::Arrived {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
        };
        let matches = candidates.iter().any(|payload_hash| {
            let canonical = sigv4::canonical_request(&arrived, signed, payload_hash);
            sigv4::same(
                sigv4::signature(&key.secret_access_key, signed, &canonical),
                &signed.signature,
            )
        });
        if matches {
            Ok(())
        } else {
            Err(Refusal::Invalid(SIGNATURE_MISMATCH.into()))
        }
    }

    fn service_of(&self, kind: &Kind, parts: &Parts) -> Service {
        match kind {
            // An unknown prefix is answered by the router; until then it
            // is held to Kinesis's scope, the endpoint's first service.
            Kind::Target(_) => target_of(parts)
                .split_once('.')
                .and_then(|(prefix, _)| actions::service_of_target(prefix))
                .unwrap_or(Service::Kinesis),
            Kind::Video { .. } => Service::Video,
            Kind::Runnel => Service::Runnel,
        }
    }

    fn operation(&self, parts: &Parts, kind: &Kind, body: &[u8]) -> Operation {
        match kind {
            Kind::Target(protocol) => {
                let target = target_of(parts);
                actions::target(target, *protocol, body, &self.scope).unwrap_or_else(|| {
                    // An unknown target is answered by the router; it is
                    // still an action a policy can refuse.
                    Operation {
                        service: self.service_of(kind, parts),
                        name: target.rsplit('.').next().unwrap_or_default().to_string(),
                        resource: "*".into(),
                    }
                })
            }
            Kind::Video { .. } => actions::video(
                parts.uri.path(),
                &parts.headers,
                body,
                |name| {
                    self.video
                        .stream(&runnel_video::StreamRef::Name(name.to_string()))
                        .ok()
                        .map(|stream| stream.meta().arn)
                },
                &self.scope,
            ),
            Kind::Runnel => actions::runnel(&parts.method, parts.uri.path(), &self.scope),
        }
    }

    /// The key's policy and, for a stream or consumer, its resource policy,
    /// combined as AWS combines them: an explicit deny in either refuses;
    /// within one account either may allow; across accounts both must.
    fn authorize(
        &self,
        key: &AccessKey,
        operation: &Operation,
        source_ip: Option<IpAddr>,
        secure_transport: bool,
    ) -> Result<(), String> {
        let account = key.account.as_deref().unwrap_or(&self.scope.account);
        let principal_arn = format!("arn:aws:iam::{account}:user/{}", key.principal);
        let action = operation.action();
        let request = policy::Request {
            action: &action,
            resource: &operation.resource,
            principal_arn: &principal_arn,
            principal_account: account,
            username: &key.principal,
            source_ip,
            secure_transport,
        };
        let identity = key
            .policy
            .as_ref()
            .map_or(Decision::Allow, |policy| policy.evaluate(&request));
        let resource = self
            .resource_policy(operation)
            .map_or(Decision::Silent, |policy| policy.evaluate(&request));
        let resource_account = operation
            .resource
            .split(':')
            .nth(4)
            .filter(|a| !a.is_empty() && *a != "*")
            .unwrap_or(&self.scope.account);
        let reason = if identity == Decision::Deny {
            Some("with an explicit deny in an identity-based policy".to_string())
        } else if resource == Decision::Deny {
            Some("with an explicit deny in a resource-based policy".to_string())
        } else if account == resource_account {
            (identity != Decision::Allow && resource != Decision::Allow)
                .then(|| format!("because no identity-based policy allows the {action} action"))
        } else if identity != Decision::Allow {
            Some(format!(
                "because no identity-based policy allows the {action} action"
            ))
        } else {
            (resource != Decision::Allow)
                .then(|| format!("because no resource-based policy allows the {action} action"))
        };
        match reason {
            None => Ok(()),
            Some(reason) => Err(format!(
                "User: {principal_arn} is not authorized to perform: {action} on resource: {} {reason}",
                operation.resource
            )),
        }
    }

    /// A Kinesis stream's or consumer's policy (PutResourcePolicy). One
    /// that cannot be read applies to no one: AWS validates policies when
    /// they are put, so such a policy grants nothing there either.
    fn resource_policy(&self, operation: &Operation) -> Option<Policy> {
        if operation.service != Service::Kinesis || !operation.resource.starts_with("arn:") {
            return None;
        }
        let text = self.streams.get_policy(&operation.resource).ok()??;
        match Policy::parse(&text, true) {
            Ok(policy) => Some(policy),
            Err(error) => {
                tracing::warn!(resource = %operation.resource, %error, "resource policy not evaluated");
                None
            }
        }
    }

    /// A request refused before its action is known: audited, answered.
    fn refuse(
        &self,
        key: Option<&AccessKey>,
        source_ip: Option<IpAddr>,
        refusal: Refusal,
        kind: &Kind,
    ) -> Response {
        let reason = refusal.message();
        self.record(
            key,
            Entry {
                principal: "",
                access_key_id: "",
                source_ip,
                action: "",
                resource: "",
                allowed: false,
                reason: Some(&reason),
            },
        );
        refusal.respond(kind)
    }

    fn record(&self, key: Option<&AccessKey>, entry: Entry<'_>) {
        if let Some(audit) = &self.audit {
            audit.record(&Entry {
                principal: key.map_or(entry.principal, |k| k.principal.as_str()),
                access_key_id: key.map_or(entry.access_key_id, |k| k.access_key_id.as_str()),
                ..entry
            });
        }
    }
}

fn target_of(parts: &Parts) -> &str {
    parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The layer: authenticate, authorize, audit, then hand the request on.
pub async fn layer(State(auth): State<Arc<Auth>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    if parts.uri.path() == "/v1/console/session" {
        return session_endpoint(&auth, parts, body).await;
    }
    if !auth.enabled() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let Some(kind) = auth.kind(&parts) else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    let source_ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let secure = parts.extensions.get::<OverTls>().is_some();
    let (key, signed) = match auth.identify(&parts, &kind) {
        Ok(found) => found,
        Err(refusal) => return auth.refuse(None, source_ip, refusal, &kind),
    };
    let streaming = matches!(kind, Kind::Video { streaming: true });
    let (body, bytes) = if streaming {
        (body, None)
    } else {
        match read_limited(body).await {
            Ok(bytes) => (Body::from(bytes.clone()), Some(bytes)),
            Err(refusal) => return refusal.respond(&kind),
        }
    };
    if let Some(signed) = &signed
        && let Err(refusal) = auth.verify(&parts, &kind, key, signed, bytes.as_ref())
    {
        return auth.refuse(Some(key), source_ip, refusal, &kind);
    }
    let operation = auth.operation(&parts, &kind, bytes.as_deref().unwrap_or_default());
    let action = operation.action();
    let decision = auth.authorize(key, &operation, source_ip, secure);
    if decision.is_err() || operation.mutating() {
        auth.record(
            Some(key),
            Entry {
                principal: "",
                access_key_id: "",
                source_ip,
                action: &action,
                resource: &operation.resource,
                allowed: decision.is_ok(),
                reason: decision.as_ref().err().map(String::as_str),
            },
        );
    }
    if let Err(message) = decision {
        return Refusal::Denied(message).respond(&kind);
    }
    next.run(Request::from_parts(parts, body)).await
}

async fn read_limited(body: Body) -> Result<Bytes, Refusal> {
    let limited = http_body_util::Limited::new(body, MAX_REQUEST_BYTES);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(Refusal::TooLarge),
    }
}

impl Refusal {
    fn name(&self) -> &'static str {
        match self {
            Refusal::Missing => "MissingAuthenticationTokenException",
            Refusal::Unrecognized => "UnrecognizedClientException",
            Refusal::Incomplete(_) => "IncompleteSignatureException",
            Refusal::Invalid(_) => "InvalidSignatureException",
            Refusal::Denied(_) => "AccessDeniedException",
            Refusal::TooLarge => "ValidationException",
        }
    }

    fn message(&self) -> String {
        match self {
            Refusal::Missing => "Missing Authentication Token".into(),
            Refusal::Unrecognized => {
                "The security token included in the request is invalid.".into()
            }
            Refusal::Incomplete(m) | Refusal::Invalid(m) | Refusal::Denied(m) => m.clone(),
            Refusal::TooLarge => {
                format!("The request body is larger than {MAX_REQUEST_BYTES} bytes")
            }
        }
    }

    /// JSON services answer 400 as AWS does; Kinesis Video's REST API 403
    /// (401 for a policy's denial, as its API reference lists); Runnel's own
    /// API 401 for who and 403 for what.
    fn respond(self, kind: &Kind) -> Response {
        let status = match (kind, &self) {
            (_, Refusal::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
            (Kind::Target(_), _) => StatusCode::BAD_REQUEST,
            (Kind::Video { .. }, Refusal::Denied(_)) => StatusCode::UNAUTHORIZED,
            (Kind::Video { .. }, _) => StatusCode::FORBIDDEN,
            (Kind::Runnel, Refusal::Denied(_)) => StatusCode::FORBIDDEN,
            (Kind::Runnel, _) => StatusCode::UNAUTHORIZED,
        };
        let protocol = match kind {
            Kind::Target(protocol) => *protocol,
            _ => Protocol::Json,
        };
        AwsError::new(status, self.name(), self.message())
            .into_response(protocol, &uuid::Uuid::new_v4().to_string())
    }
}

/// `GET /v1/console/session` (who am I), `POST` (sign in with a key and
/// its secret), `DELETE` (sign out).
async fn session_endpoint(auth: &Auth, parts: Parts, body: Body) -> Response {
    let anonymous = || axum::Json(json!({"auth": false, "principal": "anonymous"})).into_response();
    let principal_of = |key: &AccessKey| {
        axum::Json(json!({
            "auth": true,
            "principal": key.principal,
            "access_key_id": key.access_key_id,
        }))
        .into_response()
    };
    let kind = Kind::Runnel;
    match parts.method {
        Method::GET if !auth.enabled() => anonymous(),
        Method::GET => match auth.identify(&parts, &kind) {
            Ok((key, None)) => principal_of(key),
            Ok((_, Some(_))) | Err(_) => Refusal::Missing.respond(&kind),
        },
        Method::POST if !auth.enabled() => anonymous(),
        Method::POST => {
            let bytes = match http_body_util::Limited::new(body, 64 * 1024)
                .collect()
                .await
            {
                Ok(collected) => collected.to_bytes(),
                Err(_) => return Refusal::TooLarge.respond(&kind),
            };
            let form: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let id = form["access_key_id"].as_str().unwrap_or_default();
            let secret = form["secret_access_key"].as_str().unwrap_or_default();
            let source_ip = parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip());
            let Some(key) = auth
                .keys
                .get(id)
                .filter(|key| sigv4::same(&key.secret_access_key, secret))
            else {
                auth.record(
                    None,
                    Entry {
                        principal: "",
                        access_key_id: id,
                        source_ip,
                        action: "runnel:SignIn",
                        resource: "*",
                        allowed: false,
                        reason: Some("unknown access key or wrong secret"),
                    },
                );
                return Refusal::Unrecognized.respond(&kind);
            };
            auth.record(
                Some(key),
                Entry {
                    principal: "",
                    access_key_id: "",
                    source_ip,
                    action: "runnel:SignIn",
                    resource: "*",
                    allowed: true,
                    reason: None,
                },
            );
            let token = auth.sessions.start(&key.access_key_id);
            let secure = if parts.extensions.get::<OverTls>().is_some() {
                "; Secure"
            } else {
                ""
            };
            let cookie = format!(
                "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                sessions::COOKIE,
                sessions::LIFETIME.as_secs()
            );
            let mut response = principal_of(key);
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response
                    .headers_mut()
                    .insert(http_header::SET_COOKIE, value);
            }
            response
        }
        Method::DELETE => {
            if let Some(token) = sessions::token_of(&parts.headers) {
                auth.sessions.end(&token);
            }
            let mut response = StatusCode::NO_CONTENT.into_response();
            response.headers_mut().insert(
                http_header::SET_COOKIE,
                HeaderValue::from_static(
                    "runnel_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
                ),
            );
            response
        }
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}
