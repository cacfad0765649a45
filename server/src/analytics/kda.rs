//! The Kinesis Analytics V2 API (`KinesisAnalytics_20180523`, JSON 1.1) over
//! the server's jobs: an application is a Flink SQL script (`PLAINTEXT`
//! code, Runnel's extension: AWS runs jars there) and, while it runs, the
//! job of the same name in `/v1/jobs`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::response::Response;
use rocksdb::DB;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::manager::{JobManager, Status, now_ms};
use crate::aws::{AwsError, AwsRequest, AwsRouter, Handler, Protocol};

pub const TARGET_PREFIX: &str = "KinesisAnalytics_20180523";
pub const CF_APPLICATIONS: &str = "jobs.applications";

const OPERATIONS: &[&str] = &[
    "CreateApplication",
    "DescribeApplication",
    "ListApplications",
    "StartApplication",
    "StopApplication",
    "UpdateApplication",
    "DeleteApplication",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "CreateApplicationSnapshot",
    "ListApplicationSnapshots",
    "DescribeApplicationSnapshot",
    "DeleteApplicationSnapshot",
    "AddApplicationOutput",
    "DeleteApplicationOutput",
    "AddApplicationInput",
    "AddApplicationInputProcessingConfiguration",
    "DeleteApplicationInputProcessingConfiguration",
    "AddApplicationReferenceDataSource",
    "DeleteApplicationReferenceDataSource",
];

/// What is kept of an application.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Application {
    name: String,
    description: Option<String>,
    runtime: String,
    role: String,
    created_ms: u64,
    updated_ms: u64,
    version: i64,
    code: String,
    parallelism: Value,
    checkpoint: Value,
    environment: Vec<(String, BTreeMap<String, String>)>,
    tags: BTreeMap<String, String>,
    /// READY, or RUNNING once started (what the job says refines it).
    wanted: String,
    job: Option<String>,
    token: String,
    /// `ApplicationSnapshotConfiguration.SnapshotsEnabled`: snapshots can
    /// be taken, and StopApplication takes one.
    #[serde(default)]
    snapshots_enabled: bool,
}

pub struct Api {
    db: Arc<DB>,
    manager: Arc<JobManager>,
    region: String,
    account: String,
    /// Serialises read-modify-write of applications.
    lock: Mutex<()>,
}

fn error(kind: &'static str, message: impl Into<String>) -> AwsError {
    AwsError::new(StatusCode::BAD_REQUEST, kind, message)
}

fn not_found(name: &str) -> AwsError {
    error(
        "ResourceNotFoundException",
        format!("Application {name} does not exist"),
    )
}

pub fn register(
    router: &mut AwsRouter,
    db: Arc<DB>,
    manager: Arc<JobManager>,
    region: String,
    account: String,
) {
    let api = Arc::new(Api {
        db,
        manager,
        region,
        account,
        lock: Mutex::new(()),
    });
    let handler: Handler = Arc::new(move |request: AwsRequest| {
        let api = api.clone();
        Box::pin(async move { api.handle(request).await })
    });
    router.register_each(TARGET_PREFIX, OPERATIONS, handler);
}

fn ok(value: Value) -> Response {
    crate::aws::codec::json_ok(value.to_string())
}

fn text<'a>(body: &'a Map<String, Value>, field: &str) -> Result<&'a str, AwsError> {
    body.get(field).and_then(Value::as_str).ok_or_else(|| {
        error(
            "InvalidArgumentException",
            format!("{field} is required and must be a string"),
        )
    })
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

impl Api {
    async fn handle(&self, request: AwsRequest) -> Result<Response, AwsError> {
        if request.protocol != Protocol::Json {
            return Err(error(
                "InvalidRequestException",
                "Kinesis Analytics takes JSON 1.1 requests only",
            ));
        }
        let body = crate::aws::codec::decode(
            request.protocol,
            &request.body,
            &crate::aws::shapes::KINESIS_ANALYTICS,
            &request.operation,
        )?;
        match request.operation.as_str() {
            "CreateApplication" => self.create(&body).await,
            "DescribeApplication" => self.describe(&body),
            "ListApplications" => self.list(&body),
            "StartApplication" => self.start(&body).await,
            "StopApplication" => self.stop(&body).await,
            "UpdateApplication" => self.update(&body).await,
            "DeleteApplication" => self.delete(&body),
            "TagResource" => self.tag(&body),
            "UntagResource" => self.untag(&body),
            "ListTagsForResource" => self.list_tags(&body),
            "CreateApplicationSnapshot" => self.create_snapshot(&body).await,
            "ListApplicationSnapshots" => self.list_snapshots(&body),
            "DescribeApplicationSnapshot" => self.describe_snapshot(&body),
            "DeleteApplicationSnapshot" => self.delete_snapshot(&body),
            operation @ ("AddApplicationOutput"
            | "DeleteApplicationOutput"
            | "AddApplicationInput"
            | "AddApplicationInputProcessingConfiguration"
            | "DeleteApplicationInputProcessingConfiguration"
            | "AddApplicationReferenceDataSource"
            | "DeleteApplicationReferenceDataSource") => self.sql_only(operation, &body),
            other => Err(AwsError::unknown_operation(format!(
                "Operation {TARGET_PREFIX}.{other} is not supported by this endpoint"
            ))),
        }
    }

    fn arn(&self, name: &str) -> String {
        format!(
            "arn:aws:kinesisanalytics:{}:{}:application/{name}",
            self.region, self.account
        )
    }

    fn cf(&self) -> Result<&rocksdb::ColumnFamily, AwsError> {
        self.db.cf_handle(CF_APPLICATIONS).ok_or_else(|| {
            AwsError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalFailure",
                "no applications column family",
            )
        })
    }

    fn load(&self, name: &str) -> Result<Application, AwsError> {
        let value = self
            .db
            .get_cf(self.cf()?, name.as_bytes())
            .map_err(internal)?
            .ok_or_else(|| not_found(name))?;
        serde_json::from_slice(&value).map_err(internal)
    }

    fn save(&self, application: &Application) -> Result<(), AwsError> {
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(true);
        let value = serde_json::to_vec(application).map_err(internal)?;
        self.db
            .put_cf_opt(self.cf()?, application.name.as_bytes(), value, &options)
            .map_err(internal)
    }

    fn all(&self) -> Result<Vec<Application>, AwsError> {
        let mut applications = Vec::new();
        for entry in self
            .db
            .iterator_cf(self.cf()?, rocksdb::IteratorMode::Start)
        {
            let (_, value) = entry.map_err(internal)?;
            if let Ok(application) = serde_json::from_slice(&value) {
                applications.push(application);
            }
        }
        Ok(applications)
    }

    /// The application's status: what was asked, refined by its job's.
    fn status(&self, application: &Application) -> &'static str {
        if application.wanted != "RUNNING" {
            return "READY";
        }
        let Some(job) = application
            .job
            .as_deref()
            .and_then(|id| self.manager.get(id).ok())
        else {
            return "READY";
        };
        let snapshot = job.snapshot();
        match snapshot.definition.status {
            Status::Running | Status::Restarting if job.is_stopping() => "STOPPING",
            Status::Running | Status::Restarting => "RUNNING",
            Status::Finished | Status::Failed | Status::Stopped => "READY",
        }
    }

    fn detail(&self, application: &Application, with_plan: bool) -> Value {
        let parallelism = application
            .parallelism
            .get("Parallelism")
            .and_then(Value::as_i64)
            .unwrap_or(self.manager.default_parallelism() as i64);
        let mut parallelism_description = json!({
            "ConfigurationType": application.parallelism.get("ConfigurationType").cloned().unwrap_or(json!("DEFAULT")),
            "Parallelism": parallelism,
            "ParallelismPerKPU": application.parallelism.get("ParallelismPerKPU").cloned().unwrap_or(json!(1)),
            "CurrentParallelism": parallelism,
            "AutoScalingEnabled": application.parallelism.get("AutoScalingEnabled").cloned().unwrap_or(json!(false)),
        });
        if parallelism_description["ConfigurationType"] == "DEFAULT" {
            parallelism_description["AutoScalingEnabled"] = json!(true);
        }
        let checkpoint = checkpoint_description(&application.checkpoint);
        let mut flink = json!({
            "CheckpointConfigurationDescription": checkpoint,
            "ParallelismConfigurationDescription": parallelism_description,
            "MonitoringConfigurationDescription": {"ConfigurationType": "DEFAULT", "MetricsLevel": "APPLICATION", "LogLevel": "INFO"},
        });
        if with_plan
            && let Some(job) = application
                .job
                .as_deref()
                .and_then(|id| self.manager.get(id).ok())
        {
            flink["JobPlanDescription"] = json!(job.plan);
        }
        let code_md5 = format!(
            "{:032x}",
            runnel_streams::hash::partition_hash(&application.code)
        );
        let mut detail = json!({
            "ApplicationARN": self.arn(&application.name),
            "ApplicationName": application.name,
            "RuntimeEnvironment": application.runtime,
            "ServiceExecutionRole": application.role,
            "ApplicationStatus": self.status(application),
            "ApplicationVersionId": application.version,
            "CreateTimestamp": seconds(application.created_ms),
            "LastUpdateTimestamp": seconds(application.updated_ms),
            "ApplicationConfigurationDescription": {
                "ApplicationCodeConfigurationDescription": {
                    "CodeContentType": "PLAINTEXT",
                    "CodeContentDescription": {
                        "TextContent": application.code,
                        "CodeMD5": code_md5,
                        "CodeSize": application.code.len(),
                    },
                },
                "FlinkApplicationConfigurationDescription": flink,
                "EnvironmentPropertyDescriptions": {
                    "PropertyGroupDescriptions": application.environment.iter().map(|(id, map)| json!({"PropertyGroupId": id, "PropertyMap": map})).collect::<Vec<_>>(),
                },
                "ApplicationSnapshotConfigurationDescription": {"SnapshotsEnabled": application.snapshots_enabled},
            },
            "ApplicationMode": "STREAMING",
            "ConditionalToken": application.token,
        });
        if let Some(description) = &application.description {
            detail["ApplicationDescription"] = json!(description);
        }
        detail
    }

    async fn create(&self, body: &Map<String, Value>) -> Result<Response, AwsError> {
        let name = text(body, "ApplicationName")?.to_string();
        check_name(&name)?;
        let runtime = text(body, "RuntimeEnvironment")?.to_string();
        if !runtime.starts_with("FLINK-") {
            return Err(error(
                "InvalidArgumentException",
                format!(
                    "RuntimeEnvironment {runtime} is not supported here: Runnel runs Flink SQL applications (FLINK-1_18 ... FLINK-2_3)"
                ),
            ));
        }
        let role = text(body, "ServiceExecutionRole")?.to_string();
        let configuration = body
            .get("ApplicationConfiguration")
            .cloned()
            .unwrap_or(Value::Null);
        let code = code_of(&configuration["ApplicationCodeConfiguration"])?;
        let flink = &configuration["FlinkApplicationConfiguration"];
        let environment = environment_of(&configuration["EnvironmentProperties"]["PropertyGroups"]);
        let now = now_ms();
        let application = Application {
            name: name.clone(),
            description: body
                .get("ApplicationDescription")
                .and_then(Value::as_str)
                .map(str::to_string),
            runtime,
            role,
            created_ms: now,
            updated_ms: now,
            version: 1,
            parallelism: flink["ParallelismConfiguration"].clone(),
            checkpoint: flink["CheckpointConfiguration"].clone(),
            code,
            environment,
            tags: tags_of(body.get("Tags"))?,
            wanted: "READY".into(),
            job: None,
            token: token(),
            snapshots_enabled:
                configuration["ApplicationSnapshotConfiguration"]["SnapshotsEnabled"]
                    .as_bool()
                    .unwrap_or(false),
        };
        self.validate_code(&application).await?;
        {
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            if self.load(&name).is_ok() {
                return Err(error(
                    "ResourceInUseException",
                    format!("Application {name} already exists"),
                ));
            }
            self.save(&application)?;
        }
        Ok(ok(
            json!({"ApplicationDetail": self.detail(&application, false)}),
        ))
    }

    /// Plans the code without running it: a SQL error is the
    /// `CodeValidationException` of Create and Update, with its position.
    async fn validate_code(&self, application: &Application) -> Result<(), AwsError> {
        let sql = job_sql(application)?;
        self.manager
            .plan_only(sql, checkpoint_settings(application))
            .await
            .map_err(|message| error("CodeValidationException", message))
    }

    fn describe(&self, body: &Map<String, Value>) -> Result<Response, AwsError> {
        let name = text(body, "ApplicationName")?;
        let application = self.load(name)?;
        let with_plan = body
            .get("IncludeAdditionalDetails")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(ok(
            json!({"ApplicationDetail": self.detail(&application, with_plan)}),
        ))
    }

    fn list(&self, body: &Map<String, Value>) -> Result<Response, AwsError> {
        let limit = body.get("Limit").and_then(Value::as_i64).unwrap_or(50);
        if !(1..=50).contains(&limit) {
            return Err(error(
                "InvalidArgumentException",
                format!("Limit must be between 1 and 50, got {limit}"),
            ));
        }
        let after = body.get("NextToken").and_then(Value::as_str);
        let applications: Vec<Application> = self
            .all()?
            .into_iter()
            .filter(|a| after.is_none_or(|after| a.name.as_str() > after))
            .collect();
        let page = &applications[..applications.len().min(limit as usize)];
        let mut out = json!({
            "ApplicationSummaries": page.iter().map(|a| json!({
                "ApplicationName": a.name,
                "ApplicationARN": self.arn(&a.name),
                "ApplicationStatus": self.status(a),
                "ApplicationVersionId": a.version,
                "RuntimeEnvironment": a.runtime,
                "ApplicationMode": "STREAMING",
            })).collect::<Vec<_>>(),
        });
        if applications.len() > page.len()
            && let Some(last) = page.last()
        {
            out["NextToken"] = json!(last.name);
        }
        Ok(ok(out))
    }

    async fn start(&self, body: &Map<String, Value>) -> Result<Response, AwsError> {
        let name = text(body, "ApplicationName")?;
        let mut application = self.load(name)?;
        let status = self.status(&application);
        if status != "READY" {
            return Err(error(
                "ResourceInUseException",
                format!(
                    "Application {name} is in {status} status; it can be started only from READY"
                ),
            ));
        }
        let restore = self.restore_of(&application, body)?;
        self.run(&mut application, restore).await?;
        Ok(ok(json!({"OperationId": token()})))
    }

    /// StartApplication's `RunConfiguration`: which snapshot the job
    /// starts from (the latest by default, when snapshots are enabled).
    fn restore_of(
        &self,
        application: &Application,
        body: &Map<String, Value>,
    ) -> Result<super::manager::StartOptions, AwsError> {
        let run = body.get("RunConfiguration").cloned().unwrap_or(Value::Null);
        let allow_non_restored_state = run["FlinkRunConfiguration"]["AllowNonRestoredState"]
            .as_bool()
            .unwrap_or(false);
        let restore = &run["ApplicationRestoreConfiguration"];
        let savepoint = match restore["ApplicationRestoreType"].as_str() {
            Some("SKIP_RESTORE_FROM_SNAPSHOT") => None,
            Some("RESTORE_FROM_CUSTOM_SNAPSHOT") => {
                let name = restore["SnapshotName"].as_str().ok_or_else(|| {
                    error(
                        "InvalidArgumentException",
                        "RESTORE_FROM_CUSTOM_SNAPSHOT needs a SnapshotName",
                    )
                })?;
                let key = snapshot_key(&application.name, name);
                if self
                    .manager
                    .savepoints()
                    .get(&key)
                    .map_err(internal)?
                    .is_none()
                {
                    return Err(not_found_snapshot(&application.name, name));
                }
                Some(key)
            }
            None | Some("RESTORE_FROM_LATEST_SNAPSHOT") if application.snapshots_enabled => self
                .snapshots(&application.name)?
                .into_iter()
                .max_by_key(|s| s.created_ms)
                .map(|s| s.name),
            None | Some("RESTORE_FROM_LATEST_SNAPSHOT") => None,
            Some(other) => {
                return Err(error(
                    "InvalidArgumentException",
                    format!(
                        "ApplicationRestoreType {other} is not one of SKIP_RESTORE_FROM_SNAPSHOT, RESTORE_FROM_LATEST_SNAPSHOT, RESTORE_FROM_CUSTOM_SNAPSHOT"
                    ),
                ));
            }
        };
        Ok(super::manager::StartOptions {
            savepoint,
            allow_non_restored_state,
            settings: checkpoint_settings(application),
        })
    }

    fn snapshots(
        &self,
        application: &str,
    ) -> Result<Vec<runnel_jobs::savepoints::SavepointInfo>, AwsError> {
        self.manager
            .savepoints()
            .list(&snapshot_key(application, ""))
            .map_err(internal)
    }

    fn snapshot_details(
        &self,
        application: &Application,
        info: &runnel_jobs::savepoints::SavepointInfo,
    ) -> Value {
        json!({
            "SnapshotName": info.name.rsplit('/').next().unwrap_or_default(),
            "SnapshotStatus": "READY",
            "ApplicationVersionId": application.version,
            "SnapshotCreationTimestamp": seconds(info.created_ms),
            "RuntimeEnvironment": application.runtime,
        })
    }

    async fn create_snapshot(&self, body: &Map<String, Value>) -> Result<Response, AwsError> {
        let name = text(body, "ApplicationName")?;
        let snapshot = text(body, "SnapshotName")?;
        let application = self.load(name)?;
        if !application.snapshots_enabled {
            return Err(error(
                "InvalidRequestException",
                format!(
                    "Snapshots are not enabled for application {name} (ApplicationSnapshotConfiguration.SnapshotsEnabled)"
                ),
            ));
        }
        let status = self.status(&application);
        let job = application.job.as_deref().filter(|_| status == "RUNNING").ok_or_else(|| {
            error(
                "ResourceInUseException",
                format!("Application {name} is in {status} status; a snapshot is taken of a RUNNING application"),
            )
        })?;
        let key = snapshot_key(name, snapshot);
        if self
            .manager
            .savepoints()
            .get(&key)
            .map_err(internal)?
            .is_some()
        {
            return Err(error(
                "InvalidArgumentException",
                format!("Snapshot {snapshot} already exists for application {name}"),
            ));
        }
        self.manager
            .savepoint(job, Some(key))
            .await
            .map_err(|e| error("InvalidApplicationConfigurationException", e.to_string()))?;
        Ok(ok(json!({})))
    }

    fn list_snapshots(&self, body: &Map<String, Value>) -> Result<Response, AwsError> {
        let name = text(body, "ApplicationName")?;
        let application = self.load(name)?;
        let limit = body.get("Limit").and_then(Value::as_u64).unwrap_or(50) as usize;
        let start = match body.get("NextToken").and_then(Value::as_str) {
            Some(token) => token.parse::<usize>().map_err(|_| {
                error(
                    "InvalidArgumentException",
                    "NextToken is not one this API gave",
                )
            })?,
            None => 0,
        };
        let mut snapshots = self.snapshots(name)?;
        snapshots.sort_by_key(|s| s.created_ms);
        let page: Vec<Value> = snapshots
            .iter()
            .skip(start)
            .take(limit)
            .map(|s| self.snapshot_details(&application, s))
            .collect();
        let mut out = json!({"SnapshotSummaries": page});
        if start + limit < snapshots.len() {
            out["NextToken"] = json!((start + limit).to_string());
        }
        Ok(ok(out))
    }

    fn describe_snapshot(&self, body: &Map<String, Value>) -> Result<Response, AwsError> {
        let name = text(body, "ApplicationName")?;
        let snapshot = text(body, "SnapshotName")?;
        let application = self.load(name)?;
        let (info, _) = self
            .manager
            .savepoints()
            .get(&snapshot_key(name, snapshot))
            .map_err(internal)?
            .ok_or_else(|| not_found_snapshot(name, snapshot))?;
        Ok(ok(
            json!({"SnapshotDetails": self.snapshot_details(&application, &info)}),
        ))
    }

    fn delete_snapshot(&self, body: &Map<String, Value>) -> Result<Response, AwsError> {
        let name = text(body, "ApplicationName")?;
        let snapshot = text(body, "SnapshotName")?;
        self.load(name)?;
        let key = snapshot_key(name, snapshot);
        let (info, _) = self
            .manager
            .savepoints()
            .get(&key)
            .map_err(internal)?
            .ok_or_else(|| not_found_snapshot(name, snapshot))?;
        let given = body
            .get("SnapshotCreationTimestamp")
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN);
        // The SDKs send the timestamp DescribeApplicationSnapshot gave,
        // in seconds; milliseconds may be lost on the way.
        if (given - seconds(info.created_ms)).abs() >= 1.0 {
            return Err(error(
                "InvalidArgumentException",
                format!(
                    "SnapshotCreationTimestamp does not match snapshot {snapshot}'s creation time"
                ),
            ));
        }
        self.manager.savepoints().delete(&key).map_err(internal)?;
        Ok(ok(json!({})))
    }

    /// Submits the application's job and records it as running.
    async fn run(
        &self,
        application: &mut Application,
        restore: super::manager::StartOptions,
    ) -> Result<(), AwsError> {
        let sql = job_sql(application)?;
        let parallelism = application
            .parallelism
            .get("Parallelism")
            .and_then(Value::as_i64)
            .and_then(|p| usize::try_from(p).ok());
        let job = self
            .manager
            .submit(sql, Some(application.name.clone()), parallelism, restore)
            .await
            .map_err(|refusal| error("CodeValidationException", refusal.message))?;
        application.job = Some(job.snapshot().definition.id);
        application.wanted = "RUNNING".into();
        self.save(application)
    }

    async fn stop(&self, body: &Map<String, Value>) -> Result<Response, AwsError> {
        let name = text(body, "ApplicationName")?;
        let force = body.get("Force").and_then(Value::as_bool).unwrap_or(false);
        let application = self.load(name)?;
        let status = self.status(&application);
        let allowed = if force {
            matches!(status, "STARTING" | "UPDATING" | "STOPPING" | "RUNNING")
        } else {
            status == "RUNNING"
        };
        if !allowed {
            return Err(error(
                "ResourceInUseException",
                format!("Application {name} is in {status} status and cannot be stopped"),
            ));
        }
        if let Some(id) = &application.job {
            if application.snapshots_enabled && !force && status == "RUNNING" {
                // As AWS does: a snapshot at the stop, which the next
                // start restores by default.
                let snapshot = format!("stop-{}", now_ms());
                self.manager
                    .stop_with_savepoint(id, Some(snapshot_key(name, &snapshot)))
                    .await
                    .map_err(|e| {
                        error("InvalidApplicationConfigurationException", e.to_string())
                    })?;
            } else {
                // A job that ended on its own in the meantime needs no stop.
                let _ = self.manager.stop(id);
            }
        }
        Ok(ok(json!({"OperationId": token()})))
    }

    async fn update(&self, body: &Map<String, Value>) -> Result<Response, AwsError> {
        let name = text(body, "ApplicationName")?;
        let mut application = self.load(name)?;
        match (
            body.get("CurrentApplicationVersionId")
                .and_then(Value::as_i64),
            body.get("ConditionalToken").and_then(Value::as_str),
        ) {
            (Some(version), _) if version != application.version => {
                return Err(error(
                    "ConcurrentModificationException",
                    format!(
                        "Current application version is {}; the request names {version}",
                        application.version
                    ),
                ));
            }
            (None, Some(token)) if token != application.token => {
                return Err(error(
                    "ConcurrentModificationException",
                    "The ConditionalToken does not match the application's",
                ));
            }
            (None, None) => {
                return Err(error(
                    "InvalidArgumentException",
                    "Either CurrentApplicationVersionId or ConditionalToken must be given",
                ));
            }
            _ => {}
        }
        let update = body
            .get("ApplicationConfigurationUpdate")
            .cloned()
            .unwrap_or(Value::Null);
        let mut code_changed = false;
        if let Some(text) =
            update["ApplicationCodeConfigurationUpdate"]["CodeContentUpdate"]["TextContentUpdate"]
                .as_str()
        {
            code_changed = text != application.code;
            application.code = text.to_string();
        }
        if update["ApplicationCodeConfigurationUpdate"]["CodeContentUpdate"]
            .get("ZipFileContentUpdate")
            .is_some()
            || update["ApplicationCodeConfigurationUpdate"]["CodeContentUpdate"]
                .get("S3ContentLocationUpdate")
                .is_some()
        {
            return Err(zip_refused());
        }
        let flink = &update["FlinkApplicationConfigurationUpdate"];
        if let Some(parallelism) = flink.get("ParallelismConfigurationUpdate") {
            let mut merged = application
                .parallelism
                .as_object()
                .cloned()
                .unwrap_or_default();
            for (key, value) in parallelism.as_object().into_iter().flatten() {
                merged.insert(key.trim_end_matches("Update").to_string(), value.clone());
            }
            application.parallelism = Value::Object(merged);
        }
        if let Some(checkpoint) = flink.get("CheckpointConfigurationUpdate") {
            let mut merged = application
                .checkpoint
                .as_object()
                .cloned()
                .unwrap_or_default();
            for (key, value) in checkpoint.as_object().into_iter().flatten() {
                merged.insert(key.trim_end_matches("Update").to_string(), value.clone());
            }
            application.checkpoint = Value::Object(merged);
        }
        if let Some(enabled) =
            update["ApplicationSnapshotConfigurationUpdate"]["SnapshotsEnabledUpdate"].as_bool()
        {
            application.snapshots_enabled = enabled;
        }
        if let Some(groups) = update["EnvironmentPropertyUpdates"].get("PropertyGroups") {
            application.environment = environment_of(groups);
            code_changed = true;
        }
        if let Some(role) = body
            .get("ServiceExecutionRoleUpdate")
            .and_then(Value::as_str)
        {
            application.role = role.to_string();
        }
        self.validate_code(&application).await?;
        application.version += 1;
        application.updated_ms = now_ms();
        application.token = token();
        // A code change on a running application restarts its job.
        // With snapshots enabled the job stops at a snapshot and the new
        // code starts from it, as AWS updates a running application.
        if code_changed && self.status(&application) == "RUNNING" {
            let mut restore = super::manager::StartOptions {
                savepoint: None,
                settings: checkpoint_settings(&application),
                allow_non_restored_state: body
                    .get("RunConfigurationUpdate")
                    .and_then(|r| r["FlinkRunConfiguration"]["AllowNonRestoredState"].as_bool())
                    .unwrap_or(false),
            };
            if let Some(id) = application.job.clone() {
                if application.snapshots_enabled {
                    let key = snapshot_key(&application.name, &format!("update-{}", now_ms()));
                    self.manager
                        .stop_with_savepoint(&id, Some(key.clone()))
                        .await
                        .map_err(|e| {
                            error("InvalidApplicationConfigurationException", e.to_string())
                        })?;
                    restore.savepoint = Some(key);
                } else {
                    let _ = self.manager.stop(&id);
                }
                self.manager.wait_ended(&id).await;
            }
            self.run(&mut application, restore).await?;
        } else {
            self.save(&application)?;
        }
        Ok(ok(json!({
            "ApplicationDetail": self.detail(&application, false),
            "OperationId": token(),
        })))
    }

    /// Inputs, outputs and reference data as separate resources belong to
    /// SQL-based (`SQL-1_0`) applications; a Flink application names its
    /// sources and sinks in its own code, which is where Runnel's do too.
    fn sql_only(&self, operation: &str, body: &Map<String, Value>) -> Result<Response, AwsError> {
        let name = text(body, "ApplicationName")?;
        let application = self.load(name)?;
        Err(error(
            "InvalidArgumentException",
            format!(
                "{operation} applies to SQL-based (SQL-1_0) applications; {name} is a {} application, whose sources and sinks are the tables of its SQL: change them with UpdateApplication",
                application.runtime
            ),
        ))
    }

    fn delete(&self, body: &Map<String, Value>) -> Result<Response, AwsError> {
        let name = text(body, "ApplicationName")?;
        let application = self.load(name)?;
        let created = body
            .get("CreateTimestamp")
            .and_then(Value::as_f64)
            .ok_or_else(|| error("InvalidArgumentException", "CreateTimestamp is required"))?;
        // SDKs send timestamps back as whole epoch seconds.
        if created.floor() as u64 != application.created_ms / 1000 {
            return Err(error(
                "InvalidArgumentException",
                "CreateTimestamp does not match the application's",
            ));
        }
        if let Some(id) = &application.job {
            let _ = self.manager.stop(id);
        }
        self.db
            .delete_cf(self.cf()?, name.as_bytes())
            .map_err(internal)?;
        Ok(ok(json!({})))
    }

    fn application_of_arn(&self, body: &Map<String, Value>) -> Result<Application, AwsError> {
        let arn = text(body, "ResourceARN")?;
        let name = arn
            .strip_prefix("arn:aws:kinesisanalytics:")
            .and_then(|rest| rest.split_once(":application/"))
            .map(|(_, name)| name)
            .ok_or_else(|| {
                error(
                    "InvalidArgumentException",
                    format!("{arn} is not an application ARN"),
                )
            })?;
        self.load(name)
    }

    fn tag(&self, body: &Map<String, Value>) -> Result<Response, AwsError> {
        let mut application = self.application_of_arn(body)?;
        application.tags.extend(tags_of(body.get("Tags"))?);
        if application.tags.len() > 50 {
            return Err(error(
                "TooManyTagsException",
                "An application can have at most 50 tags",
            ));
        }
        self.save(&application)?;
        Ok(ok(json!({})))
    }

    fn untag(&self, body: &Map<String, Value>) -> Result<Response, AwsError> {
        let mut application = self.application_of_arn(body)?;
        for key in body
            .get("TagKeys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(key) = key.as_str() {
                application.tags.remove(key);
            }
        }
        self.save(&application)?;
        Ok(ok(json!({})))
    }

    fn list_tags(&self, body: &Map<String, Value>) -> Result<Response, AwsError> {
        let application = self.application_of_arn(body)?;
        let tags: Vec<Value> = application
            .tags
            .iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect();
        Ok(ok(json!({"Tags": tags})))
    }
}

fn internal(error: impl std::fmt::Display) -> AwsError {
    AwsError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalFailure",
        error.to_string(),
    )
}

fn token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn check_name(name: &str) -> Result<(), AwsError> {
    let valid = (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(())
    } else {
        Err(crate::aws::request::validation_error(format!(
            "1 validation error detected: Value '{name}' at 'applicationName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        )))
    }
}

fn zip_refused() -> AwsError {
    error(
        "InvalidArgumentException",
        "Runnel runs Flink SQL given as PLAINTEXT TextContent; ZIPFILE and S3ContentLocation code (jars) cannot run here",
    )
}

fn code_of(configuration: &Value) -> Result<String, AwsError> {
    let content = &configuration["CodeContent"];
    match configuration["CodeContentType"].as_str() {
        Some("PLAINTEXT") => content["TextContent"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| {
                error(
                    "InvalidArgumentException",
                    "PLAINTEXT code needs CodeContent.TextContent",
                )
            }),
        Some("ZIPFILE") => Err(zip_refused()),
        _ => Err(error(
            "InvalidArgumentException",
            "ApplicationCodeConfiguration with CodeContentType PLAINTEXT and a Flink SQL script as TextContent is required",
        )),
    }
}

fn environment_of(groups: &Value) -> Vec<(String, BTreeMap<String, String>)> {
    groups
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|group| {
            let id = group["PropertyGroupId"].as_str()?.to_string();
            let map = group["PropertyMap"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect();
            Some((id, map))
        })
        .collect()
}

fn tags_of(tags: Option<&Value>) -> Result<BTreeMap<String, String>, AwsError> {
    let mut out = BTreeMap::new();
    for tag in tags.and_then(Value::as_array).into_iter().flatten() {
        let key = tag["Key"]
            .as_str()
            .ok_or_else(|| error("InvalidArgumentException", "a tag needs a Key"))?;
        if key.starts_with("aws:") {
            return Err(error(
                "InvalidArgumentException",
                "Tag keys starting with 'aws:' are reserved",
            ));
        }
        out.insert(
            key.to_string(),
            tag["Value"].as_str().unwrap_or_default().to_string(),
        );
    }
    Ok(out)
}

/// `${PropertyGroupId.Key}` in the SQL becomes the property's value; a
/// reference to a property that does not exist is a code error.
fn substitute(
    code: &str,
    environment: &[(String, BTreeMap<String, String>)],
) -> Result<String, AwsError> {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let reference = &after[..end];
        let value = reference.split_once('.').and_then(|(group, key)| {
            environment
                .iter()
                .find(|(id, _)| id == group)
                .and_then(|(_, map)| map.get(key))
        });
        match value {
            Some(value) => out.push_str(value),
            None => {
                return Err(error(
                    "CodeValidationException",
                    format!(
                        "the code refers to ${{{reference}}}, which no EnvironmentProperties property group defines"
                    ),
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Savepoints of applications are named under the application.
fn snapshot_key(application: &str, snapshot: &str) -> String {
    format!("kda/{application}/{snapshot}")
}

fn not_found_snapshot(application: &str, snapshot: &str) -> AwsError {
    error(
        "ResourceNotFoundException",
        format!("Snapshot {snapshot} not found for application {application}"),
    )
}

/// The application's SQL as its job runs it: the code with its
/// properties substituted.
fn job_sql(application: &Application) -> Result<String, AwsError> {
    substitute(&application.code, &application.environment)
}

/// The application's checkpoint configuration as Flink's settings, in
/// force before its code (whose own `SET`s win).
fn checkpoint_settings(application: &Application) -> BTreeMap<String, String> {
    let checkpoint = checkpoint_description(&application.checkpoint);
    if checkpoint["CheckpointingEnabled"] != json!(true) {
        return BTreeMap::new();
    }
    let interval = checkpoint["CheckpointInterval"].as_i64().unwrap_or(60_000);
    let pause = checkpoint["MinPauseBetweenCheckpoints"]
        .as_i64()
        .unwrap_or(5_000);
    BTreeMap::from([
        (
            "execution.checkpointing.interval".to_string(),
            format!("{interval} ms"),
        ),
        (
            "execution.checkpointing.min-pause".to_string(),
            format!("{pause} ms"),
        ),
    ])
}

fn checkpoint_description(configuration: &Value) -> Value {
    let custom = configuration["ConfigurationType"] == "CUSTOM";
    if custom {
        json!({
            "ConfigurationType": "CUSTOM",
            "CheckpointingEnabled": configuration.get("CheckpointingEnabled").cloned().unwrap_or(json!(true)),
            "CheckpointInterval": configuration.get("CheckpointInterval").cloned().unwrap_or(json!(60_000)),
            "MinPauseBetweenCheckpoints": configuration.get("MinPauseBetweenCheckpoints").cloned().unwrap_or(json!(5_000)),
        })
    } else {
        json!({
            "ConfigurationType": "DEFAULT",
            "CheckpointingEnabled": true,
            "CheckpointInterval": 60_000,
            "MinPauseBetweenCheckpoints": 5_000,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_properties_are_substituted_and_unknown_ones_refused() {
        let environment = vec![(
            "app".to_string(),
            BTreeMap::from([("stream".to_string(), "clicks".to_string())]),
        )];
        assert_eq!(
            substitute("SELECT * FROM `${app.stream}`", &environment).unwrap(),
            "SELECT * FROM `clicks`"
        );
        let refused = substitute("${app.nope}", &environment).unwrap_err();
        assert_eq!(refused.kind, "CodeValidationException");
    }
}
